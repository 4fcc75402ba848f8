"""Modbus/TCP over the TCP streams of a batch: the fast path where it may, the exact path elsewhere.

The framer (`walk`) first frames every Modbus segment of the batch as it is, in one pass. A
segment keeps those ADUs (the fast path) when the exact path would give the very same: it is no
SYN, its headers are sound, and its stream stood at an ADU boundary (nothing pending) expecting
its sequence number; a partial last ADU is then kept pending, as the exact path would. The
second half of a split ADU that follows such a segment is framed behind those pending bytes, all
of them in a second pass of the framer. Segments that follow each other exactly form runs
(`_Plan`) that are decided at once: only a run's first segment is checked against the stream,
in Python; a retransmission of the segment just before it in its stream (a *repeat*, most
retransmissions) stays in the run, counted as the exact path would count it. The rest (other
retransmissions, gaps, overlaps, SYNs, a split ADU whose first half was not taken fast) goes
through `TcpStream`, which delivers each byte once; what it delivers, behind the pending bytes,
is framed to learn what stays pending, and by the framer in one more pass. The ADUs kept from
all three passes are put in order and decoded once, together (the PDU decoder's work is per
row, so rows decoded and then dropped or merged would cost twice). Each PDU is attributed to
the packet whose data completes it, as Wireshark does, so rows can be matched to tshark's frame
by frame. Which path took a segment never shows in the rows: the tests hold the sensor to the
exact path alone.

The segments are those of the connections whose protocol port (`FlowUpdate.protocol_ports`) is
a Modbus port: their server's port, or their client's when no protocol is known on the server's.
A client that polls another protocol's server from port 502 does not make its connection Modbus.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.capture.tcp import WINDOW as TCP_WINDOW
from plantwarden.capture.tcp import StreamFinding, TcpStream, stream_order
from plantwarden.protocols.modbus import ModbusColumns, split_adus
from plantwarden.protocols.modbus.extract import decode_adus
from plantwarden.protocols.modbus.walk import Adus, Level, Walk, Windows, in_order, walk

SYN = 0x02


@dataclass(slots=True)
class StreamState:
    """One direction of one Modbus connection: its TCP stream and the start of a split ADU."""

    tcp: TcpStream = field(default_factory=TcpStream)
    pending: bytes = b""


@dataclass(frozen=True, slots=True)
class ModbusBatch:
    """The PDUs completed in a batch: their columns and, per row, the packet that completed them
    and its side (the very arrays of the columns' `segment` and `is_response`)."""

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


@dataclass(frozen=True, slots=True)
class _Apart:
    """ADUs framed apart from the batch's buffer (continuations, the exact path), in their own
    `data`: the walk, the batch segment of each segment it framed, and which of those to keep."""

    found: Walk
    segments: npt.NDArray[np.int64]
    keep: npt.NDArray[np.bool_]
    data: npt.NDArray[np.uint8]


class ModbusStreams:
    """The Modbus streams of a sensor, fed a batch at a time."""

    def __init__(self, ports: tuple[int, ...] = (502,)) -> None:
        self.ports = np.array(ports, dtype=np.uint16)
        self._is_port = np.zeros(1 << 16, dtype=bool)
        self._is_port[self.ports] = True
        self.states: dict[int, StreamState] = {}
        self.findings: dict[StreamFinding, int] = dict.fromkeys(StreamFinding, 0)

    def process(
        self,
        batch: PacketBatch,
        layers: Layers,
        flow_ids: npt.NDArray[np.int64],
        protocol_ports: npt.NDArray[np.uint16],
    ) -> ModbusBatch:
        """The PDUs completed by the batch's packets (given their flows, and the ports that say
        what their conversations speak: `FlowUpdate.protocol_ports`)."""
        segments = self._segments(layers, flow_ids, protocol_ports)
        if len(segments.packet) == 0:
            return ModbusBatch.empty()
        probe = walk(Windows(batch.buffer), segments.start, segments.length)
        plan = _Plan(batch.buffer, segments, probe)
        walk_ = _BatchWalk(batch.buffer, segments, plan, self.states, self.findings)
        walk_.run()
        apart = [part for part in (plan.taken(walk_.fast), walk_.decoded()) if part is not None]
        adus = _in_order(probe, walk_.fast & ~plan.continued & ~plan.repeated, apart, len(batch.buffer))
        packet, is_response = segments.packet[adus.segment], segments.from_server[adus.segment]
        behind = np.concatenate([part.data for part in apart]) if apart else None
        columns = decode_adus(adus, is_response, Windows(batch.buffer, behind), packet)
        return ModbusBatch(
            columns, columns.segment, columns.is_response, int(np.count_nonzero(segments.length)), walk_.exact
        )

    def _of_ports(self, ports: npt.NDArray[np.uint16]) -> npt.NDArray[np.bool_]:
        """Per packet: whether `ports` (one per packet) is a Modbus port.

        A comparison per port, for a few (a lookup in `_is_port` takes several times longer).
        """
        if not 0 < len(self.ports) <= 4:
            found: npt.NDArray[np.bool_] = self._is_port[ports]
            return found
        found = ports == self.ports[0]
        for port in self.ports[1:]:
            found |= ports == port
        return found

    def forget(self, flow_ids: list[int]) -> None:
        """Drop the streams of flows that ended."""
        for flow_id in flow_ids:
            self.states.pop(flow_id * 2, None)
            self.states.pop(flow_id * 2 + 1, None)

    def _segments(
        self, layers: Layers, flow_ids: npt.NDArray[np.int64], protocol_ports: npt.NDArray[np.uint16]
    ) -> _Segments:
        """The segments, with data or SYN, of the connections whose protocol port is Modbus's."""
        wanted = self._of_ports(protocol_ports) & (layers.ip_proto == 6) & (flow_ids >= 0)
        wanted &= (layers.payload_offset >= 0) & ((layers.payload_length > 0) | (layers.tcp_flags & SYN != 0))
        packet = np.flatnonzero(wanted)
        side = self._of_ports(layers.src_port[packet])
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
    ADU (the second half of a split ADU), and the pending bytes and its own, framed together in
    one more pass of the framer, are whole sound ADUs. Or, a *repeat*: the very segment before
    it again (sequence number and bytes), a retransmission, which the exact path would count
    and drop, changing nothing. A run is a segment not linked to the one before it and the
    linked ones after it.
    """

    def __init__(self, buffer: npt.NDArray[np.uint8], segments: _Segments, probe: Walk) -> None:
        self.segments = segments
        self.eligible = (segments.length > 0) & ((segments.flags & SYN) == 0) & ~_unsound(probe)
        """Per segment: whether the fast path may take it as it is (whole ADUs, sound headers)."""
        self.leftover = probe.leftover.copy()
        """Per segment: the bytes of a partial last ADU it leaves pending when taken fast."""
        self.order = order = stream_order(segments.stream)
        stream, seq, length = segments.stream[order], segments.seq[order], segments.length[order]
        same_stream = stream[1:] == stream[:-1]
        # `tcp.follows`, in uint32 arithmetic (wrapping as sequence numbers do): several times faster.
        after = np.append(False, same_stream & (seq[1:] == seq[:-1] + length[:-1].astype(np.uint32)))
        repeated = self._repeats(buffer, same_stream, seq, length)
        self.repeated = np.zeros(len(order), dtype=bool)
        """Per segment: whether it is a repeat (capture order)."""
        self.repeated[order] = repeated
        eligible, ending = self.eligible[order], self.leftover[order] == 0
        self.continued = np.zeros(len(order), dtype=bool)
        """Per segment: whether it is taken fast as a continuation (capture order)."""
        self.joined = self._continuations(buffer, after & ~np.append(False, repeated[:-1]), eligible, ending)
        continued = self.continued[order]
        ready = (eligible & ending) | continued  # the stream is at an ADU boundary after it, if fast
        if (repeats := np.flatnonzero(repeated)).size:
            # A repeat leaves the stream as the segment it repeats left it; it never starts a
            # fast range (the walk takes it fast only inside one, after what it repeats).
            originals = _originals(repeated, repeats)
            ready[repeats] = ready[originals]
            self.leftover[order[repeats]] = self.leftover[order[originals]]
            self.eligible[order[repeats]] = False
        linked = repeated | (after & (continued | (eligible & np.append(False, ready[:-1]))))
        self.runs = np.flatnonzero(~linked)

    def _repeats(
        self,
        buffer: npt.NDArray[np.uint8],
        same_stream: npt.NDArray[np.bool_],
        seq: npt.NDArray[np.uint32],
        length: npt.NDArray[np.int32],
    ) -> npt.NDArray[np.bool_]:
        """Per segment, in stream order: whether it repeats the one before it in its stream
        (`same_stream`: whether each is of the stream of the one before it).

        Same sequence number, same bytes (a few, of the few candidates, compared), neither a
        SYN; and no more bytes than the exact path keeps to compare a retransmission with.
        """
        s, order = self.segments, self.order
        same = same_stream & (seq[1:] == seq[:-1]) & (length[1:] == length[:-1])
        same &= (length[1:] > 0) & (length[1:] <= TCP_WINDOW)
        at = np.flatnonzero(same) + 1
        at = at[((s.flags[order[at]] | s.flags[order[at - 1]]) & SYN) == 0]
        repeated = np.zeros(len(order), dtype=bool)
        if at.size:
            sizes = length[at].astype(np.int64)
            mine, placed = _gather_ranges(buffer, s.start[order[at]], sizes)
            theirs, _ = _gather_ranges(buffer, s.start[order[at - 1]], sizes)
            repeated[at] = ~np.logical_or.reduceat(mine != theirs, placed)
        return repeated

    def _continuations(
        self,
        buffer: npt.NDArray[np.uint8],
        after: npt.NDArray[np.bool_],
        eligible: npt.NDArray[np.bool_],
        ending: npt.NDArray[np.bool_],
    ) -> _Apart | None:
        """Frame the second halves of split ADUs behind their first; mark the sound ones.

        Arguments are in stream order. A continuation follows an eligible segment that ended
        inside an ADU, and is itself data, no SYN, and no continuation's continuation (which
        the exact path takes); nor does it follow a repeat (whose segment might be such a
        continuation: framed alone, its ending means nothing).
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
        joined = walk(Windows(data), placed[0::2], lengths.sum(axis=1).astype(np.int32))
        sound = ~_unsound(joined) & (joined.leftover == 0)
        self.continued[second[sound]] = True
        self.leftover[second[sound]] = 0
        self.eligible[second[sound]] = False  # never the first of a run: pending bytes come before it
        return _Apart(joined, second, sound, data)

    def taken(self, fast: npt.NDArray[np.bool_]) -> _Apart | None:
        """The continuations' ADUs, to keep those the walk took fast."""
        if self.joined is None:
            return None
        return replace(self.joined, keep=fast[self.joined.segments] & self.joined.keep)


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
        self.fast = np.ones(len(segments.packet), dtype=bool)
        """Per segment (capture order): whether the fast path took it."""
        self.exact = 0
        self._exact_positions: list[int] = []
        """Where (in stream order) the segments the exact path took are."""
        self._buffers: list[bytes] = []
        self._delivered: list[int] = []
        """The segments whose bytes are in `_buffers`, one each."""

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
            heads.tolist(),
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
                self._take(state, last)
                continue
            self._decode(state, *head)
            exact_end = end
            for at in range(first + 1, end):  # the rest of the run, now without its first segment
                index = int(order[at])
                if plan.eligible[index] and _continues(state, int(s.seq[index])):
                    self._take(state, last)
                    exact_end = at
                    break
                self._decode(state, *self._segment(index))
            self._exact_positions.extend(range(first, exact_end))
        self.fast[order[np.array(self._exact_positions, dtype=np.int64)]] = False
        self.findings[StreamFinding.RETRANSMISSION] += int(np.count_nonzero(self.fast & plan.repeated))

    def decoded(self) -> _Apart | None:
        """The ADUs of the bytes the exact path delivered (each to the segment that delivered it)."""
        if not self._buffers:
            return None
        lengths = np.fromiter(map(len, self._buffers), dtype=np.int32, count=len(self._buffers))
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        data = np.frombuffer(b"".join(self._buffers), dtype=np.uint8)
        found = walk(Windows(data), starts, lengths)
        return _Apart(
            found, np.array(self._delivered, dtype=np.int64), np.ones(len(lengths), dtype=bool), data
        )

    def _segment(self, index: int) -> tuple[int, int, int, int, int]:
        s = self.segments
        return (int(s.seq[index]), int(s.flags[index]), int(s.start[index]), int(s.length[index]), index)

    def _take(self, state: StreamState, last: tuple[int, int, int, int]) -> None:
        """The fast path takes the rest of a run: the stream moves to its end (`last`: seq,
        start, length and leftover bytes of the run's last segment)."""
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
        segment: int,
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
        self._delivered.append(segment)


