"""The sensor: batches of packets in, flows and protocol records out.

Per batch: the layers below the industrial protocols (`capture.layers`), the flow table, the
Modbus streams (fast path and exact path), the other protocols' streams and datagrams
(`protocol_streams`), request/response pairing per protocol (`requests`); then the records plane gets
one protocol record per request (with its answer's status: 0, the exception code, -1 when
none came, or -2 when none was expected) and one flow record per ended conversation. Nothing
here knows where the packets came from: a file, a stream, a live interface or the simulated
plant's tap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.flows import Flow, FlowTable
from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP, Layers, LayerStatus
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.core.clock import SECOND_NS
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import FLOWS, Operation, Protocol
from plantwarden.monitoring.dcp_records import DcpRecords
from plantwarden.monitoring.identity_frames import NAMES as IDENTITY_NAMES
from plantwarden.monitoring.identity_frames import IdentityBatch, identity_frames
from plantwarden.monitoring.modbus_streams import ModbusBatch, ModbusStreams
from plantwarden.monitoring.protocol_streams import ProtocolBatch, ProtocolSet, StreamProtocol
from plantwarden.monitoring.protocol_table import service_ports, tcp_protocol_ports
from plantwarden.monitoring.register_values import RegisterValues
from plantwarden.monitoring.requests import RecordSink, RequestRecords
from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.modbus import ModbusFinding
from plantwarden.protocols.modbus import Operation as ModbusOperation

NO_TRANSACTION = 0x10000
"""The pairing key of a Modbus PDU whose transaction id could not be read (above every id)."""
OPERATIONS = {
    ModbusOperation.NONE: Operation.MALFORMED,
    ModbusOperation.READ: Operation.READ,
    ModbusOperation.WRITE: Operation.WRITE,
    ModbusOperation.PROGRAM: Operation.PROGRAM,
    ModbusOperation.CONTROL: Operation.CONTROL,
    ModbusOperation.DIAGNOSTIC: Operation.DIAGNOSTIC,
    ModbusOperation.IDENTIFY: Operation.IDENTIFY,
    ModbusOperation.OTHER: Operation.OTHER,
}
OPERATION_TABLE = np.zeros(max(OPERATIONS) + 1, dtype=np.uint8)
for _modbus, _records in OPERATIONS.items():
    OPERATION_TABLE[_modbus] = _records


@dataclass(frozen=True, slots=True)
class SensorOptions:
    """Where the sensor sits and what it listens for."""

    site: str = "default"
    segment: str = "default"
    modbus_ports: tuple[int, ...] = (502,)
    answer_timeout_s: float = 10.0
    flow_idle_timeout_s: float = 600.0
    max_flows: int = 200_000


@dataclass(slots=True)
class ProtocolCounters:
    """What the sensor has seen of one protocol beside Modbus."""

    segments: int = 0
    """TCP segments with data and UDP datagrams of the protocol's ports."""
    exact_segments: int = 0
    pdus: int = 0
    partial: int = 0
    malformed: int = 0
    requests: int = 0
    answered: int = 0
    exceptions: int = 0
    """Answered with an error or exception code."""
    unanswered: int = 0
    unsolicited: int = 0
    """Answers that found no request (it came before the capture, or was evicted)."""
    checks: Counter[str] = field(default_factory=Counter)
    """What the protocol's check across each connection said, and how often (at the end)."""


@dataclass(slots=True)
class SensorCounters:
    """What the sensor has seen so far (the progress line and the closing summary)."""

    packets: int = 0
    bytes: int = 0
    modbus_segments: int = 0
    exact_segments: int = 0
    modbus_pdus: int = 0
    requests: int = 0
    answered: int = 0
    exceptions: int = 0
    unanswered: int = 0
    unsolicited: int = 0
    protocol_records: int = 0
    flow_records: int = 0
    flows_evicted: int = 0
    stored_rows: int = 0
    layer_status: Counter[str] = field(default_factory=Counter)
    modbus_findings: Counter[str] = field(default_factory=Counter)
    stream_findings: Counter[str] = field(default_factory=Counter)
    protocols: dict[str, ProtocolCounters] = field(default_factory=dict)
    """By protocol name, the protocols beside Modbus."""
    last_ns: int = 0


