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


def in_order(
    stream_ids: npt.NDArray[np.int64],
    seq: npt.NDArray[np.uint32],
    advance: npt.NDArray[np.int64],
    expected_at_start: dict[int, int],
) -> npt.NDArray[np.bool_]:
    """Per segment (in capture order): whether its sequence number is the one its stream expects.

    `advance` is how far each segment moves its stream (payload length, +1 for SYN or FIN); a
    stream's first segment of the batch is compared with `expected_at_start` (streams missing
    from it accept any number).
    """
    count = len(stream_ids)
    if count == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(stream_ids, kind="stable")
    ids, seqs = stream_ids[order], seq[order].astype(np.int64)
    expected = np.empty(count, dtype=np.int64)
    expected[1:] = (seqs[:-1] + advance[order][:-1]) % MODULO
    first = np.ones(count, dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    starts = np.array([expected_at_start.get(int(i), -1) for i in ids[first]], dtype=np.int64)
    expected[first] = np.where(starts >= 0, starts, seqs[first])
    result = np.empty(count, dtype=bool)
    result[order] = seqs == expected
    return result
