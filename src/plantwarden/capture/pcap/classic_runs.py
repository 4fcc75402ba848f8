"""Finding the records of a classic pcap with numpy, and with Python where numpy cannot.

A pcap record header carries no marker, only its length: each record starts where the previous
one ends, so the records follow from the first. numpy takes as candidates the positions in a
window whose timestamp has the top byte of the record it starts from and a plausible fraction,
follows each candidate's length, and takes the run from the known record in which each candidate
is where the previous one leads, stepping over packet data that passes for a header (see
`chain`). Each record's position follows from the one before, so that run is exactly the records
Python's walk finds. Where it stops early (a record whose time jumps, too many look-alikes), the
walk goes on from the exact position after it; after a short run Python walks a while, so that
crafted traffic cannot make the reader slow.
"""

from __future__ import annotations

import bisect
import struct

import numpy as np
import numpy.typing as npt

from plantwarden.capture.pcap.columns import Unpack

MAX_SPAN = 1 << 24  # bytes that numpy looks through for a run of records
SHORT_RUN = 64  # records; Python walks this many after a run shorter than this stopped early
MENDS = 1024  # breaks in a run (look-alikes of a header) stepped over before it ends
MENDS_ALONE = 64  # more breaks than this, and look-alikes no candidate leads to are dropped first
Positions = npt.NDArray[np.int64]


def walk_records(chunk: bytes, pos: int, limit: int, caplen_at: Unpack) -> tuple[list[int], int]:
    """The positions of up to `limit` pcap record headers from `pos`, and the position after them,
    one record at a time.

    The last position may name a record that runs past the end of the chunk (then the returned
    position lies past it too).
    """
    positions: list[int] = []
    append = positions.append
    try:
        for _ in range(limit):
            (caplen,) = caplen_at(chunk, pos + 8)
            append(pos)
            pos += 16 + caplen
    except struct.error:
        pass  # fewer than 12 bytes left: the next record header is incomplete
    return positions, pos


def chain(
    data: npt.NDArray[np.uint8], pos: int, stop: int, order: str, fractions: int
) -> tuple[Positions, int]:
    """The run of records from the one at `pos` whose headers start before `stop`, found with
    numpy: their positions and the position after the last (past the data if it is incomplete).

    Candidates have the top byte of the first record's seconds and a fraction under `fractions`
    (in nanosecond captures, also a captured length no longer than the packet). Where packet data
    passes for a header, it breaks the run: the run goes on from where the last record leads (up
    to `MENDS` times); where there are many such breaks, only the candidates another candidate
    leads to are kept first.
    """
    last = min(stop, len(data) - 16)  # the last position whose whole header can be read
    top_at = 3 if order == "<" else 0
    hits = data[pos + top_at : last + top_at + 1] == data[pos + top_at]
    starts = np.flatnonzero(hits)  # relative to `pos` until the end
    fraction = _words(data, order, pos + 4, last + 4)[starts]
    caplens = _words(data, order, pos + 8, last + 8)[starts]
    plausible = fraction < fractions
    if fractions > 1_000_000:  # nanoseconds: nearly any word passes for a fraction
        plausible &= caplens <= _words(data, order, pos + 12, last + 12)[starts]
    plausible[0] = True  # the record at `pos` is one, whatever it holds
    starts = starts[plausible]
    ends = starts + 16
    ends += caplens[plausible]
    breaks = np.flatnonzero(ends[:-1] != starts[1:])
    if len(breaks) > MENDS_ALONE:
        starts, ends = _reached(starts, ends, len(hits))
        breaks = np.flatnonzero(ends[:-1] != starts[1:])
    first, pieces, stops = 0, [], breaks.tolist()
    for _ in range(MENDS):
        at = bisect.bisect_left(stops, first)
        stop = stops[at] if at < len(stops) else len(starts) - 1
        pieces.append(starts[first : stop + 1])
        after = int(ends[stop])
        first = int(np.searchsorted(starts, after))
        if first >= len(starts) or starts[first] != after:
            break
    run = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return run + pos, after + pos


def _reached(starts: Positions, ends: Positions, span: int) -> tuple[Positions, Positions]:
    """The candidates (starting at `starts`, below `span`) that the first is or another leads to."""
    reached = np.zeros(span + 1, np.bool_)
    reached[np.minimum(ends, span)] = True
    reached[0] = True
    kept = reached[starts]
    return starts[kept], ends[kept]


def _words(data: npt.NDArray[np.uint8], order: str, first: int, last: int) -> npt.NDArray[np.uint32]:
    """The 32-bit words of byte `order` that start at each byte from `first` to `last` (a view)."""
    return np.ndarray((last - first + 1,), order + "u4", data, first, (1,))


class RecordRuns:
    """How to find the next records of one classic pcap: the size of the numpy window, or how many
    records Python walks before numpy tries again."""

    def __init__(self, order: str, fraction_ns: int, caplen_at: Unpack) -> None:
        self.order, self.caplen_at = order, caplen_at
        self.fractions = 1_000_000_000 // fraction_ns  # fractions of a second (micro or nano)
        self._record_bytes = 128
        self._span = 1 << 20
        self._python_limit = 0

    def walk(self, chunk: bytes, pos: int, limit: int) -> tuple[Positions, int]:
        """The positions of up to `limit` records from `pos` and the position after them, as
        `walk_records` gives them: the last may run past the end of the chunk."""
        data = np.frombuffer(chunk, np.uint8)
        parts: list[Positions] = []
        count = 0
        while count < limit and pos + 12 <= len(chunk):
            wanted = limit - count
            if self._python_limit or pos + 16 > len(chunk):
                found, after = walk_records(chunk, pos, min(wanted, self._python_limit or 1), self.caplen_at)
                self._python_limit = max(0, self._python_limit - len(found))
                positions = np.array(found, np.int64)
            else:
                positions, after = self._numpy_run(data, pos, wanted)
            parts.append(positions)
            count += len(positions)
            pos = after
        if not parts:
            return np.empty(0, np.int64), pos
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), pos

    def _numpy_run(self, data: npt.NDArray[np.uint8], pos: int, wanted: int) -> tuple[Positions, int]:
        """A run of up to `wanted` records from `pos` (at least one: its whole header is there)."""
        span = min(self._span, wanted * self._record_bytes * 5 // 4 + 4096)
        starts, after = chain(data, pos, pos + span, self.order, self.fractions)
        if len(starts) > wanted:
            after = int(starts[wanted])
            starts = starts[:wanted]
        elif after <= min(pos + span, len(data) - 16):  # stopped early, at a record numpy did not take
            if len(starts) < min(wanted, SHORT_RUN):
                self._python_limit = SHORT_RUN
            self._span = max(1 << 12, 2 * (after - pos))
        elif after - pos >= span // 2:
            self._span = min(2 * self._span, MAX_SPAN)
        self._record_bytes = max(16, (after - pos) // len(starts))
        return starts, after