class Sensor:
    """One sensor's state: flows, streams, pairing, and the record writer (if any)."""

    def __init__(
        self,
        options: SensorOptions | None = None,
        writer: RecordSink | None = None,
        protocols: tuple[StreamProtocol, ...] = (),
        identity: bool = False,
        values: RegisterValues | None = None,
    ) -> None:
        self.options = options or SensorOptions()
        self.writer = writer
        self.values = values
        """The register values read and written, turned into telemetry samples (None: not)."""
        self.flows = FlowTable(
            idle_timeout_s=self.options.flow_idle_timeout_s,
            max_flows=self.options.max_flows,
            service_ports=service_ports(self.options.modbus_ports, protocols),
        )
        self._tcp_protocol_ports = np.zeros(1 << 16, dtype=bool)
        """Per port: whether a protocol the sensor knows runs over TCP there (Modbus's and the
        modules' ports, decoded or not): the ports that assign a connection to a protocol."""
        self._tcp_protocol_ports[list(tcp_protocol_ports(self.options.modbus_ports, protocols))] = True
        self.modbus = ModbusStreams(self.options.modbus_ports)
        self.protocols = ProtocolSet(protocols)
        """The protocols beside Modbus: decoded and counted (their records come with their pairing)."""
        self.counters = SensorCounters()
        for protocol in protocols:
            self.counters.protocols[protocol.module.name] = ProtocolCounters()
        self.last_protocols: dict[str, ProtocolBatch] = {}
        """The last batch's PDUs of each protocol beside Modbus."""
        self.identity = identity
        """Whether to decode the frames devices say who they are in (ARP, LLDP, DCP, DHCP)."""
        if identity:
            for name in IDENTITY_NAMES.values():
                self.counters.protocols[name] = ProtocolCounters()
        self.last_identity: IdentityBatch | None = None
        self.last_layers: Layers | None = None
        """The last batch's layers (for what reads the batch after the sensor: `sightings`)."""
        timeout_ns = int(self.options.answer_timeout_s * SECOND_NS)
        site, segment = self.options.site, self.options.segment
        self.requests = RequestRecords(
            Protocol.MODBUS, timeout_ns, self.counters, self.counters, writer, site, segment
        )
        """Modbus's requests, on their way to records."""
        self.protocol_requests = {
            name: RequestRecords(
                Protocol[name.upper()], timeout_ns, counts, self.counters, writer, site, segment
            )
            for name, counts in self.counters.protocols.items()
            if name in {protocol.module.name for protocol in protocols}
        }
        """The requests of each protocol beside Modbus, on their way to records."""
        self.dcp_requests = (
            DcpRecords(timeout_ns, self.counters.protocols["pn_dcp"], self.counters, writer, site, segment)
            if identity
            else None
        )
        """PROFINET DCP's requests (Set IP, name, factory reset ...), on their way to records."""
        self._flow_protocols = _flow_protocols(self.options.modbus_ports, protocols)

    def process(self, batch: PacketBatch) -> ModbusBatch:
        """Take one batch: count it, update flows and streams, pair and record; its Modbus PDUs."""
        layers = decode_layers(batch)
        self.last_layers = layers
        self._count(batch, layers)
        update = self.flows.update(
            batch.ts_ns,
            layers.src_addr,
            layers.dst_addr,
            layers.src_port,
            layers.dst_port,
            layers.ip_proto,
            layers.ip_total_length.astype(np.int32),
            layers.tcp_flags,
            layers.ip_version > 0,
        )
        ports = update.protocol_ports(layers.src_port, layers.dst_port, self._tcp_protocol_ports)
        modbus = self.modbus.process(batch, layers, update.flow_ids, ports)
        self._modbus(batch, layers, update.flow_ids, modbus)
        if self.values is not None:
            self._telemetry(self.values.feed(batch, layers, update.flow_ids, modbus))
        self.last_protocols = self.protocols.process(batch, layers, update, ports)
        for name, found in self.last_protocols.items():
            _count_protocol(self.counters.protocols[name], found)
            self._protocol_requests(name, batch, layers, update.flow_ids, found)
        if self.identity:
            self.last_identity = identity_frames(batch, layers)
            if self.last_identity is not None:
                self._count_identity(self.last_identity)
        if self.dcp_requests is not None:
            self.dcp_requests.feed(self.counters.last_ns, batch, layers, self.last_identity)
        if len(batch):
            self.counters.last_ns = max(self.counters.last_ns, int(batch.ts_ns.max()))
            self._ended(self.flows.expire(self.counters.last_ns))
        return modbus

    def finish(self) -> SensorCounters:
        """The end of the input: close every waiting request and flow, record them, flush."""
        for requests in (self.requests, *self.protocol_requests.values()):
            requests.finish(self.counters.last_ns)
        if self.dcp_requests is not None:
            self.dcp_requests.finish(self.counters.last_ns)
        self._ended(self.flows.drain())
        if self.values is not None:
            self._telemetry(self.values.finish())
        for name, count in self.modbus.findings.items():
            self.counters.stream_findings[name.name.lower()] += count
        for streams in self.protocols.streams:
            for finding, count in streams.findings.items():
                self.counters.stream_findings[finding.name.lower()] += count
            self.counters.protocols[streams.module.name].checks.update(streams.checks)
        self.counters.flows_evicted = self.flows.stats.evicted
        return self.counters

    def _telemetry(self, samples: RecordBatch) -> None:
        if len(samples) and self.writer is not None:
            self.counters.stored_rows += self.writer.write(samples).stored

    def _count_identity(self, found: IdentityBatch) -> None:
        status = found.columns.summary.status
        for kind, name in IDENTITY_NAMES.items():
            rows = found.kind == kind
            counters = self.counters.protocols[name]
            counters.segments += int(np.count_nonzero(rows))
            counters.pdus += int(np.count_nonzero(rows))
            counters.partial += int(np.count_nonzero(rows & (status == ParseStatus.PARTIAL)))
            counters.malformed += int(np.count_nonzero(rows & (status == ParseStatus.MALFORMED)))

    def _count(self, batch: PacketBatch, layers: Layers) -> None:
        counters = self.counters
        counters.packets += len(batch)
        counters.bytes += int(batch.wire_lengths.sum())
        for code, count in _tally(layers.status):
            counters.layer_status[LayerStatus(code).name.lower()] += count

    def _modbus(
        self, batch: PacketBatch, layers: Layers, flow_ids: npt.NDArray[np.int64], modbus: ModbusBatch
    ) -> None:
        columns = modbus.columns
        counters = self.counters
        counters.modbus_segments += modbus.segments
        counters.exact_segments += modbus.exact_segments
        counters.modbus_pdus += len(columns)
        for code, count in _tally(columns.finding):
            counters.modbus_findings[ModbusFinding(code).name.lower()] += count
        if not len(columns):
            return
        packets = modbus.packet

        def fields(rows: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
            found = _endpoint_fields(batch, layers, packets[rows])
            found.update(
                operation=OPERATION_TABLE[columns.operation[rows]],
                function=columns.function_code[rows],
                unit=columns.unit_id[rows],
                address=columns.address[rows],
                quantity=columns.quantity[rows],
                value=columns.value[rows],
            )
            return found

        transaction = columns.transaction_id
        self.requests.feed(
            self.counters.last_ns,
            flow_ids[packets],
            batch.ts_ns[packets],
            np.where(transaction >= 0, transaction, NO_TRANSACTION),
            columns.is_response.astype(bool),
            columns.function_code,
            columns.exception_code,
            fields,
        )

    def _protocol_requests(
        self,
        name: str,
        batch: PacketBatch,
        layers: Layers,
        flow_ids: npt.NDArray[np.int64],
        found: ProtocolBatch,
    ) -> None:
        requests = self.protocol_requests.get(name)
        if requests is None:
            return
        summary, packets = found.summary, found.packet
        if not len(packets):
            requests.expire(self.counters.last_ns)
            return

        def fields(rows: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
            values = _endpoint_fields(batch, layers, packets[rows])
            values.update(
                operation=summary.operation[rows],
                function=summary.function_code[rows],
                unit=summary.unit[rows],
                address=summary.address[rows],
                quantity=summary.quantity[rows],
                value=np.full(len(rows), np.nan),
            )
            return values

        requests.feed(
            self.counters.last_ns,
            flow_ids[packets],
            batch.ts_ns[packets],
            found.key,
            summary.is_response,
            summary.function_code,
            summary.result,
            fields,
        )

    def _ended(self, flows: list[Flow]) -> None:
        if not flows:
            return
        ended = [flow.flow_id for flow in flows]
        self.modbus.forget(ended)
        self.protocols.forget(ended)
        self.counters.flow_records += len(flows)
        if self.writer is None:
            return
        protocols = [int(self._flow_protocol(flow)) for flow in flows]
        batch = RecordBatch.build(
            FLOWS,
            {
                "ts": [flow.first_ns for flow in flows],
                "ts_end": [flow.last_ns for flow in flows],
                "site": self.options.site,
                "segment": self.options.segment,
                "src_addr": np.array([flow.client for flow in flows], dtype="S16"),
                "dst_addr": np.array([flow.server for flow in flows], dtype="S16"),
                "src_port": [flow.client_port for flow in flows],
                "dst_port": [flow.server_port for flow in flows],
                "transport": [flow.transport for flow in flows],
                "protocol": protocols,
                "packets": [sum(flow.packets) for flow in flows],
                "bytes": [sum(flow.bytes) for flow in flows],
            },
            length=len(flows),
        )
        self.counters.stored_rows += self.writer.write(batch).stored

    def _flow_protocol(self, flow: Flow) -> Protocol:
        """The protocol a flow record names: that of its server's port; for TCP, as the streams
        assign a connection, that of its client's port when no protocol is known on its server's
        (a device that opened the connection from its protocol's port)."""
        port = flow.server_port
        if flow.transport == PROTO_TCP and not self._tcp_protocol_ports[port]:
            port = flow.client_port
        return self._flow_protocols.get((flow.transport, port), Protocol.UNKNOWN)


def _count_protocol(counters: ProtocolCounters, found: ProtocolBatch) -> None:
    counters.segments += found.segments
    counters.exact_segments += found.exact_segments
    counters.pdus += len(found.summary)
    counters.partial += int(np.count_nonzero(found.summary.status == ParseStatus.PARTIAL))
    counters.malformed += int(np.count_nonzero(found.summary.status == ParseStatus.MALFORMED))


def _endpoint_fields(
    batch: PacketBatch, layers: Layers, packets: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[Any]]:
    """The time and endpoints of the records of PDUs carried by `packets`."""
    return {
        "ts": batch.ts_ns[packets],
        "src_addr": layers.src_addr[packets],
        "dst_addr": layers.dst_addr[packets],
        "src_port": layers.src_port[packets],
        "dst_port": layers.dst_port[packets],
        "transport": layers.ip_proto[packets],
    }


def _flow_protocols(
    modbus_ports: tuple[int, ...], protocols: tuple[StreamProtocol, ...]
) -> dict[tuple[int, int], Protocol]:
    """(IP protocol, server port) -> the protocol a flow record names."""
    known = {(PROTO_TCP, port): Protocol.MODBUS for port in modbus_ports}
    for protocol in protocols:
        code = Protocol[protocol.module.name.upper()]
        known.update({(PROTO_TCP, port): code for port in protocol.module.tcp_ports})
        known.update({(PROTO_UDP, port): code for port in protocol.module.udp_ports})
    return known


def _tally(codes: npt.NDArray[np.uint8]) -> list[tuple[int, int]]:
    """(code, how many) for each code present among `codes`, small non-negative integers."""
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    return list(zip(present.tolist(), counts[present].tolist(), strict=True))
