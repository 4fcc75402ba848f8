"""CRC-16/DNP (IEEE 1815-2012, 9.2.2: polynomial 0x3D65, reflected, initial value 0, final value
inverted), transmitted low byte first after the header block and after each 16-byte data block.

Table-driven, for one block (`crc16`) or for many rows at once (`crc16_rows`).
"""

from __future__ import annotations

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


def crc16(data: bytes) -> int:
    """The CRC-16/DNP of `data` (as sent: low byte first)."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def crc16_rows(octets: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint16]:
    """The CRC-16/DNP of each row's first `lengths[row]` bytes of `octets` (rows x columns)."""
    crc = np.zeros(octets.shape[0], dtype=np.uint16)
    for column in range(octets.shape[1]):
        active = column < lengths
        if not active.any():
            break
        step = (crc >> 8) ^ TABLE_ARRAY[(crc ^ octets[:, column]) & 0xFF]
        crc = np.where(active, step, crc).astype(np.uint16)
    return crc ^ np.uint16(0xFFFF)