def _unsound(found: Walk) -> npt.NDArray[np.bool_]:
    """Per framed segment: whether a header that cannot be Modbus ended it (kept off the fast
    path: the stream may not be at an ADU boundary any more)."""
    return found.unsound


def _gather_ranges(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The byte ranges `buffer[start:start + length]` one after the other, and where each begins."""
    placed = np.cumsum(lengths) - lengths
    index = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(placed - starts, lengths)
    return buffer[index], placed


def _originals(repeated: npt.NDArray[np.bool_], repeats: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Per repeat (at `repeats`): the last position before it that is no repeat (what it repeats)."""
    originals = repeats - 1
    while (again := np.flatnonzero(repeated[originals])).size:  # a repeat of a repeat: rare
        originals[again] -= 1
    return originals


def _continues(state: StreamState, seq: int) -> bool:
    """Whether the stream stands at an ADU boundary and expects `seq` (or any number, if unknown)."""
    next_seq = state.tcp.next_seq
    return not state.pending and (next_seq is None or next_seq == seq)


def _in_order(probe: Walk, keep: npt.NDArray[np.bool_], parts: list[_Apart], base: int) -> Adus:
    """The probe's ADUs of the segments to `keep` and those framed apart, in (segment, pdu_index)
    order, that is (packet, pdu_index) order: one scatter per column.

    The bytes framed apart are read behind the buffer's (`base` bytes), one part after the
    other: the origins of their segments move there. No segment keeps ADUs of two kinds: the probe's
    rows of the segments not kept go nowhere, counted 0 (`in_order`), but for the few whose
    ADUs come apart, left out of the probe's levels.
    """
    counts = probe.counts() * keep
    origin = probe.origin.copy()
    levels: list[Level] = []
    for part in parts:
        counts[part.segments] += part.found.counts() * part.keep
        origin[part.segments[part.keep]] = part.found.origin[part.keep] + base
        levels += [level.only(part.keep).moved(part.segments) for level in part.found.levels]
        base += len(part.data)
    apart = np.sort(np.concatenate([part.segments[part.keep] for part in parts])) if parts else None
    if apart is not None and apart.size:
        return in_order([level.without(apart) for level in probe.levels] + levels, counts, origin)
    return in_order([*probe.levels, *levels], counts, origin)
