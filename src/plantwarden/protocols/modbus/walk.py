"""The column extractor's framer: walk the ADUs of many segments at once, level by level.

Level 0 is the first ADU of every segment, level 1 the second ADU of the segments that have one,
and so on; each level reads the 16-byte windows of the segments still open in one gather and
makes the decisions of `framing.split_adus` for all of them, without a Python loop per segment.
A window holds all the decoder reads of most ADUs, so the buffer is read once, here; the decoder
goes back to it (`Windows.read`) only for its rare rows.

The walk leaves its ADUs level by level (`Level`); `in_order` puts them in (segment, pdu_index)
order, in one scatter per column. It may take the levels of several walks at once, and leave
rows out: the sensor frames a batch, chooses which segments keep their ADUs, frames the others
apart, and orders all it keeps in that single pass.

The windows are gathered from a strided view of the buffer (no copy of it), as byte strings
(`S16`): numpy gathers those at unaligned offsets several times faster than `void` items, and
they view as bytes and big-endian words all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.framing import HEADER_SIZE, LENGTH_BASE

WINDOW = 16
"""Bytes read at each ADU: the MBAP header and the first 9 bytes of the PDU."""
Window = np.dtype(f"S{WINDOW}")


class Adus(NamedTuple):
    """ADUs to decode, one row each: its label (segment, pdu_index, offset) and its first 16
    bytes (`window`, zeros past the end of the bytes read).

    `origin[s]` is where segment `s` starts in the bytes read: an ADU starts at its segment's
    origin plus its offset (`positions`), which the decoder reads only for its rare rows.
    """

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int32]
    window: npt.NDArray[np.bytes_]
    origin: npt.NDArray[np.int64]

    def positions(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """Where the ADUs of `rows` start in the bytes read."""
        positions: npt.NDArray[np.int64] = self.origin[self.segment[rows]] + self.offset[rows]
        return positions


@dataclass(frozen=True, slots=True)
class Level:
    """The `index`-th ADU of each segment still open at that level of a walk (`segment`); a
    segment that stops there (a partial ADU) or is left out has its row not `emitted`."""

    index: int
    segment: npt.NDArray[np.int64]
    position: npt.NDArray[np.int64]
    window: npt.NDArray[np.bytes_]
    offset: npt.NDArray[np.int32] | None
    """Where each ADU starts in its segment; None at level 0 (all 0)."""
    emitted: npt.NDArray[np.bool_] | None
    """None when every row is."""

    def only(self, keep: npt.NDArray[np.bool_]) -> Level:
        """The level with the rows of the segments not in `keep` (per segment) left out."""
        kept = keep[self.segment]
        return replace(self, emitted=kept if self.emitted is None else kept & self.emitted)

    def without(self, segments: npt.NDArray[np.int64]) -> Level:
        """The level with the rows of `segments` (ascending) left out; a few, found by bisection
        (a walk leaves each level's segments ascending)."""
        at = np.searchsorted(self.segment, segments)
        inside = at < len(self.segment)
        at = at[inside][self.segment[at[inside]] == segments[inside]]
        if not at.size:
            return self
        emitted = np.ones(len(self.segment), dtype=np.bool_) if self.emitted is None else self.emitted.copy()
        emitted[at] = False
        return replace(self, emitted=emitted)

    def moved(self, segments: npt.NDArray[np.int64]) -> Level:
        """The level with segment `i` renumbered `segments[i]`."""
        return replace(self, segment=segments[self.segment])


class Walk(NamedTuple):
    """The ADUs found (`levels`); per segment where it starts (`origin`), the bytes of a partial
    last ADU left over, and whether a header that cannot be Modbus ended it (`unsound`)."""

    levels: list[Level]
    origin: npt.NDArray[np.int64]
    leftover: npt.NDArray[np.int32]
    unsound: npt.NDArray[np.bool_]

    def counts(self) -> npt.NDArray[np.int64]:
        """Per segment, how many ADUs it holds.

        Levels nest (a segment open at a level was open at the one before), so it is the index
        of the last level that emitted the segment's row, plus one. Level 0 has a row for every
        segment, in order.
        """
        counts = np.zeros(len(self.leftover), dtype=np.int64)
        for level in self.levels:
            emitted = 1 if level.emitted is None else level.emitted
            if level.index:
                counts[level.segment] = level.index + emitted
            else:
                counts[:] = emitted
        return counts

    def adus(self) -> Adus:
        """The ADUs, in (segment, pdu_index) order."""
        if len(self.levels) == 1 and self.levels[0].emitted is None:  # in order already
            (level,) = self.levels
            zeros = np.zeros(len(level.segment), dtype=np.int32)
            return Adus(level.segment, zeros, zeros.copy(), level.window, self.origin)
        return in_order(self.levels, self.counts(), self.origin)


def padded(buffer: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`buffer` and 16 zero bytes: a window read at any byte of `buffer` stays inside."""
    return np.concatenate((np.asarray(buffer, dtype=np.uint8), np.zeros(WINDOW, dtype=np.uint8)))


def windows(padded_buffer: npt.NDArray[np.uint8]) -> npt.NDArray[np.bytes_]:
    """A 16-byte window starting at every byte of `padded_buffer` that has 16 bytes from there on."""
    count = max(len(padded_buffer) - WINDOW + 1, 0)
    return np.ndarray((count,), dtype=Window, buffer=padded_buffer, strides=(1,))


class Windows:
    """The 16-byte window at any byte of a buffer and of bytes put `behind` it, read as one; bytes
    past their end read as zeros.

    Reads go straight to the buffer (a strided view, no copy of it); only its last 15 bytes, whose
    windows would run past its end, and the bytes behind it (the few the sensor decodes apart)
    are copied, into a small padded tail.
    """

    def __init__(self, buffer: npt.NDArray[np.uint8], behind: npt.NDArray[np.uint8] | None = None) -> None:
        data = np.ascontiguousarray(buffer, dtype=np.uint8)
        self.data = data
        self.cut = max(len(data) - WINDOW + 1, 0)
        """The first position whose window runs past the end of the buffer."""
        self.body = windows(data)
        rest = data[self.cut :] if behind is None else np.concatenate((data[self.cut :], behind))
        self.size = self.cut + len(rest)
        """The bytes of the buffer and of those behind it."""
        self.rest = padded(rest)
        self.tail = windows(self.rest)

    def __getitem__(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
        """The windows at `positions` (each inside the bytes), as 16-byte items."""
        rows: npt.NDArray[np.bytes_]
        if not self.cut:
            rows = self.tail[positions]
        elif not len(positions) or positions.max() < self.cut:
            rows = self.body[positions]
        else:
            rows = self.body[np.minimum(positions, self.cut - 1)]
            late = np.flatnonzero(positions >= self.cut)
            rows[late] = self.tail[positions[late] - self.cut]
        return rows

    def octets(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The byte at each of `positions` (at the last byte for positions past it)."""
        return self[np.minimum(positions, self.size - 1)].view(np.uint8)[::WINDOW]

    def read(self, position: int, size: int) -> bytes:
        """The bytes `[position, position + size)` (which lie in the buffer or behind it)."""
        if position < self.cut:
            return self.data[position : position + size].tobytes()
        start = position - self.cut
        return self.rest[start : min(start + size, self.size - self.cut)].tobytes()


def walk(source: Windows, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int32]) -> Walk:
    """Frame every segment `[start, start + length)` of `source`'s bytes as `split_adus` would.

    Sizes are uint32: the protocol id and length read as one number (`_sizes`) need 32 bits, and
    the arrays of level 0, the largest, stay half the size of int64 ones.
    """
    starts = np.asarray(starts, dtype=np.int64)
    leftover = np.zeros(len(starts), dtype=np.int32)
    unsound = np.zeros(len(starts), dtype=np.bool_)
    active = np.arange(len(starts))  # at level 0 every segment: an empty one stops there at once
    position = starts
    remaining = np.maximum(lengths, 0).astype(np.uint32)
    levels: list[Level] = []
    while active.size:
        window = source[position]
        size, sound = _sizes(window)
        stopped = size > remaining  # the ADU does not fit: left over
        odd = np.flatnonzero(~sound)  # few; an unsound header takes the rest if it is whole
        stopped[odd] = remaining[odd] < HEADER_SIZE
        stops = np.flatnonzero(stopped)
        leftover[active[stops]] = remaining[stops]
        unsound[active[odd[~stopped[odd]]]] = True
        offset = (position - starts[active]).astype(np.int32) if levels else None
        levels.append(Level(len(levels), active, position, window, offset, ~stopped if stops.size else None))
        more = np.flatnonzero(sound & (size < remaining))
        active, position, remaining = active[more], position[more] + size[more], remaining[more] - size[more]
    return Walk(levels, starts, leftover, unsound)


def _sizes(window_rows: npt.NDArray[np.bytes_]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
    """Per window: the size of the ADU its MBAP header announces, and whether the header can be
    Modbus (`sound`: protocol id 0 and a legal length; the size means nothing where not).

    The protocol id and the length, read as one big-endian number, are the length itself and
    in the legal range only when the protocol id is 0: one read and two comparisons.
    """
    if not len(window_rows):
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.bool_)
    rows = np.ascontiguousarray(window_rows)
    mbap = np.ndarray((len(rows),), dtype=">u4", buffer=rows, offset=2, strides=(WINDOW,)).astype(np.uint32)
    sound = (mbap >= fc.MIN_LENGTH) & (mbap <= fc.MAX_LENGTH)
    return mbap + LENGTH_BASE, sound


def in_order(levels: Sequence[Level], counts: npt.NDArray[np.int64], origin: npt.NDArray[np.int64]) -> Adus:
    """The emitted rows of `levels` in (segment, pdu_index) order, `counts[s]` of segment `s`
    (which starts at `origin[s]` in the bytes read).

    One scatter per column: a row goes to its segment's first row plus its index. The rows of
    a segment counted 0 go past the last row, dropped, as do the rows not emitted: a level
    needs no `only` for the segments counted 0.
    """
    first_row = np.cumsum(counts) - counts
    total = int(first_row[-1] + counts[-1]) if len(counts) else 0
    first_row[counts == 0] = total
    size = total + len(levels)  # and one more row per level, where the dropped ones go
    segment, window = np.empty(size, dtype=np.int64), np.empty(size, dtype=Window)
    pdu_index, offset = np.zeros(size, dtype=np.int32), np.zeros(size, dtype=np.int32)
    for level in levels:
        rows = first_row[level.segment]
        if level.index:
            rows += level.index
        if level.emitted is not None:
            rows[~level.emitted] = total
        if level.index:
            pdu_index[rows] = level.index
        if level.offset is not None:
            offset[rows] = level.offset
        segment[rows], window[rows] = level.segment, level.window
    return Adus(segment[:total], pdu_index[:total], offset[:total], window[:total], origin)
