"""Safe gathers: the header bytes of many packets at once, never read outside the buffer.

The decoder gathers once, at the start, the first bytes of every packet (`packet_windows`): for
most packets they hold every header it reads (Ethernet, VLAN tags, IPv4, the fixed part of TCP).
A row is gathered as one opaque `width`-byte item per packet (a 1-D fancy index over a void view
of the buffer): numpy copies such items with one memcpy each, two to three times faster than
gathering the rows of a sliding-window view, and one gather of 58 bytes costs little more than
one of 20, the cost being in reaching each packet's bytes at all.

`window_words` then turns a header's columns of that matrix into its big-endian 32-bit words,
one contiguous array per word: a field is a shift and a mask of one array. Reading each field
out of the matrix instead walks the whole matrix once per field, dearer than the transposition.

The few headers that do not lie at the usual place of the window are read out of the buffer
(`header_rows`, `header_words`), zero wherever a packet has no byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Bytes = npt.NDArray[np.uint8]
Int64 = npt.NDArray[np.int64]
Counts = npt.NDArray[np.signedinteger[Any]]
"""Byte counts (32 or 64 bits)."""
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


def header_rows(buffer: Bytes, starts: Int64, available: Counts, width: int) -> Bytes:
    """Row i holds `buffer[starts[i] + j]` for j < `available[i]` (at most `width`), zeros after.

    A row with nothing available is all zeros whatever its start, and a start or an available count
    that would reach outside the buffer is cut back to it: this never raises on hostile offsets.
    `available` must not reach past the buffer's end (`starts + available <= len(buffer)`, as
    for counts measured from a packet's captured end): the rows are mended where it is short.
    """
    count = len(starts)
    if count == 0 or width == 0:
        return np.zeros((count, width), dtype=np.uint8)
    buffer = np.ascontiguousarray(buffer)
    limit = len(buffer) - width
    if limit < 0:
        return _rows_slowly(buffer, starts, _kept(buffer, starts, available, width), width, np.arange(count))
    # Seen unsigned, a start before the buffer is past its end: one bound catches both.
    unsigned = starts.view(np.uint64)
    windows = np.ndarray((limit + 1,), dtype=np.dtype((np.void, width)), buffer=buffer, strides=(1,))
    rows: Bytes = windows[np.minimum(unsigned, np.uint64(limit)).view(np.int64)].view(np.uint8)
    rows = rows.reshape(count, width)
    # The rows to mend are the short ones (few), zeroed past what they have: a start past the
    # end has a short count, the counts being measured from the packets' captured ends. A start
    # before the buffer (hostile offsets, or the -1 of a packet not decoded) is mended as well.
    short = available < width
    if starts.min() < 0:
        short |= starts < 0
    odd = np.flatnonzero(short)
    if len(odd):
        keep = _kept(buffer, starts[odd], available[odd], width)
        rows[odd] *= np.arange(width) < keep[:, None]
        tail = np.flatnonzero((starts[odd] > limit) & (keep > 0))
        if len(tail):
            rows[odd[tail]] = _rows_slowly(buffer, starts[odd], keep, width, tail)
    return rows


def _kept(buffer: Bytes, starts: Int64, available: Counts, width: int) -> Counts:
    """How many bytes of each row `header_rows` copies: what is available, inside the buffer."""
    keep = np.minimum(available, len(buffer) - starts)
    np.minimum(keep, width, out=keep)
    np.maximum(keep, 0, out=keep)
    keep[starts < 0] = 0
    return keep


def _rows_slowly(buffer: Bytes, starts: Int64, keep: Counts, width: int, which: Int64) -> Bytes:
    """`header_rows` for the rows `which`, byte by byte (the last packets of a buffer)."""
    columns = np.arange(width)
    wanted = columns < keep[which, None]
    if not wanted.any():
        return np.zeros((len(which), width), dtype=np.uint8)
    positions = np.where(wanted, starts[which, None] + columns, 0)
    return np.where(wanted, buffer[positions], 0).astype(np.uint8)


def header_words(buffer: Bytes, starts: Int64, available: Counts, count: int) -> U32:
    """The first `count` big-endian 32-bit words of every packet's header, as numbers: row k holds
    bytes 4k to 4k + 3 of each header (zero past what the packet has captured, as `header_rows`)."""
    return window_words(header_rows(buffer, starts, available, 4 * count), 0, count)


def packet_windows(buffer: Bytes, starts: Int64, width: int) -> Bytes:
    """The first `width` bytes of every packet (row i from `buffer[starts[i]]` on), gathered once
    for every layer that lies in them.

    Unlike `header_rows`, the bytes past what a packet captured are left as the buffer has them
    (the next packet's record, mostly): zeroing the rows of the short packets (a bare TCP
    acknowledgement is shorter than the window) would cost more than the gather, and the decoder
    checks every header against the captured length before it takes a field of it. Nothing
    outside the buffer is read: the last packets of the buffer are read byte by byte, zeros after
    the buffer's end, and a start before the buffer gives zeros.
    """
    count = len(starts)
    limit = len(buffer) - width
    if limit < 0 or count == 0:
        return header_rows(buffer, starts, np.full(count, width, dtype=np.int64), width)
    buffer = np.ascontiguousarray(buffer)
    unsigned = starts.view(np.uint64)  # a start before the buffer is past its end, unsigned
    windows = np.ndarray((limit + 1,), dtype=np.dtype((np.void, width)), buffer=buffer, strides=(1,))
    rows: Bytes = windows[np.minimum(unsigned, np.uint64(limit)).view(np.int64)].view(np.uint8)
    rows = rows.reshape(count, width)
    if unsigned.max() > limit:
        edge = np.flatnonzero(unsigned > limit)
        rows[edge] = header_rows(buffer, starts[edge], len(buffer) - starts[edge], width)
    return rows


TRANSPOSED_ROWS = 4096
"""Rows transposed at a time by `window_words`: their bytes stay in the CPU cache meanwhile."""


def window_words(rows: Bytes, byte: int, count: int) -> U32:
    """`count` big-endian 32-bit words from column `byte` of every row, as `header_words` gives them.

    numpy copies a transposed array one output row (here, one word) at a time, each a pass over
    all the input rows: done a few thousand rows at a time, those passes stay in the CPU cache.
    """
    fields = rows[:, byte : byte + 4 * count].view(">u4")
    words = np.empty((count, len(rows)), dtype=np.uint32)
    for first in range(0, len(rows), TRANSPOSED_ROWS):
        block = slice(first, first + TRANSPOSED_ROWS)
        np.copyto(words[:, block], fields[block].T)
    return words


def field8(words: U32, byte: int) -> U32:
    """The byte at offset `byte` of every header, out of its `header_words`."""
    field: U32 = (words[byte // 4] >> (24 - 8 * (byte % 4))) & 0xFF
    return field


def field16(words: U32, byte: int) -> U32:
    """The 16-bit field at the even offset `byte` of every header, out of its `header_words`."""
    assert byte % 2 == 0
    word = words[byte // 4]
    field: U32 = word >> 16 if byte % 4 == 0 else word & 0xFFFF
    return field


def field48(words: U32, byte: int) -> U64:
    """The 48-bit field (a MAC address) at the even offset `byte`, out of the `header_words`."""
    assert byte % 2 == 0
    field: U64 = words[byte // 4].astype(np.uint64)  # worked on in place: no temporaries
    second = words[byte // 4 + 1]
    if byte % 4 == 0:
        field <<= np.uint64(16)
        field |= second >> 16
    else:
        field &= np.uint64(0xFFFF)
        field <<= np.uint64(32)
        field |= second
    return field


def u16(rows: Bytes, column: int) -> npt.NDArray[np.uint16]:
    """The big-endian 16-bit field at `column` of every row (of a few rows: see `header_words`)."""
    return rows[:, column : column + 2].view(">u2")[:, 0].astype(np.uint16)


def u32(rows: Bytes, column: int) -> npt.NDArray[np.uint32]:
    """The big-endian 32-bit field at `column` of every row."""
    return rows[:, column : column + 4].view(">u4")[:, 0].astype(np.uint32)


def u32_le(rows: Bytes, column: int) -> npt.NDArray[np.uint32]:
    """The little-endian 32-bit field at `column` of every row."""
    return rows[:, column : column + 4].view("<u4")[:, 0].astype(np.uint32)
