"""CRC-16/DNP (IEEE 1815-2012, 9.2.2: polynomial 0x3D65, reflected, initial value 0, final value
inverted), transmitted low byte first after the header block and after each 16-byte data block.

Table-driven, for one block (`crc16`), for one frame's blocks (`header_ok`, `blocks_ok`) or for
many blocks at once (`residues`).

Two properties make the checks fast. The CRC register starts at 0, so zero bytes before a block
leave it at 0: blocks of different lengths can be checked together right-aligned in rows of one
width (`residues`). And running the register over a block followed by its transmitted CRC always
ends at the same value, `RESIDUE`: a check needs no comparison with the stored CRC, and with a
table for two bytes at a time (`WORD_TABLE`) a whole 18-byte data block is nine look-ups.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

REFLECTED_POLYNOMIAL = 0xA6BC
"""0x3D65 with its bits reversed (the CRC is computed least significant bit first)."""


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ REFLECTED_POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


TABLE = _table()
TABLE_ARRAY = np.array(TABLE, dtype=np.uint16)


def _word_table() -> npt.NDArray[np.uint16]:
    # Two byte steps from register r: they depend on r ^ word only (word = first byte | second << 8).
    word = np.arange(1 << 16, dtype=np.uint32)
    crc = TABLE_ARRAY[word & 0xFF].astype(np.uint32)
    table: npt.NDArray[np.uint16] = ((crc >> 8) ^ TABLE_ARRAY[(crc ^ (word >> 8)) & 0xFF]).astype(np.uint16)
    return table


WORD_TABLE_ARRAY = _word_table()
WORD_TABLE: list[int] = WORD_TABLE_ARRAY.tolist()
"""The register after two bytes, indexed by register ^ (first byte | second byte << 8)."""
RESIDUE = 0x66C5
"""The register after a block and its transmitted CRC (before the final inversion), whatever
the block: what a block with a right CRC leaves."""

_BLOCK = struct.Struct("<9H")
"""A data block of 16 bytes and its CRC, as little-endian words."""
_WORDS = [struct.Struct(f"<{count}H") for count in range(10)]


def crc16(data: bytes) -> int:
    """The CRC-16/DNP of `data` (as sent: low byte first)."""
    crc, table = 0, WORD_TABLE
    pairs = len(data) >> 1
    for word in struct.unpack_from(f"<{pairs}H", data):
        crc = table[crc ^ word]
    if len(data) & 1:
        crc = (crc >> 8) ^ TABLE[(crc ^ data[-1]) & 0xFF]
    return crc ^ 0xFFFF


def header_ok(frame: bytes) -> bool:
    """Whether the CRC of the header block (bytes 8-9) is that of its first 8 bytes."""
    t = WORD_TABLE
    w0, w1, w2, w3, w4 = _WORDS[5].unpack_from(frame)
    return bool(t[t[t[t[t[w0] ^ w1] ^ w2] ^ w3] ^ w4] == RESIDUE)


def blocks_ok(frame: bytes, start: int, end: int) -> bool:
    """Whether every data block of `frame[start:end]` (16 bytes and their CRC each, the last one
    shorter) carries its right CRC."""
    t = WORD_TABLE
    full, rest = divmod(end - start, 18)
    last = start + 18 * full
    for w0, w1, w2, w3, w4, w5, w6, w7, w8 in _BLOCK.iter_unpack(frame[start:last]):
        if t[t[t[t[t[t[t[t[t[w0] ^ w1] ^ w2] ^ w3] ^ w4] ^ w5] ^ w6] ^ w7] ^ w8] != RESIDUE:
            return False
    if not rest:
        return True
    crc = 0
    for word in _WORDS[rest >> 1].unpack_from(frame, last):
        crc = t[crc ^ word]
    if rest & 1:
        crc = (crc >> 8) ^ TABLE[(crc ^ frame[end - 1]) & 0xFF]
    return crc == RESIDUE


def residues(words: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    """The register (before the final inversion) after each row of `words` (two bytes each, the
    first one low), rows right-aligned behind zeros: `RESIDUE` for a row that ends with the
    right CRC."""
    crc = np.zeros(words.shape[0], dtype=np.uint16)
    for column in range(words.shape[1]):
        crc = WORD_TABLE_ARRAY[crc ^ words[:, column]]
    return crc
