"""TCP byte streams: which segments the fast path may take, and the exact path for the rest.

The fast path takes a segment as it is when it continues its direction's stream exactly (its
sequence number is the one expected) and the stream stood at a message boundary before it; the
protocol's column extractor then decodes it in place. Everything else (the second half of a split
message, a retransmission, a gap, overlapping data) goes through `TcpStream`, one direction of one
connection, which delivers each byte once, in order, and reports what it saw:

- a retransmission (data seen before, the same bytes) is dropped, so nothing is counted twice;
- overlapping data that differs from what was seen first is an evasion attempt (`OVERLAP_MISMATCH`;
  the first copy wins, as most hosts keep it);
- a gap (data missing from the capture) drops what was pending and restarts at the new segment.

Sequence numbers are compared modulo 2^32.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

WINDOW = 65536
"""Bytes of a direction's stream kept to compare retransmitted data with."""
MODULO = 1 << 32


class StreamFinding(enum.IntEnum):
    """What the exact path saw on a stream."""

    RETRANSMISSION = 1
    OVERLAP_MISMATCH = 2
    GAP = 3


def sequence_delta(seq: int, expected: int) -> int:
    """`seq - expected` as a signed distance modulo 2^32."""
    delta = (seq - expected) % MODULO
    return delta - MODULO if delta >= MODULO // 2 else delta


@dataclass(slots=True)
class TcpStream:
    """One direction of one TCP connection on the exact path."""

    next_seq: int | None = None
    window: bytearray = field(default_factory=bytearray)
    window_seq: int = 0
    findings: list[tuple[StreamFinding, int]] = field(default_factory=list)

    def syn(self, seq: int) -> None:
        """A SYN: the stream's data starts at `seq + 1`."""
        self.next_seq = (seq + 1) % MODULO
        self.window.clear()
        self.window_seq = self.next_seq

    def seen(self, seq: int, payload: bytes) -> None:
        """Data the fast path took in order: remember it and move on."""
        self._remember(seq, payload)
        self.next_seq = (seq + len(payload)) % MODULO

    def accept(self, seq: int, payload: bytes) -> bytes:
        """The bytes of a segment not seen before, in stream order (b"" for a pure retransmission)."""
        if self.next_seq is None:
            self.seen(seq, payload)
            return payload
        delta = sequence_delta(seq, self.next_seq)
        if delta > 0:
            self.findings.append((StreamFinding.GAP, delta))
            self.window.clear()
            self.seen(seq, payload)
            return payload
        old = min(-delta, len(payload))
        if old:
            self._compare(seq, payload[:old])
        fresh = payload[old:]
        if fresh:
            self.seen((seq + old) % MODULO, fresh)
        return fresh

    def _compare(self, seq: int, data: bytes) -> None:
        start = sequence_delta(seq, self.window_seq)
        if start < 0 or start + len(data) > len(self.window):
            self.findings.append((StreamFinding.RETRANSMISSION, len(data)))  # older than we keep
            return
        if self.window[start : start + len(data)] != data:
            self.findings.append((StreamFinding.OVERLAP_MISMATCH, len(data)))
        else:
            self.findings.append((StreamFinding.RETRANSMISSION, len(data)))

    def _remember(self, seq: int, payload: bytes) -> None:
        if not self.window or sequence_delta(seq, (self.window_seq + len(self.window)) % MODULO) != 0:
            self.window = bytearray(payload[-WINDOW:])
            self.window_seq = (seq + len(payload) - len(self.window)) % MODULO
            return
        self.window += payload
        excess = len(self.window) - WINDOW
        if excess > 0:
            del self.window[:excess]
            self.window_seq = (self.window_seq + excess) % MODULO


def stream_order(stream_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The segments grouped by stream (ascending ids), in capture order within each: a stable argsort.

    Stream ids are small non-negative integers, so each is packed with its position into one
    int64 and sorted as plain numbers, several times faster than numpy's stable argsort.
    """
    count = len(stream_ids)
    bits = max(count - 1, 1).bit_length()
    if count == 0 or int(stream_ids.min()) < 0 or int(stream_ids.max()) >> (62 - bits):
        return np.argsort(stream_ids, kind="stable").astype(np.int64)
    packed = (stream_ids.astype(np.int64) << bits) | np.arange(count, dtype=np.int64)
    packed.sort()
    order: npt.NDArray[np.int64] = packed & ((1 << bits) - 1)
    return order


def follows(
    stream_ids: npt.NDArray[np.int64], seq: npt.NDArray[np.uint32], lengths: npt.NDArray[np.int32]
) -> npt.NDArray[np.bool_]:
    """Per segment of segments grouped by stream (`stream_order`): whether it starts where the
    segment before it, in the same stream, ends (its sequence number plus its length, mod 2^32).

    A stream's first segment follows nothing (False).
    """
    result = np.zeros(len(stream_ids), dtype=bool)
    if len(stream_ids) > 1:
        ends = (seq[:-1].astype(np.int64) + lengths[:-1]) % MODULO
        result[1:] = (stream_ids[1:] == stream_ids[:-1]) & (seq[1:] == ends)
    return result
