"""Modbus/TCP over the TCP streams of a batch: the fast path where it may, the exact path elsewhere.

A TCP segment with data to or from a Modbus port goes to the column extractor as it is when it
continues its stream in order, the stream stood at an ADU boundary before it, and it holds only
whole ADUs with sound headers (nearly all of a plant's traffic). The rest (split ADUs, what
follows them, retransmissions, gaps, overlaps) goes through `TcpStream` and the exact decoder,
stream by stream, and only those segments are touched in Python. Each PDU is attributed to the
packet whose data completes it, as Wireshark does, so rows can be matched to tshark's frame by
frame.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.capture.tcp import StreamFinding, TcpStream, in_order
from plantwarden.protocols.modbus import (
    Extracted,
    ModbusColumns,
    ModbusFinding,
    ModbusMessage,
    decode_payload,
    extract,
)

SYN, FIN = 0x02, 0x01
UNALIGNED = (ModbusFinding.BAD_PROTOCOL_ID, ModbusFinding.BAD_LENGTH)
"""Findings that mean the stream may not be at an ADU boundary any more."""


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
        self.states: dict[int, StreamState] = {}
        self.findings: dict[StreamFinding, int] = dict.fromkeys(StreamFinding, 0)

    def process(self, batch: PacketBatch, layers: Layers, flow_ids: npt.NDArray[np.int64]) -> ModbusBatch:
        """The PDUs completed by the batch's packets."""
        segments = self._segments(layers, flow_ids)
        if len(segments.packet) == 0:
            return ModbusBatch.empty()
        data = segments.length > 0
        fast, probe = self._fast(batch, segments, data)
        exact_rows, exact_count = self._exact(batch, segments, fast)  # may demote fast segments
        fast_rows = _fast_rows(segments, fast, probe.columns)
        columns = _concatenate([fast_rows, exact_rows])
        order = np.lexsort((columns.pdu_index, columns.segment))
        columns = columns.take(order)
        packet = columns.segment.astype(np.int64)
        from_server = np.isin(layers.src_port[packet], self.ports)
        return ModbusBatch(columns, packet, from_server, int(data.sum()), exact_count)

    def forget(self, flow_ids: list[int]) -> None:
        """Drop the streams of flows that ended."""
        for flow_id in flow_ids:
            self.states.pop(flow_id * 2, None)
            self.states.pop(flow_id * 2 + 1, None)

    def _segments(self, layers: Layers, flow_ids: npt.NDArray[np.int64]) -> _Segments:
        from_server = np.isin(layers.src_port, self.ports)
        to_server = np.isin(layers.dst_port, self.ports)
        tcp = (layers.ip_proto == 6) & (flow_ids >= 0) & (layers.payload_offset >= 0)
        wanted = (
            tcp & (from_server | to_server) & ((layers.payload_length > 0) | (layers.tcp_flags & SYN != 0))
        )
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

    def _fast(
        self, batch: PacketBatch, segments: _Segments, data: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.bool_], Extracted]:
        """Which segments the column extractor may take as they are, and what it made of them."""
        advance = (
            segments.length.astype(np.int64) + ((segments.flags & SYN) != 0) + ((segments.flags & FIN) != 0)
        )
        expected = {
            stream: state.tcp.next_seq
            for stream in np.unique(segments.stream).tolist()
            if (state := self.states.get(stream)) is not None and state.tcp.next_seq is not None
        }
        ordered = in_order(segments.stream, segments.seq, advance, expected)
        probe = extract(batch.buffer, segments.start[data], segments.length[data], segments.from_server[data])
        data_index = np.flatnonzero(data)
        probe.columns.segment = data_index[probe.columns.segment].astype(probe.columns.segment.dtype)
        clean = np.zeros(len(segments.packet), dtype=bool)
        clean[data_index] = _clean(probe.columns, probe.leftover, data_index, len(segments.packet))[
            data_index
        ]
        good = ordered & clean & data
        return good & self._boundary_before(segments, good), probe

    def _boundary_before(self, segments: _Segments, good: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Whether the stream stood at an ADU boundary before each segment (as far as columns tell)."""
        order = np.argsort(segments.stream, kind="stable")
        streams = segments.stream[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = streams[1:] != streams[:-1]
        before = np.empty(len(order), dtype=bool)
        before[1:] = good[order][:-1]
        at_start = [self._at_boundary(int(stream)) for stream in streams[first]]
        before[first] = np.array(at_start, dtype=bool)
        result = np.empty(len(order), dtype=bool)
        result[order] = before
        return result

    def _at_boundary(self, stream: int) -> bool:
        state = self.states.get(stream)
        return state is None or not state.pending

    def _exact(
        self, batch: PacketBatch, segments: _Segments, fast: npt.NDArray[np.bool_]
    ) -> tuple[ModbusColumns, int]:
        messages: list[ModbusMessage] = []
        exact_count = 0
        order = np.argsort(segments.stream, kind="stable")
        streams = segments.stream[order]
        bounds = np.flatnonzero(np.r_[True, streams[1:] != streams[:-1], True])
        for low, high in itertools.pairwise(bounds):
            positions = order[low:high]
            state = self.states.setdefault(int(streams[low]), StreamState())
            walker = _StreamWalk(batch, segments, fast, positions, state, self.findings)
            messages += walker.run()
            exact_count += walker.exact
        return ModbusColumns.from_messages(messages), exact_count


class _StreamWalk:
    """One stream's segments of a batch: exact where needed, skipping over runs of fast ones."""

    def __init__(
        self,
        batch: PacketBatch,
        segments: _Segments,
        fast: npt.NDArray[np.bool_],
        positions: npt.NDArray[np.int64],
        state: StreamState,
        findings: dict[StreamFinding, int],
    ) -> None:
        self.batch, self.segments, self.fast = batch, segments, fast
        self.positions, self.state, self.findings = positions, state, findings
        self.exact = 0
        self.slow = np.flatnonzero(~fast[positions])

    def run(self) -> list[ModbusMessage]:
        """The messages the exact path decoded; the stream's state brought to the batch's end."""
        rows: list[ModbusMessage] = []
        count, k = len(self.positions), 0
        if len(self.slow) == 0:
            self._seen(count - 1)
            return rows
        k = int(self.slow[0])
        if k > 0:
            self._seen(k - 1)
        while k < count:
            position = int(self.positions[k])
            if self.fast[position] and self._continues(position):
                following = self.slow[self.slow > k]
                if len(following) == 0:
                    self._seen(count - 1)
                    return rows
                k = int(following[0])
                self._seen(k - 1)
                continue
            self.fast[position] = False
            rows += self._decode(position)
            k += 1
        return rows

    def _continues(self, position: int) -> bool:
        tcp = self.state.tcp
        return not self.state.pending and (
            tcp.next_seq is None or tcp.next_seq == int(self.segments.seq[position])
        )

    def _payload(self, position: int) -> bytes:
        start = int(self.segments.start[position])
        return self.batch.buffer[start : start + int(self.segments.length[position])].tobytes()

    def _seen(self, k: int) -> None:
        """The fast path took the stream up to and including its k-th segment."""
        position = int(self.positions[k])
        seq = int(self.segments.seq[position])
        if self.segments.flags[position] & SYN:
            self.state.tcp.syn(seq)
        else:
            self.state.tcp.seen(seq, self._payload(position))
        self.state.pending = b""

    def _decode(self, position: int) -> list[ModbusMessage]:
        self.exact += 1
        seq = int(self.segments.seq[position])
        if self.segments.flags[position] & SYN:
            self.state.tcp.syn(seq)
            self.state.pending = b""
            return []
        tcp = self.state.tcp
        before = len(tcp.findings)
        fresh = tcp.accept(seq, self._payload(position))
        for finding, _ in tcp.findings[before:]:
            self.findings[finding] += 1
            if finding == StreamFinding.GAP:
                self.state.pending = b""
        del tcp.findings[:]
        buffer = self.state.pending + fresh
        packet = int(self.segments.packet[position])
        messages, leftover = decode_payload(buffer, bool(self.segments.from_server[position]), packet)
        self.state.pending = buffer[len(buffer) - leftover :] if leftover else b""
        return messages


def _clean(
    columns: ModbusColumns, leftover: npt.NDArray[np.int32], data_index: npt.NDArray[np.int64], count: int
) -> npt.NDArray[np.bool_]:
    """Per segment (of `count`): whole ADUs only, every header sound (rows name segments)."""
    unaligned = np.isin(columns.finding, np.array(UNALIGNED, dtype=columns.finding.dtype))
    clean = np.zeros(count, dtype=bool)
    clean[data_index] = leftover == 0
    clean[columns.segment[unaligned]] = False
    return clean


def _fast_rows(segments: _Segments, fast: npt.NDArray[np.bool_], columns: ModbusColumns) -> ModbusColumns:
    """The extractor's rows of the segments that stayed on the fast path, named by their packet."""
    rows = columns.take(fast[columns.segment])
    rows.segment = segments.packet[rows.segment].astype(rows.segment.dtype)
    return rows


def _concatenate(parts: list[ModbusColumns]) -> ModbusColumns:
    parts = [part for part in parts if len(part)]
    if not parts:
        return ModbusColumns.empty(0)
    if len(parts) == 1:
        return parts[0]
    arrays = [part.arrays() for part in parts]
    return ModbusColumns(*(np.concatenate([a[name] for a in arrays]) for name in arrays[0]))
