"""The sensor: batches of packets in, flows and Modbus records out.

Per batch: the layers below the industrial protocols (`capture.layers`), the flow table, the
Modbus streams (fast path and exact path), request/response pairing; then the records plane gets
one protocol record per request (with its answer's status: 0, the exception code, or -1 when
none came) and one flow record per ended conversation. Nothing here knows where the packets came
from: a file, a stream, a live interface or the simulated plant's tap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.flows import Flow, FlowTable
from plantwarden.capture.layers.columns import Layers, LayerStatus
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.schema import FLOWS, PROTOCOL_RECORDS, Operation, Protocol
from plantwarden.monitoring.identity_frames import NAMES as IDENTITY_NAMES
from plantwarden.monitoring.identity_frames import IdentityBatch, identity_frames
from plantwarden.monitoring.modbus_streams import ModbusBatch, ModbusStreams
from plantwarden.monitoring.protocol_streams import ProtocolBatch, ProtocolSet, StreamProtocol
from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.modbus import ModbusFinding
from plantwarden.protocols.modbus import Operation as ModbusOperation
from plantwarden.protocols.modbus.pairing import Pairing, Pairs, PairStatus

SECOND_NS = 1_000_000_000
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
        writer: RecordWriter | None = None,
        protocols: tuple[StreamProtocol, ...] = (),
        identity: bool = False,
    ) -> None:
        self.options = options or SensorOptions()
        self.writer = writer
        self.flows = FlowTable(
            idle_timeout_s=self.options.flow_idle_timeout_s, max_flows=self.options.max_flows
        )
        self.modbus = ModbusStreams(self.options.modbus_ports)
        self.pairing = Pairing(int(self.options.answer_timeout_s * SECOND_NS))
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
        self._waiting = _WaitingRequests()
        self._next_row = 0

    def process(self, batch: PacketBatch) -> ModbusBatch:
        """Take one batch: count it, update flows and streams, pair and record; its Modbus PDUs."""
        layers = decode_layers(batch)
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
        modbus = self.modbus.process(batch, layers, update.flow_ids)
        self._modbus(batch, layers, update.flow_ids, modbus)
        self.last_protocols = self.protocols.process(batch, layers, update)
        for name, found in self.last_protocols.items():
            _count_protocol(self.counters.protocols[name], found)
        if self.identity:
            self.last_identity = identity_frames(batch, layers)
            if self.last_identity is not None:
                self._count_identity(self.last_identity)
        if len(batch):
            self.counters.last_ns = max(self.counters.last_ns, int(batch.ts_ns.max()))
            self._ended(self.flows.expire(self.counters.last_ns))
        return modbus

    def finish(self) -> SensorCounters:
        """The end of the input: close every waiting request and flow, record them, flush."""
        self._paired(self.pairing.expire(self.counters.last_ns + self.pairing.timeout_ns + 1))
        self._ended(self.flows.drain())
        for name, count in self.modbus.findings.items():
            self.counters.stream_findings[name.name.lower()] += count
        for streams in self.protocols.streams:
            for finding, count in streams.findings.items():
                self.counters.stream_findings[finding.name.lower()] += count
        self.counters.flows_evicted = self.flows.stats.evicted
        return self.counters

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
        requests = _BatchRequests(batch, layers, modbus, self._next_row)
        self._next_row += len(columns)
        counters.requests += len(requests.rows)
        packets = modbus.packet
        pairs = self.pairing.feed(
            flow_ids[packets],
            batch.ts_ns[packets],
            columns.transaction_id,
            columns.is_response,
            columns.function_code,
            columns.exception_code,
            requests.labels(),
        )
        self._paired(pairs, requests)
        self._paired(self.pairing.expire(self.counters.last_ns), requests)
        if self.writer is not None:
            waiting = requests.waiting()
            self._waiting.add(requests.first_label + waiting, requests.fields(waiting))

    def _paired(self, pairs: Pairs, batch: _BatchRequests | None = None) -> None:
        """Count closed exchanges and record their requests (those of `batch` read from it)."""
        if not len(pairs):
            return
        counters = self.counters
        status = pairs.status
        counters.answered += int((status == PairStatus.ANSWERED).sum())
        counters.exceptions += int(((status == PairStatus.ANSWERED) & (pairs.exception_code > 0)).sum())
        counters.unanswered += int(
            np.isin(status, (PairStatus.TIMED_OUT, PairStatus.EVICTED, PairStatus.REPLACED)).sum()
        )
        counters.unsolicited += int((status == PairStatus.UNSOLICITED).sum())
        found = np.flatnonzero(pairs.request_row >= 0)  # every request was kept: all but unsolicited
        if self.writer is None:
            counters.protocol_records += len(found)
        if self.writer is None or not len(found):
            return
        fields = self._request_fields(pairs.request_row[found], batch)
        answered = status[found] == PairStatus.ANSWERED
        exception = pairs.exception_code[found].astype(np.int16)
        fields["status"] = np.where(answered, np.maximum(exception, 0), -1).astype(np.int16)
        fields["response_ns"] = np.where(answered, pairs.response_time[found] - pairs.request_time[found], -1)
        self._record_requests(fields)

    def _request_fields(
        self, labels: npt.NDArray[np.int64], batch: _BatchRequests | None
    ) -> dict[str, npt.NDArray[Any]]:
        """The fields of the requests labelled `labels`, read from `batch` or the waiting ones."""
        if batch is None:
            return self._waiting.take(labels)[1]
        local = labels - batch.first_label
        current = local >= 0
        if not current.any():
            return self._waiting.take(labels)[1]
        fields = batch.fields(local[current])
        batch.closed[local[current]] = True
        if current.all():
            return fields
        older = self._waiting.take(labels[~current])[1]
        merged = {}
        for name, values in fields.items():
            merged[name] = np.empty(len(labels), dtype=values.dtype)
            merged[name][current], merged[name][~current] = values, older[name]
        return merged

    def _record_requests(self, fields: dict[str, npt.NDArray[Any]]) -> None:
        count = len(fields["ts"])
        if not count:
            return
        self.counters.protocol_records += count
        if self.writer is None:
            return
        batch = RecordBatch.build(
            PROTOCOL_RECORDS,
            {
                **fields,
                "site": self.options.site,
                "segment": self.options.segment,
                "transport": 6,
                "protocol": int(Protocol.MODBUS),
            },
            length=count,
        )
        self.counters.stored_rows += self.writer.write(batch).stored

    def _ended(self, flows: list[Flow]) -> None:
        if not flows:
            return
        ended = [flow.flow_id for flow in flows]
        self.modbus.forget(ended)
        self.protocols.forget(ended)
        self.counters.flow_records += len(flows)
        if self.writer is None:
            return
        ports = set(self.options.modbus_ports)
        protocols = [
            int(Protocol.MODBUS) if flow.server_port in ports else int(Protocol.UNKNOWN) for flow in flows
        ]
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


def _count_protocol(counters: ProtocolCounters, found: ProtocolBatch) -> None:
    counters.segments += found.segments
    counters.exact_segments += found.exact_segments
    counters.pdus += len(found.summary)
    counters.partial += int(np.count_nonzero(found.summary.status == ParseStatus.PARTIAL))
    counters.malformed += int(np.count_nonzero(found.summary.status == ParseStatus.MALFORMED))


def _tally(codes: npt.NDArray[np.uint8]) -> list[tuple[int, int]]:
    """(code, how many) for each code present among `codes`, small non-negative integers."""
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    return list(zip(present.tolist(), counts[present].tolist(), strict=True))


class _BatchRequests:
    """A batch's requests: their row labels, and their record's fields, read only when needed."""

    def __init__(self, batch: PacketBatch, layers: Layers, modbus: ModbusBatch, first_label: int) -> None:
        self.batch, self.layers, self.modbus = batch, layers, modbus
        self.first_label = first_label
        """The label of the batch's first row (rows are labelled in order across batches)."""
        self.rows = np.flatnonzero(~modbus.columns.is_response.astype(bool))
        self.closed = np.zeros(len(modbus.columns), dtype=bool)
        """Per row: whether its exchange closed (and its request was recorded)."""

    def labels(self) -> npt.NDArray[np.int64]:
        """Every row's label."""
        return np.arange(self.first_label, self.first_label + len(self.closed), dtype=np.int64)

    def waiting(self) -> npt.NDArray[np.int64]:
        """The rows of the requests still waiting for their answer."""
        waiting: npt.NDArray[np.int64] = self.rows[~self.closed[self.rows]]
        return waiting

    def fields(self, rows: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
        """What the records of the requests at `rows` need, but their status."""
        columns, layers = self.modbus.columns, self.layers
        packets = self.modbus.packet[rows]
        return {
            "ts": self.batch.ts_ns[packets],
            "src_addr": layers.src_addr[packets],
            "dst_addr": layers.dst_addr[packets],
            "src_port": layers.src_port[packets],
            "dst_port": layers.dst_port[packets],
            "operation": OPERATION_TABLE[columns.operation[rows]],
            "function": columns.function_code[rows],
            "unit": columns.unit_id[rows],
            "address": columns.address[rows],
            "quantity": columns.quantity[rows],
            "value": columns.value[rows],
        }


class _WaitingRequests:
    """The fields of requests still waiting for their answer, as columns keyed by row label."""

    def __init__(self) -> None:
        self.labels = np.zeros(0, dtype=np.int64)
        self.fields: dict[str, npt.NDArray[Any]] = {}

    def add(self, labels: npt.NDArray[np.int64], fields: dict[str, npt.NDArray[Any]]) -> None:
        """Keep the requests labelled `labels` (labels only grow)."""
        if not self.fields:
            self.labels, self.fields = labels.copy(), {name: values.copy() for name, values in fields.items()}
            return
        self.labels = np.concatenate([self.labels, labels])
        for name, values in fields.items():
            self.fields[name] = np.concatenate([self.fields[name], values])

    def take(
        self, labels: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], dict[str, npt.NDArray[Any]]]:
        """Remove and return the requests among `labels` (which of `labels` were found, their fields)."""
        where = np.searchsorted(self.labels, labels)
        inside = where < len(self.labels)
        found = np.zeros(len(labels), dtype=bool)
        found[inside] = self.labels[where[inside]] == labels[inside]
        rows = where[found]
        taken = {name: values[rows] for name, values in self.fields.items()}
        keep = np.ones(len(self.labels), dtype=bool)
        keep[rows] = False
        self.labels = self.labels[keep]
        self.fields = {name: values[keep] for name, values in self.fields.items()}
        return found, taken
