"""Safe gathers: the header bytes of many packets at once, zero wherever a packet has no byte.

`header_rows` copies a fixed-width window of bytes per packet out of the batch's buffer into an
(N, width) matrix through a sliding-window view (one contiguous copy per row, ten times faster than
gathering byte by byte). Bytes past what a packet has captured are zero, and nothing outside the
buffer is ever read; the integer helpers then read big-endian fields out of the matrix's columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Bytes = npt.NDArray[np.uint8]
Int64 = npt.NDArray[np.int64]


def header_rows(buffer: Bytes, starts: Int64, available: Int64, width: int) -> Bytes:
    """Row i holds `buffer[starts[i] + j]` for j < `available[i]` (at most `width`), zeros after.

    A row with nothing available is all zeros whatever its start, and a start or an available count
    that would reach outside the buffer is cut back to it: this never raises on hostile offsets.
    """
    count = len(starts)
    if count == 0 or width == 0:
        return np.zeros((count, width), dtype=np.uint8)
    keep = np.minimum(available, len(buffer) - starts)
    np.clip(keep, 0, width, out=keep)
    before = starts < 0
    if before.any():
        keep[before] = 0
    limit = len(buffer) - width
    if limit < 0:
        return _rows_slowly(buffer, starts, keep, width, np.arange(count))
    # Rows past `limit` (the last packets of the buffer) are read again below, byte by byte.
    rows = sliding_window_view(buffer, width)[np.clip(starts, 0, limit)]
    short = np.flatnonzero(keep < width)
    if len(short):
        rows[short] *= np.arange(width) < keep[short, None]
    tail = np.flatnonzero(starts > limit)
    tail = tail[keep[tail] > 0]
    if len(tail):
        rows[tail] = _rows_slowly(buffer, starts, keep, width, tail)
    return rows


def _rows_slowly(buffer: Bytes, starts: Int64, keep: Int64, width: int, which: Int64) -> Bytes:
    """`header_rows` for the rows `which`, byte by byte (the last packets of a buffer)."""
    columns = np.arange(width)
    wanted = columns < keep[which, None]
    if not wanted.any():
        return np.zeros((len(which), width), dtype=np.uint8)
    positions = np.where(wanted, starts[which, None] + columns, 0)
    return np.where(wanted, buffer[positions], 0).astype(np.uint8)


def u16(rows: Bytes, column: int) -> npt.NDArray[np.uint16]:
    """The big-endian 16-bit field at `column` of every row."""
    if column % 2 == 0 and _viewable(rows, 2):
        return rows.view(">u2")[:, column // 2].astype(np.uint16)
    value = (rows[:, column].astype(np.uint16) << 8) | rows[:, column + 1]
    return value.astype(np.uint16, copy=False)


def u32(rows: Bytes, column: int) -> npt.NDArray[np.uint32]:
    """The big-endian 32-bit field at `column` of every row."""
    if column % 4 == 0 and _viewable(rows, 4):
        return rows.view(">u4")[:, column // 4].astype(np.uint32)
    field = np.ascontiguousarray(rows[:, column : column + 4])
    return field.view(">u4").reshape(-1).astype(np.uint32)


def _viewable(rows: Bytes, size: int) -> bool:
    """Whether the rows can be seen as `size`-byte words (fields aligned within each row)."""
    return rows.flags.c_contiguous and rows.shape[1] % size == 0 and len(rows) > 0


def u48(rows: Bytes, column: int) -> npt.NDArray[np.uint64]:
    """The big-endian 48-bit field (a MAC address) at `column` of every row."""
    field = np.zeros((len(rows), 8), dtype=np.uint8)
    field[:, 2:] = rows[:, column : column + 6]
    return field.view(">u8").reshape(-1).astype(np.uint64)


def u32_le(rows: Bytes, column: int) -> npt.NDArray[np.uint32]:
    """The little-endian 32-bit field at `column` of every row."""
    field = np.ascontiguousarray(rows[:, column : column + 4])
    return field.view("<u4").reshape(-1).astype(np.uint32)


def fill(column: npt.NDArray[Any], where: npt.NDArray[np.bool_], values: npt.ArrayLike) -> None:
    """`column[where] = values[where]` in one pass (values known to fit the column's dtype)."""
    np.copyto(column, values, where=where, casting="unsafe")
