"""The industrial protocols beside Modbus over a batch's TCP streams and UDP datagrams.

Each protocol module gives two paths with identical summaries (`protocols.common`): a column
extractor over many payloads at once, and an exact decoder of one payload after the bytes left
over from the one before. Here a protocol's segments are first all put through the extractor
(the probe); then, in capture order, a segment keeps the probe's rows (the fast path) when the
exact path would decode the very same bytes: it is no SYN, and its stream stands at a PDU
boundary (nothing pending) expecting its sequence number, or has seen nothing yet. A partial
last PDU is then kept pending, as the exact path would. Every other segment (the second half of
a split PDU, a retransmission, a gap, overlapping data) goes through `TcpStream`, which delivers
each byte once, and the exact decoder takes what it delivers behind the pending bytes. A PDU is
attributed to the packet whose data completes it, as Wireshark does. Datagrams (UDP) carry whole
PDUs: the extractor takes them all. A stream is one direction of a flow as the flow table sees
it (client to server, or back), so that it stays one even where both ports are the protocol's.

Numpy finds, per stream, the leading run of segments that follow one another at PDU boundaries,
and Python moves each stream past its run in one step (`_runs`); the segments after a break are
walked one by one. The decoding of the fast segments is the extractor's, a batch at once.

A TCP connection belongs to the protocol of its server's port (the flow table's server: the side
that answered the SYN, or its rule for a connection seen from the middle), and only when no
protocol is known on that port to the protocol of its client's port (a device that connects out
from its protocol's port): a Modbus master polling from port 2404 does not hand its connection
to IEC 104 (`FlowUpdate.protocol_ports`). UDP datagrams go to the protocol of either port.
"""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.flows import FlowUpdate
from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP, Layers
from plantwarden.capture.tcp import MODULO, WINDOW, StreamFinding, TcpStream, stream_order
from plantwarden.protocols.common import ProtocolModule, RequestKeys, StreamCheck, SummaryColumns

SYN = 0x02

Ints = npt.NDArray[np.int64]
Own = dict[str, npt.NDArray[Any]]
"""Some of a protocol's own columns, by name (those its `RequestKeys` and `StreamCheck` read)."""
Extract = Callable[
    [npt.NDArray[np.uint8], Ints, Ints, npt.NDArray[np.bool_]],
    tuple[SummaryColumns, Own, Ints, Ints, npt.NDArray[np.bool_] | None],
]
"""(buffer, starts, lengths, from_server) -> (summaries, own columns, each row's segment, each
segment's leftover bytes: those of a partial last PDU, and for a protocol with stream state the
rows that need it, else None)."""
DecodePayload = Callable[[bytes, bool], tuple[list[Any], bytes]]
"""(payload, from_server) -> (the complete PDUs' messages, the bytes of a partial last PDU)."""
ExtractDatagrams = Callable[
    [npt.NDArray[np.uint8], Ints, Ints, npt.NDArray[np.bool_], npt.NDArray[np.uint16]],
    tuple[SummaryColumns, Own, Ints],
]
"""(buffer, starts, lengths, from_server, server ports) -> (summaries, own columns, each row's
datagram): UDP, where no more bytes follow a datagram (a partial last PDU is a row with its
finding)."""
DecodeDatagram = Callable[[bytes, bool, int], list[Any]]
"""(datagram, from_server, server port) -> its PDUs' messages: the exact twin of the above."""


class StreamDecoder(typing.Protocol):
    """An exact decoder with state across a stream's segments."""

    @property
    def idle(self) -> bool:
        """Whether it holds no state (the stream's next PDU needs nothing that came before)."""
        ...

    def decode_payload(self, payload: bytes, from_server: bool) -> tuple[list[Any], bytes]: ...


Summarise = Callable[[list[Any]], tuple[SummaryColumns, Own]]
"""The exact path's messages -> (their summaries, their own columns)."""


