"""The column extractor's framer: walk the ADUs of many segments at once, level by level.

Level 0 is the first ADU of every segment, level 1 the second ADU of the segments that have one,
and so on; each level is a handful of vectorised gathers over the segments still open. It makes
the decisions of `framing.split_adus`, segment by segment, without a Python loop per segment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.framing import HEADER_SIZE, LENGTH_BASE

WINDOW = 16
"""Bytes read at each ADU: the MBAP header and the first 9 bytes of the PDU."""
Window = np.dtype((np.void, WINDOW))


class Walk(NamedTuple):
    """The ADUs found, in (segment, pdu_index) order, and each segment's leftover bytes."""

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    position: npt.NDArray[np.int64]
    """Where the ADU starts in the buffer."""
    size: npt.NDArray[np.int64]
    """The ADU's bytes; for an unsound header, the rest of its segment."""
    sound: npt.NDArray[np.bool_]
    """False where the header is not Modbus (protocol id, length): the row takes the rest."""
    leftover: npt.NDArray[np.int32]
    window: npt.NDArray[np.void]
    """The 16 bytes from the ADU's start (zeros past the end of the buffer)."""


class _Level(NamedTuple):
    segment: npt.NDArray[np.int64]
    position: npt.NDArray[np.int64]
    size: npt.NDArray[np.int64]
    sound: npt.NDArray[np.bool_]
    window: npt.NDArray[np.void]


def padded(buffer: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`buffer` and 16 zero bytes: a window read at any byte of `buffer` stays inside."""
    return np.concatenate((np.asarray(buffer, dtype=np.uint8), np.zeros(WINDOW, dtype=np.uint8)))


def windows(padded_buffer: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    """A 16-byte window starting at every byte of `padded_buffer` that has 16 bytes from there on."""
    count = max(len(padded_buffer) - WINDOW + 1, 0)
    return np.ndarray((count,), dtype=Window, buffer=padded_buffer, strides=(1,))


class Windows:
    """The 16-byte window at any byte of a buffer, bytes past its end read as zeros.

    Reads go straight to the buffer (a strided view, no copy of it); only the last 15 bytes,
    whose windows would run past the end, are copied into a small padded tail.
    """

    def __init__(self, buffer: npt.NDArray[np.uint8]) -> None:
        data = np.ascontiguousarray(buffer, dtype=np.uint8)
        self.cut = max(len(data) - WINDOW + 1, 0)
        """The first position whose window runs past the end of the buffer."""
        self.body = windows(data)
        self.tail = windows(padded(data[self.cut :]))

    def __getitem__(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.void]:
        """The windows at `positions` (each inside the buffer), as 16-byte items."""
        late = positions >= self.cut
        if not late.any():
            rows: npt.NDArray[np.void] = self.body[positions]
            return rows
        rows = np.empty(len(positions), dtype=Window)
        rows[~late] = self.body[positions[~late]]
        rows[late] = self.tail[positions[late] - self.cut]
        return rows


def header_words(window_rows: npt.NDArray[np.void]) -> npt.NDArray[np.uint16]:
    """The rows' bytes as 8 big-endian words (transaction id, protocol id, length, ...)."""
    return window_rows.view(">u2").reshape(-1, WINDOW // 2)


def walk(windows_view: Windows, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int32]) -> Walk:
    """Frame every segment `[start, start + length)` as `split_adus` would."""
    cursor = starts.astype(np.int64)
    end = cursor + lengths
    leftover = np.zeros(len(starts), dtype=np.int32)
    levels: list[_Level] = []
    active = np.flatnonzero(lengths > 0)
    while active.size:
        position = cursor[active]
        level, more = _level(windows_view, active, position, end[active] - position, leftover)
        levels.append(level)
        cursor[level.segment] += level.size
        active = level.segment[more]
    return _in_order(levels, len(starts), leftover)


def _level(
    windows_view: Windows,
    active: npt.NDArray[np.int64],
    position: npt.NDArray[np.int64],
    remaining: npt.NDArray[np.int64],
    leftover: npt.NDArray[np.int32],
) -> tuple[_Level, npt.NDArray[np.bool_]]:
    window = windows_view[position]
    words = header_words(window)
    length = words[:, 2].astype(np.int64)
    headed = remaining >= HEADER_SIZE
    sound = (words[:, 1] == 0) & (length >= fc.MIN_LENGTH) & (length <= fc.MAX_LENGTH)
    size = np.where(sound, length + LENGTH_BASE, remaining)
    emitted = headed & (size <= remaining)
    if emitted.all():
        return _Level(active, position, size, sound, window), sound & (size < remaining)
    stopped = ~emitted
    leftover[active[stopped]] = remaining[stopped]
    level = _Level(active[emitted], position[emitted], size[emitted], sound[emitted], window[emitted])
    return level, level.sound & (level.size < remaining[emitted])


def _in_order(levels: list[_Level], segments: int, leftover: npt.NDArray[np.int32]) -> Walk:
    counts = np.zeros(segments, dtype=np.int64)
    for level in levels:
        counts[level.segment] += 1
    first_row = np.cumsum(counts) - counts
    total = int(counts.sum())
    segment, position, size = (np.empty(total, dtype=np.int64) for _ in range(3))
    pdu_index, sound = np.empty(total, dtype=np.int32), np.empty(total, dtype=np.bool_)
    window = np.empty(total, dtype=Window)
    for index, level in enumerate(levels):
        rows = first_row[level.segment] + index
        segment[rows], position[rows], size[rows], sound[rows], window[rows] = level
        pdu_index[rows] = index
    return Walk(segment, pdu_index, position, size, sound, leftover, window)
