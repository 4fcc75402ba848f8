"""The Modbus/TCP framer: one direction's payload bytes in, whole ADUs and a leftover count out.

A payload starts at an ADU boundary. Each ADU is an MBAP header (transaction id, protocol id,
length, unit id) and a PDU of `length - 1` bytes. The walk stops at:

- the end of the payload;
- a partial ADU (fewer than 7 header bytes, or fewer bytes than the length asks for): those bytes
  are *left over*, for the stream layer to put in front of the next segment; not a finding;
- a header that cannot be Modbus (protocol id not 0, length outside 2-254): the rest of the
  payload is returned as one last "ADU", which `decode` reports as `BAD_PROTOCOL_ID` or
  `BAD_LENGTH`; nothing after it can be framed.
"""

from __future__ import annotations

from typing import NamedTuple

from plantwarden.protocols.modbus.functions import MAX_LENGTH, MIN_LENGTH

HEADER_SIZE = 7
"""MBAP header: transaction id (2), protocol id (2), length (2), unit id (1)."""
LENGTH_BASE = 6
"""An ADU is `6 + length` bytes: the length counts the unit id and the PDU."""


class Frames(NamedTuple):
    """What the framer found in a payload: (offset, size) of each ADU, and the leftover bytes."""

    adus: list[tuple[int, int]]
    leftover: int


def header_is_sound(payload: bytes, offset: int) -> bool:
    """Whether the MBAP header at `offset` (7 bytes present) has protocol 0 and a legal length."""
    protocol_id = int.from_bytes(payload[offset + 2 : offset + 4], "big")
    length = int.from_bytes(payload[offset + 4 : offset + 6], "big")
    return protocol_id == 0 and MIN_LENGTH <= length <= MAX_LENGTH


def split_adus(payload: bytes) -> Frames:
    """The whole ADUs in `payload` and how many bytes of a partial last one are left over."""
    adus: list[tuple[int, int]] = []
    offset, end = 0, len(payload)
    while offset < end:
        remaining = end - offset
        if remaining < HEADER_SIZE:
            return Frames(adus, remaining)
        if not header_is_sound(payload, offset):
            adus.append((offset, remaining))
            return Frames(adus, 0)
        size = LENGTH_BASE + int.from_bytes(payload[offset + 4 : offset + 6], "big")
        if remaining < size:
            return Frames(adus, remaining)
        adus.append((offset, size))
        offset += size
    return Frames(adus, 0)