@dataclass(frozen=True, slots=True)
class StreamProtocol:
    """What the sensor needs of a protocol module: where it is, and its two paths (for TCP
    streams, and for UDP datagrams where the module has UDP ports)."""

    module: ProtocolModule
    extract: Extract
    decode_payload: DecodePayload
    summarise: Summarise
    keys: RequestKeys
    check: StreamCheck | None = None
    extract_datagrams: ExtractDatagrams | None = None
    decode_datagram: DecodeDatagram | None = None
    stream_decoder: Callable[[], StreamDecoder] | None = None
    """For a protocol whose PDUs may need what came before them on their stream (DNP3's
    transport segments, put together into application fragments): a new stream's exact decoder,
    which keeps that state. A segment holding a row that needs it goes the exact path, through
    its stream's decoder, and so does every segment of the stream after it while the decoder
    holds state (is not `idle`)."""


@dataclass(frozen=True, slots=True)
class ProtocolBatch:
    """One protocol's PDUs completed in a batch: their summaries, request keys (`RequestKeys`),
    the codes of the protocol's `StreamCheck` (zeros without one) and, per row, the packet that
    completed them and its side; how many segments (datagrams) carried it, how many went exact."""

    summary: SummaryColumns
    key: npt.NDArray[np.int64]
    check: npt.NDArray[np.uint8]
    packet: npt.NDArray[np.int64]
    from_server: npt.NDArray[np.bool_]
    segments: int
    exact_segments: int


@dataclass(frozen=True, slots=True)
class _Rows:
    """A batch's PDUs of one transport, before their keys and checks."""

    summary: SummaryColumns
    own: Own
    packet: npt.NDArray[np.int64]
    from_server: npt.NDArray[np.bool_]
    segments: int
    exact_segments: int


@dataclass(slots=True)
class _Stream:
    tcp: TcpStream = field(default_factory=TcpStream)
    pending: bytes = b""
    decode: StreamDecoder | None = None
    """The stream's own exact decoder, once it needed one (`StreamProtocol.stream_decoder`)."""


class ProtocolSet:
    """The protocols a sensor decodes beside Modbus: finds their packets in a batch once (a port
    lookup for all of them together), and hands each protocol its own."""

    def __init__(self, protocols: tuple[StreamProtocol, ...]) -> None:
        self.streams = [ProtocolStreams(protocol) for protocol in protocols]
        self._any_port = np.zeros(1 << 16, dtype=bool)
        owners: dict[tuple[str, int], str] = {}
        for streams in self.streams:
            module = streams.module
            for transport, ports in (("tcp", module.tcp_ports), ("udp", module.udp_ports)):
                for port in ports:
                    other = owners.setdefault((transport, port), module.name)
                    if other != module.name:
                        raise ValueError(f"{transport} port {port} is both {other}'s and {module.name}'s")
                    self._any_port[port] = True

    def process(
        self, batch: PacketBatch, layers: Layers, flows: FlowUpdate, protocol_ports: npt.NDArray[np.uint16]
    ) -> dict[str, ProtocolBatch]:
        """Each protocol's PDUs completed by the batch's packets (given their flows, and the
        ports that say what their conversations speak: `FlowUpdate.protocol_ports`)."""
        if not self.streams:
            return {}
        rows = np.flatnonzero(self._any_port[layers.src_port] | self._any_port[layers.dst_port])
        return {
            streams.module.name: streams.process(batch, layers, flows, protocol_ports, rows)
            for streams in self.streams
        }

    def forget(self, flow_ids: list[int]) -> None:
        """Drop the streams of flows that ended."""
        for streams in self.streams:
            streams.forget(flow_ids)


