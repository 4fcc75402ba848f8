"""Readers of the PDU's fields (big-endian words, LSB-first bits) shared by the exact decoders."""

from __future__ import annotations

import struct
from itertools import chain

from plantwarden.protocols.modbus.findings import ModbusFinding

_BITS_OF_BYTE = tuple(tuple((byte >> shift) & 1 for shift in range(8)) for byte in range(256))


def word(data: bytes, at: int) -> int:
    """The big-endian 16-bit word at `at` (two bytes present)."""
    return (data[at] << 8) | data[at + 1]


def words(data: bytes) -> tuple[int, ...]:
    """The whole big-endian words in `data` (an odd last byte is ignored)."""
    return struct.unpack_from(f">{len(data) // 2}H", data)


def bits(data: bytes) -> tuple[int, ...]:
    """The bits of `data`, eight per byte, the lowest bit of the first byte first (Modbus order)."""
    return tuple(chain.from_iterable(_BITS_OF_BYTE[byte] for byte in data))


def size_finding(data: bytes, size: int) -> ModbusFinding:
    """`PDU_TOO_SHORT` or `TRAILING_BYTES` when `data` is not exactly `size` bytes, else `OK`."""
    if len(data) < size:
        return ModbusFinding.PDU_TOO_SHORT
    if len(data) > size:
        return ModbusFinding.TRAILING_BYTES
    return ModbusFinding.OK


def trailing(data: bytes, size: int) -> ModbusFinding:
    """`TRAILING_BYTES` when `data` runs past the `size` bytes its fields take, else `OK`."""
    return ModbusFinding.TRAILING_BYTES if len(data) > size else ModbusFinding.OK


def first(values: tuple[int, ...]) -> int:
    """The first of `values`, or -1 (none)."""
    return values[0] if values else -1
