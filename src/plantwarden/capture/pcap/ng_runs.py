"""Finding runs of pcapng enhanced packet blocks, with numpy where it pays and Python where not.

numpy finds the runs of enhanced packet blocks (words holding the block type, a plausible length,
the same length at the block's end, each block starting where the previous ends); where packet
data looks like a block and breaks a run, Python walks the rest of the batch, so that crafted
traffic cannot make the reader slow.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from plantwarden.capture.pcap.columns import Unpack

MAX_WINDOW = 1 << 22  # words that numpy looks through for a run of enhanced packet blocks
SHORT_RUN = 64  # enhanced packet blocks; Python walks after shorter runs
ENHANCED_PACKET = 6
ENHANCED_PACKET_TYPE = {"<": b"\x06\x00\x00\x00", ">": b"\x00\x00\x00\x06"}


def _walk_blocks(chunk: bytes, pos: int, limit: int, head: Unpack) -> tuple[list[int], int]:
    """The positions of up to `limit` consecutive enhanced packet blocks from `pos`
    (see `EnhancedRuns.walk`)."""
    positions: list[int] = []
    append = positions.append
    try:
        for _ in range(limit):
            kind, length = head(chunk, pos)
            if kind != ENHANCED_PACKET:
                break
            append(pos)
            pos += length
    except struct.error:
        pass  # fewer than 8 bytes left
    return positions, pos


def _chain(words: npt.NDArray[np.uint32], limit: int) -> tuple[npt.NDArray[np.int64], int, bool] | None:
    """Up to `limit` consecutive enhanced packet blocks from the start of `words`, found with numpy:
    their word positions, the position after them, and whether the run stopped at packet data that
    looks like a block header. None if no complete block starts there.

    Candidates are words holding the block type, followed by a plausible length that the block's
    last word repeats; the run is the candidates each of which starts where the previous ends.
    """
    starts = np.flatnonzero(words[:-1] == ENHANCED_PACKET)
    lengths = words[starts + 1]
    ends = starts + (lengths >> 2)
    plausible = (lengths >= 32) & (lengths % 4 == 0) & (ends <= len(words))
    starts, ends, lengths = starts[plausible], ends[plausible], lengths[plausible]
    closed = words[ends - 1] == lengths
    starts, ends = starts[closed], ends[closed]
    if not len(starts) or starts[0] != 0:
        return None
    breaks = np.flatnonzero(ends[:-1] != starts[1:])
    run = int(breaks[0]) + 1 if len(breaks) else len(starts)
    count = min(run, limit)
    misled = count == run < len(starts) and starts[run] < ends[run - 1]
    return starts[:count], int(ends[count - 1]), bool(misled)


class EnhancedRuns:
    """Where the runs of enhanced packet blocks lie in the chunks of one capture, and how to look
    for the next one (the size of the numpy window, or how many blocks Python walks)."""

    def __init__(self) -> None:
        self._block_words = 64
        self._span = 1 << 14
        self._python_limit = 0

    def walk(
        self, chunk: bytes, pos: int, limit: int, order: str, head: Unpack
    ) -> tuple[npt.NDArray[np.int64] | list[int], int]:
        """A run of enhanced packet blocks from `pos` (none if another block is there), in a section
        of byte `order` whose block headers `head` reads.

        numpy looks for the run in a window that grows while runs fill it and shrinks to twice the
        last run when it ends early. Python walks instead after short runs (other blocks between
        packets), until it finds a long one, and for the rest of the batch after numpy was misled
        (packet data that looks like a block): the work stays in proportion to the packets found.
        """
        if chunk[pos : pos + 4] != ENHANCED_PACKET_TYPE[order]:
            return [], pos
        if self._python_limit:
            positions, end = _walk_blocks(chunk, pos, min(limit, self._python_limit), head)
            if len(positions) >= self._python_limit:
                self._python_limit = 0
            return positions, end
        words = np.frombuffer(chunk, order + "u4", count=len(chunk) // 4)
        span = min(self._span, 2 * limit * self._block_words + 1024)
        found = _chain(words[pos >> 2 : (pos >> 2) + span], limit)
        if found is None:  # an incomplete or impossible block: Python and the slow path say which
            return _walk_blocks(chunk, pos, limit, head)
        starts, end, misled = found
        if misled:
            self._python_limit = limit
        elif len(starts) < min(limit, SHORT_RUN) and 2 * end < span:
            self._python_limit = SHORT_RUN
        self._block_words = max(8, end // len(starts))
        self._span = min(2 * self._span, MAX_WINDOW) if 2 * end >= span else max(1024, 2 * end)
        return starts * 4 + pos, end * 4 + pos