class ProtocolStreams:
    """One protocol's streams in a sensor, fed a batch at a time."""

    def __init__(self, protocol: StreamProtocol) -> None:
        self.protocol = protocol
        self.module = protocol.module
        self._tcp_ports = np.zeros(1 << 16, dtype=bool)
        self._tcp_ports[list(self.module.tcp_ports)] = True
        self._udp_ports = np.zeros(1 << 16, dtype=bool)
        self._udp_ports[list(self.module.udp_ports)] = True
        self.streams: dict[int, _Stream] = {}
        self.findings: Counter[StreamFinding] = Counter()
        self.state: dict[int, Any] = {}
        """The protocol's `StreamCheck` state, by flow id."""
        self.checks: Counter[str] = Counter()
        """How often each code of the protocol's `StreamCheck` came up."""

    def process(
        self,
        batch: PacketBatch,
        layers: Layers,
        flows: FlowUpdate,
        protocol_ports: npt.NDArray[np.uint16],
        rows: npt.NDArray[np.int64] | None = None,
    ) -> ProtocolBatch:
        """The protocol's PDUs completed by the batch's packets (among `rows`, if given: the
        packets that may be the protocol's), in packet order; a TCP connection is the
        protocol's when its `protocol_ports` (per packet) is."""
        if rows is None:
            rows = np.arange(len(batch), dtype=np.int64)
        tcp = self._tcp(batch, layers, flows, protocol_ports[rows], rows)
        udp = self._udp(batch, layers, rows)
        if tcp is None or udp is None:
            found = tcp or udp
            if found is None:
                return _empty()
        else:
            packet = np.concatenate([tcp.packet, udp.packet])
            order = np.argsort(packet, kind="stable")
            found = _Rows(
                _take(_concat(tcp.summary, udp.summary), order),
                {name: np.concatenate([tcp.own[name], udp.own[name]])[order] for name in tcp.own},
                packet[order],
                np.concatenate([tcp.from_server, udp.from_server])[order],
                tcp.segments + udp.segments,
                tcp.exact_segments,
            )
        key = self.protocol.keys.keys(found.own, found.summary) if len(found.packet) else _NO_KEYS
        check = np.zeros(len(found.packet), dtype=np.uint8)
        if self.protocol.check is not None and len(found.packet):
            connection = flows.flow_ids[found.packet].astype(np.int64)
            check = self.protocol.check.check(
                self.state, connection, found.from_server, found.own, found.summary
            )
            for code, count in zip(*np.unique(check[check > 0], return_counts=True), strict=True):
                self.checks[self.protocol.check.codes(int(code)).name.lower()] += int(count)
        return ProtocolBatch(
            found.summary, key, check, found.packet, found.from_server, found.segments, found.exact_segments
        )

    def forget(self, flow_ids: list[int]) -> None:
        """Drop the streams of flows that ended."""
        for flow_id in flow_ids:
            self.streams.pop(flow_id * 2, None)
            self.streams.pop(flow_id * 2 + 1, None)
            self.state.pop(flow_id, None)

    def _udp(self, batch: PacketBatch, layers: Layers, rows: npt.NDArray[np.int64]) -> _Rows | None:
        extract = self.protocol.extract_datagrams
        if extract is None or not len(rows):
            return None
        source, destination = layers.src_port[rows], layers.dst_port[rows]
        from_server = self._udp_ports[source]
        wanted = (from_server | self._udp_ports[destination]) & (layers.ip_proto[rows] == PROTO_UDP)
        wanted &= (layers.payload_offset[rows] >= 0) & (layers.payload_length[rows] > 0)
        packet = rows[wanted]
        if not len(packet):
            return None
        side = from_server[wanted]
        summary, own, segment = extract(
            batch.buffer,
            layers.payload_offset[packet].astype(np.int64),
            layers.payload_length[packet].astype(np.int64),
            side,
            np.where(side, source[wanted], destination[wanted]).astype(np.uint16),
        )
        return _Rows(summary, own, packet[segment], side[segment], len(packet), 0)

    def _tcp(
        self,
        batch: PacketBatch,
        layers: Layers,
        flows: FlowUpdate,
        protocol_ports: npt.NDArray[np.uint16],
        rows: npt.NDArray[np.int64],
    ) -> _Rows | None:
        if not self.module.tcp_ports or not len(rows):
            return None
        from_server = self._tcp_ports[layers.src_port[rows]]
        wanted = self._tcp_ports[protocol_ports] & (layers.ip_proto[rows] == PROTO_TCP)
        wanted &= (flows.flow_ids[rows] >= 0) & (layers.payload_offset[rows] >= 0)
        wanted &= (layers.payload_length[rows] > 0) | (layers.tcp_flags[rows] & SYN != 0)
        packet = rows[wanted]
        if not len(packet):
            return None
        side = from_server[wanted]
        starts = layers.payload_offset[packet].astype(np.int64)
        lengths = layers.payload_length[packet].astype(np.int64)
        data = np.flatnonzero(lengths > 0)
        probe, probe_own, probe_segment, leftover, stateful = self.protocol.extract(
            batch.buffer, starts[data], lengths[data], side[data]
        )
        segment_of_row = data[probe_segment]
        leftovers = np.zeros(len(packet), dtype=np.int64)
        leftovers[data] = leftover
        needs_state = np.zeros(len(packet), dtype=bool)
        if stateful is not None:
            needs_state[segment_of_row[stateful]] = True
        stream_ids = flows.flow_ids[packet] * 2 + ~flows.from_client[packet]  # a stream per direction
        fast, slow = self._runs(
            batch.buffer,
            stream_ids,
            layers.tcp_seq[packet].astype(np.int64),
            layers.tcp_flags[packet] & SYN != 0,
            starts,
            lengths,
            leftovers,
            needs_state,
        )
        exact: list[Any] = []
        exact_packet: list[int] = []
        buffer = batch.buffer
        segments = zip(
            slow.tolist(),
            stream_ids[slow].tolist(),
            side[slow].tolist(),
            layers.tcp_seq[packet[slow]].tolist(),
            (layers.tcp_flags[packet[slow]] & SYN).tolist(),
            starts[slow].tolist(),
            lengths[slow].tolist(),
            leftovers[slow].tolist(),
            needs_state[slow].tolist(),
            strict=True,
        )
        for index, stream_id, server, seq, syn, start, length, left, state in segments:
            stream = self.streams.get(stream_id)
            if stream is None:
                stream = self.streams[stream_id] = _Stream()
            payload = buffer[start : start + length].tobytes()
            if state and stream.decode is None and self.protocol.stream_decoder is not None:
                stream.decode = self.protocol.stream_decoder()
            if syn:
                stream.tcp.syn(seq)
                stream.pending = b""
                if not length:
                    continue
            elif (
                not stream.pending
                and not state
                and (stream.decode is None or stream.decode.idle)
                and stream.tcp.next_seq in (None, seq)
            ):
                fast[index] = True
                stream.tcp.seen(seq, payload)
                stream.pending = payload[length - left :] if left else b""
                continue
            if stream.decode is None and self.protocol.stream_decoder is not None:
                # What the exact path decodes may start a fragment (a first frame split across
                # segments, one after a gap): the stream's decoder must see it.
                stream.decode = self.protocol.stream_decoder()
            fresh = stream.tcp.accept(seq, payload)
            if stream.tcp.findings:
                self.findings.update(finding for finding, _ in stream.tcp.findings)
                stream.tcp.findings.clear()
            if not fresh:
                continue
            decode = stream.decode.decode_payload if stream.decode else self.protocol.decode_payload
            found, stream.pending = decode(stream.pending + fresh, server)
            exact += found
            exact_packet += [index] * len(found)
        kept = np.flatnonzero(fast[segment_of_row])
        summary = _take(probe, kept)
        own = {name: values[kept] for name, values in probe_own.items()}
        segment = segment_of_row[kept]
        if exact:
            segment = np.concatenate([segment, np.array(exact_packet, dtype=np.int64)])
            exact_summary, exact_own = self.protocol.summarise(exact)
            summary = _concat(summary, exact_summary)
            own = {name: np.concatenate([values, exact_own[name]]) for name, values in own.items()}
            order = np.argsort(segment, kind="stable")
            summary, segment = _take(summary, order), segment[order]
            own = {name: values[order] for name, values in own.items()}
        return _Rows(
            summary,
            own,
            packet[segment],
            side[segment],
            int(np.count_nonzero(lengths)),
            int(np.count_nonzero(~fast & (lengths > 0))),
        )

    def _runs(
        self,
        buffer: npt.NDArray[np.uint8],
        stream_ids: Ints,
        seq: Ints,
        syn: npt.NDArray[np.bool_],
        starts: Ints,
        lengths: Ints,
        leftovers: Ints,
        needs_state: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.bool_], Ints]:
        """Which segments take the fast path, and the others (grouped by stream, in capture
        order within each), after moving each stream past its fast ones.

        Per stream, the batch's segments in capture order: the fast path takes a leading run,
        the segments the per-segment walk would take (see the module). The run starts at the
        stream's first segment when the stream stands at a PDU boundary expecting it (or is new),
        or after a SYN without data; it goes on while each segment starts where the one before
        ended (a SYN counting one), the one before left no partial PDU, and no segment needs the
        stream's decoder. Its data is remembered (the last `WINDOW` bytes, for retransmissions)
        and its last partial PDU kept pending in one step per stream; the rest of the stream's
        segments are for the per-segment walk (which takes the fast path again where it can).
        Numpy finds the runs, Python visits each stream once.
        """
        count = len(stream_ids)
        fast = np.zeros(count, dtype=bool)
        order = stream_order(stream_ids)
        grouped = stream_ids[order]
        first = np.ones(count, dtype=bool)
        first[1:] = grouped[1:] != grouped[:-1]
        g_seq, g_length, g_syn = seq[order], lengths[order], syn[order]
        ends = (g_seq + g_length + g_syn) % MODULO
        follows = np.zeros(count, dtype=bool)
        follows[1:] = (g_seq[1:] == ends[:-1]) & (leftovers[order][:-1] == 0)
        joins = follows & ~g_syn & ~needs_state[order] & (g_length > 0)
        position = np.arange(count, dtype=np.int64)
        heads = np.flatnonzero(first)
        breaks = np.where(~first & ~joins, position, count)
        group_end = np.append(heads[1:], count)
        run_end = np.minimum(np.minimum.reduceat(breaks, heads), group_end) if count else heads
        slow_parts: list[Ints] = []
        rows = zip(
            heads.tolist(),
            run_end.tolist(),
            group_end.tolist(),
            grouped[heads].tolist(),
            g_seq[heads].tolist(),
            g_syn[heads].tolist(),
            g_length[heads].tolist(),
            needs_state[order][heads].tolist(),
            strict=True,
        )
        for head, end, stop, stream_id, head_seq, head_syn, head_length, head_state in rows:
            stream = self.streams.get(stream_id)
            if stream is None:
                stream = self.streams[stream_id] = _Stream()
            idle = stream.decode is None or stream.decode.idle
            if head_syn and not head_length:
                stream.tcp.syn(head_seq)
                stream.pending = b""
                run = (head + 1, end if idle else head + 1)
            elif (
                not head_syn
                and not stream.pending
                and not head_state
                and idle
                and stream.tcp.next_seq in (None, head_seq)
            ):
                run = (head, end)
            else:
                run = (head, head)
            if run[1] > run[0]:
                taken = order[run[0] : run[1]]
                fast[taken] = True
                self._remember(
                    stream, buffer, seq[taken[0]], starts[taken], lengths[taken], leftovers[taken[-1]]
                )
            if stop > run[1]:
                slow_parts.append(order[run[1] : stop])
        slow = np.concatenate(slow_parts) if slow_parts else np.zeros(0, dtype=np.int64)
        return fast, slow

    @staticmethod
    def _remember(
        stream: _Stream, buffer: npt.NDArray[np.uint8], seq: int, starts: Ints, lengths: Ints, left: int
    ) -> None:
        """Move `stream` past a run of fast segments (one after another from `seq`)."""
        total = int(lengths.sum())
        kept = 0
        pieces: list[bytes] = []
        for start, length in zip(starts[::-1].tolist(), lengths[::-1].tolist(), strict=True):
            pieces.append(buffer[start : start + length].tobytes())
            kept += length
            if kept >= WINDOW:
                break
        data = b"".join(reversed(pieces))
        stream.tcp.seen((int(seq) + total - len(data)) % MODULO, data)
        stream.pending = data[len(data) - int(left) :] if left else b""


_NO_KEYS = np.zeros(0, np.int64)


def _empty() -> ProtocolBatch:
    none = np.zeros(0, np.int64)
    return ProtocolBatch(
        SummaryColumns.from_summaries([]), none, np.zeros(0, np.uint8), none, np.zeros(0, bool), 0, 0
    )


def _take(columns: SummaryColumns, rows: npt.NDArray[np.int64]) -> SummaryColumns:
    return SummaryColumns(**{name: getattr(columns, name)[rows] for name in SummaryColumns.__slots__})


def _concat(first: SummaryColumns, second: SummaryColumns) -> SummaryColumns:
    return SummaryColumns(
        **{
            name: np.concatenate([getattr(first, name), getattr(second, name)])
            for name in SummaryColumns.__slots__
        }
    )
