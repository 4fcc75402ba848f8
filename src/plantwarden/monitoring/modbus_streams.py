"""Modbus/TCP over the TCP streams of a batch: the fast path where it may, the exact path elsewhere.

The column extractor first decodes every Modbus segment of the batch as it is, in one pass. A
segment keeps those rows (the fast path) when the exact path would give the very same: it is no
SYN, its headers are sound, and its stream stood at an ADU boundary (nothing pending) expecting
its sequence number; a partial last ADU is then kept pending, as the exact path would. The
second half of a split ADU that follows such a segment is decoded behind those pending bytes, all
of them in a second pass of the extractor. Segments that follow each other exactly form runs
(`_Plan`) that are decided at once: only a run's first segment is checked against the stream,
in Python. The rest (retransmissions, gaps, overlaps, SYNs, a split ADU whose first half was not
taken fast) goes through `TcpStream`, which delivers each byte once; what it delivers, behind the
pending bytes, is framed to learn what stays pending, and decoded by the extractor in one more
pass. Each PDU is attributed to the packet whose data completes it, as Wireshark does, so rows
can be matched to tshark's frame by frame. Which path took a segment never shows in the rows:
the tests hold the sensor to the exact path alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.capture.tcp import StreamFinding, TcpStream, follows, stream_order
from plantwarden.protocols.modbus import Extracted, ModbusColumns, ModbusFinding, extract, split_adus
from plantwarden.protocols.modbus.columns import NAMES

SYN = 0x02
BAD_HEADERS = (ModbusFinding.BAD_PROTOCOL_ID, ModbusFinding.BAD_LENGTH)
"""Findings that mean the stream may not be at an ADU boundary any more (kept off the fast path)."""


@dataclass(slots=True)
class StreamState:
    """One direction of one Modbus connection: its TCP stream and the start of a split ADU."""

    tcp: TcpStream = field(default_factory=TcpStream)
    pending: bytes = b""


@dataclass(frozen=True, slots=True)
class ModbusBatch:
    """The PDUs completed in a batch: their columns and, per row, the packet that completed them."""

    columns: ModbusColumns
    packet: npt.NDArray[np.int64]
    from_server: npt.NDArray[np.bool_]
    segments: int
    exact_segments: int

    @classmethod
    def empty(cls) -> ModbusBatch:
        """No PDUs."""
        return cls(ModbusColumns.empty(0), np.zeros(0, np.int64), np.zeros(0, bool), 0, 0)


@dataclass(slots=True)
class _Segments:
    """The Modbus segments (with data, or SYN) of a batch, as columns, in capture order."""

    packet: npt.NDArray[np.int64]
    stream: npt.NDArray[np.int64]
    from_server: npt.NDArray[np.bool_]
    seq: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint16]
    start: npt.NDArray[np.int64]
    length: npt.NDArray[np.int32]


class ModbusStreams:
    """The Modbus streams of a sensor, fed a batch at a time."""

    def __init__(self, ports: tuple[int, ...] = (502,)) -> None:
        self.ports = np.array(ports, dtype=np.uint16)
        self._is_port = np.zeros(1 << 16, dtype=bool)
        self._is_port[self.ports] = True
        self.states: dict[int, StreamState] = {}
        self.findings: dict[StreamFinding, int] = dict.fromkeys(StreamFinding, 0)

    def process(self, batch: PacketBatch, layers: Layers, flow_ids: npt.NDArray[np.int64]) -> ModbusBatch:
        """The PDUs completed by the batch's packets."""
        segments = self._segments(layers, flow_ids)
        if len(segments.packet) == 0:
            return ModbusBatch.empty()
        probe = extract(batch.buffer, segments.start, segments.length, segments.from_server)
        plan = _Plan(batch.buffer, segments, probe)
        walk = _BatchWalk(batch.buffer, segments, plan, self.states, self.findings)
        walk.run()
        keep = (walk.fast & ~plan.continued)[probe.columns.segment]
        columns = _merged(
            probe.columns, keep, segments.packet, _concatenate([plan.rows(walk.fast), walk.decoded()])
        )
        return ModbusBatch(
            columns,
            columns.segment.copy(),
            columns.is_response.copy(),
            int(np.count_nonzero(segments.length)),
            walk.exact,
        )

    def forget(self, flow_ids: list[int]) -> None:
        """Drop the streams of flows that ended."""
        for flow_id in flow_ids:
            self.states.pop(flow_id * 2, None)
            self.states.pop(flow_id * 2 + 1, None)

    def _segments(self, layers: Layers, flow_ids: npt.NDArray[np.int64]) -> _Segments:
        from_server = self._is_port[layers.src_port]
        wanted = (from_server | self._is_port[layers.dst_port]) & (layers.ip_proto == 6) & (flow_ids >= 0)
        wanted &= (layers.payload_offset >= 0) & ((layers.payload_length > 0) | (layers.tcp_flags & SYN != 0))
        packet = np.flatnonzero(wanted)
        side = from_server[packet]
        return _Segments(
            packet=packet,
            stream=flow_ids[packet] * 2 + side,
            from_server=side,
            seq=layers.tcp_seq[packet],
            flags=layers.tcp_flags[packet],
            start=layers.payload_offset[packet],
            length=layers.payload_length[packet],
        )


class _Plan:
    """What numpy can decide of a batch's segments before the walk: which ones form runs.

    In stream order (`order`), a segment is linked to the one before it when it follows it
    exactly and both would be taken fast: itself whole ADUs with sound headers, the one before
    ending on an ADU boundary. Or, a *continuation*: it follows a segment that ended inside an
    ADU (the second half of a split ADU), and the pending bytes and its own, decoded together in
    one more pass of the extractor, are whole sound ADUs. A run is a segment not linked to the
    one before it and the linked ones after it.
    """

    def __init__(self, buffer: npt.NDArray[np.uint8], segments: _Segments, probe: Extracted) -> None:
        self.segments = segments
        self.eligible = (segments.length > 0) & ((segments.flags & SYN) == 0) & ~_unsound(probe)
        """Per segment: whether the fast path may take it as it is (whole ADUs, sound headers)."""
        self.leftover = probe.leftover.copy()
        """Per segment: the bytes of a partial last ADU it leaves pending when taken fast."""
        self.order = order = stream_order(segments.stream)
        after = follows(segments.stream[order], segments.seq[order], segments.length[order])
        eligible, ending = self.eligible[order], self.leftover[order] == 0
        self.continued = np.zeros(len(order), dtype=bool)
        """Per segment: whether it is taken fast as a continuation (capture order)."""
        self.joined = self._continuations(buffer, after, eligible, ending)
        continued = self.continued[order]
        ready = (eligible & ending) | continued  # the stream is at an ADU boundary after it, if fast
        linked = after & (continued | (eligible & np.append(False, ready[:-1])))
        self.runs = np.flatnonzero(~linked)

    def _continuations(
        self,
        buffer: npt.NDArray[np.uint8],
        after: npt.NDArray[np.bool_],
        eligible: npt.NDArray[np.bool_],
        ending: npt.NDArray[np.bool_],
    ) -> Extracted | None:
        """Decode the second halves of split ADUs behind their first; mark the sound ones.

        Arguments are in stream order. A continuation follows an eligible segment that ended
        inside an ADU, and is itself data, no SYN, and no continuation's continuation (which
        the exact path takes).
        """
        s, order = self.segments, self.order
        candidate = np.append(False, after[1:] & eligible[:-1] & ~ending[:-1])
        at = np.flatnonzero(candidate)
        at = at[(s.length[order[at]] > 0) & ((s.flags[order[at]] & SYN) == 0) & ~candidate[at - 1]]
        if not len(at):
            return None
        first, second = order[at - 1], order[at]
        tail = self.leftover[first].astype(np.int64)
        starts = np.column_stack((s.start[first] + s.length[first] - tail, s.start[second])).ravel()
        lengths = np.column_stack((tail, s.length[second].astype(np.int64)))
        data, placed = _gather_ranges(buffer, starts, lengths.ravel())
        joined = extract(data, placed[0::2], lengths.sum(axis=1).astype(np.int32), s.from_server[second])
        sound = ~_unsound(joined) & (joined.leftover == 0)
        self.continued[second[sound]] = True
        self.leftover[second[sound]] = 0
        self.eligible[second[sound]] = False  # never the first of a run: pending bytes come before it
        joined.columns.segment = second[joined.columns.segment]
        return joined

    def rows(self, fast: npt.NDArray[np.bool_]) -> ModbusColumns | None:
        """The continuations' rows, of those the walk took fast, labelled with their packets."""
        if self.joined is None:
            return None
        columns = self.joined.columns
        rows = columns.take((fast & self.continued)[columns.segment])
        rows.segment = self.segments.packet[rows.segment]
        return rows


class _BatchWalk:
    """The batch's segments, stream by stream: runs of fast ones at once, the others exactly.

    The Python loop visits runs (`_Plan`), not segments, and goes segment by segment only inside
    a run whose first segment the exact path had to take.
    """

    def __init__(
        self,
        buffer: npt.NDArray[np.uint8],
        segments: _Segments,
        plan: _Plan,
        states: dict[int, StreamState],
        findings: dict[StreamFinding, int],
    ) -> None:
        self.buffer, self.segments, self.plan = buffer, segments, plan
        self.states, self.findings = states, findings
        self.fast = np.zeros(len(segments.packet), dtype=bool)
        """Per segment (capture order): whether the fast path took it."""
        self.exact = 0
        self._taken: list[tuple[int, int]] = []
        self._buffers: list[bytes] = []
        self._packets: list[int] = []
        self._from_server: list[bool] = []

    def run(self) -> None:
        """Bring every stream to the batch's end; mark the fast segments, keep the exact bytes."""
        s, plan = self.segments, self.plan
        order, runs = plan.order, plan.runs
        ends = np.append(runs[1:], len(order))
        heads, lasts = order[runs], order[ends - 1]
        head_rows = zip(
            *(
                column[heads].tolist()
                for column in (s.stream, plan.eligible, s.seq, s.flags, s.start, s.length)
            ),
            s.packet[heads].tolist(),
            s.from_server[heads].tolist(),
            strict=True,
        )
        last_rows = zip(
            *(column[lasts].tolist() for column in (s.seq, s.start, s.length, plan.leftover)), strict=True
        )
        stream, state = -1, StreamState()
        for first, end, (stream_id, eligible, *head), last in zip(
            runs.tolist(), ends.tolist(), head_rows, last_rows, strict=True
        ):
            if stream_id != stream:
                stream = stream_id
                found = self.states.get(stream)
                if found is None:
                    found = self.states[stream] = StreamState()
                state = found
            if eligible and _continues(state, head[0]):
                self._take(state, first, end, last)
                continue
            self._decode(state, *head)
            for at in range(first + 1, end):  # the rest of the run, now without its first segment
                index = int(order[at])
                if plan.eligible[index] and _continues(state, int(s.seq[index])):
                    self._take(state, at, end, last)
                    break
                self._decode(state, *self._segment(index))
        if self._taken:
            taken = np.array(self._taken, dtype=np.int64)
            bounds = np.bincount(taken[:, 0], minlength=len(order) + 1)
            bounds -= np.bincount(taken[:, 1], minlength=len(order) + 1)
            self.fast[order] = np.cumsum(bounds[:-1]) > 0

    def decoded(self) -> ModbusColumns | None:
        """The rows of the bytes the exact path delivered, labelled with their packets."""
        if not self._buffers:
            return None
        lengths = np.fromiter(map(len, self._buffers), dtype=np.int32, count=len(self._buffers))
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        data = np.frombuffer(b"".join(self._buffers), dtype=np.uint8)
        columns = extract(data, starts, lengths, np.array(self._from_server, dtype=bool)).columns
        columns.segment = np.array(self._packets, dtype=np.int64)[columns.segment]
        return columns

    def _segment(self, index: int) -> tuple[int, int, int, int, int, bool]:
        s = self.segments
        return (
            int(s.seq[index]),
            int(s.flags[index]),
            int(s.start[index]),
            int(s.length[index]),
            int(s.packet[index]),
            bool(s.from_server[index]),
        )

    def _take(self, state: StreamState, first: int, end: int, last: tuple[int, int, int, int]) -> None:
        """The fast path takes the run's segments from `first` to its end (`last`: seq, start,
        length and leftover bytes of the run's last segment)."""
        self._taken.append((first, end))
        seq, start, length, leftover = last
        payload = self.buffer[start : start + length].tobytes()
        state.tcp.seen(seq, payload)
        state.pending = payload[length - leftover :] if leftover else b""

    def _decode(
        self,
        state: StreamState,
        seq: int,
        flags: int,
        start: int,
        length: int,
        packet: int,
        from_server: bool,
    ) -> None:
        """The exact path takes a segment: the bytes it delivers are kept for the second pass."""
        self.exact += 1
        if flags & SYN:
            state.tcp.syn(seq)
            state.pending = b""
            return
        tcp = state.tcp
        fresh = tcp.accept(seq, self.buffer[start : start + length].tobytes())
        for finding, _ in tcp.findings:
            self.findings[finding] += 1
            if finding == StreamFinding.GAP:
                state.pending = b""
        tcp.findings.clear()
        if not fresh:  # a retransmission: what was pending stays pending, and decodes to nothing
            return
        data = state.pending + fresh
        leftover = split_adus(data).leftover
        state.pending = data[len(data) - leftover :] if leftover else b""
        self._buffers.append(data)
        self._packets.append(packet)
        self._from_server.append(from_server)


def _unsound(extracted: Extracted) -> npt.NDArray[np.bool_]:
    """Per input segment: whether a row of it has a header that cannot be Modbus."""
    columns = extracted.columns
    unsound = np.zeros(len(extracted.leftover), dtype=bool)
    unsound[columns.segment[(columns.finding == BAD_HEADERS[0]) | (columns.finding == BAD_HEADERS[1])]] = True
    return unsound


def _gather_ranges(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The byte ranges `buffer[start:start + length]` one after the other, and where each begins."""
    placed = np.cumsum(lengths) - lengths
    index = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(placed - starts, lengths)
    return buffer[index], placed


def _concatenate(parts: list[ModbusColumns | None]) -> ModbusColumns | None:
    present = [part for part in parts if part is not None and len(part)]
    if len(present) <= 1:
        return present[0] if present else None
    return ModbusColumns(*(np.concatenate([getattr(part, name) for part in present]) for name in NAMES))


def _continues(state: StreamState, seq: int) -> bool:
    """Whether the stream stands at an ADU boundary and expects `seq` (or any number, if unknown)."""
    next_seq = state.tcp.next_seq
    return not state.pending and (next_seq is None or next_seq == seq)


def _merged(
    probe: ModbusColumns,
    keep: npt.NDArray[np.bool_],
    packets: npt.NDArray[np.int64],
    apart: ModbusColumns | None,
) -> ModbusColumns:
    """The probe's rows to `keep` and the rows decoded apart (continuations, exact path; labelled
    with their packets), in (packet, pdu_index) order; each row's `segment` becomes its packet.

    The probe's rows are in that order already (segments are in capture order); the others are
    sorted and slotted in between: one gather per column, and a few writes.
    """
    probe_packets = packets[probe.segment]
    kept = np.flatnonzero(keep)
    if apart is None:
        probe = probe if len(kept) == len(keep) else probe.take(kept)
        probe.segment = probe_packets if len(kept) == len(keep) else probe_packets[kept]
        return probe
    apart = apart.take(np.argsort(apart.segment, kind="stable"))
    if len(kept) == 0:
        return apart
    slots = np.searchsorted(probe_packets[kept], apart.segment) + np.arange(len(apart))
    from_probe = np.ones(len(kept) + len(apart), dtype=bool)
    from_probe[slots] = False
    source = np.zeros(len(from_probe), dtype=np.int64)
    source[from_probe] = kept
    merged = probe.take(source)
    merged.segment = probe_packets[source]
    for name in NAMES:
        getattr(merged, name)[slots] = getattr(apart, name)
    return merged
