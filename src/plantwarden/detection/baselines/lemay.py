"""The per-packet evaluation of baselines on the Lemay & Fernandez Modbus captures (CSET 2016).

Each capture is read with the project's capture code (`capture.pcap`, `capture.layers`) and its
packets are put in their flows by the sensor's flow table (which side is the client, which the
server, and the server's port). Every packet becomes a one-row `flows` record (client -> server,
transport, server port, protocol: Modbus on port 502, else unknown; a packet without IP is keyed
by its MAC addresses, as the records plane keys layer-2 protocols), and a Modbus request also a
one-row `protocol` record (unit, function, operation, first address, quantity, first value
written). The facts of those rows are computed by `facts.observe`, the same code and keys the
platform's baselines use. Every packet before the first packet labelled malicious is learnt;
then every scope protects, and each later packet is classified malicious when one of its facts
is a deviation (`learner.Baseline`). Precision and recall are per packet, against the labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.flows import FlowTable
from plantwarden.capture.layers import Layers, decode_layers
from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Protocol, mac_addresses
from plantwarden.detection.baselines.facts import observe
from plantwarden.detection.baselines.learner import Baseline, Scoping
from plantwarden.protocols.modbus.functions import operation_of

DATASET = Path("/work/shared/datasets/pcaps/lemay-modbus-cset16")
CAPTURES = (
    "characterization_modbus_6RTU_with_operate",
    "CnC_uploading_exe_modbus_6RTU_with_operate",
    "moving_two_files_modbus_6RTU",
)
SITE = "lemay"
MODBUS_PORT = 502


@dataclass(frozen=True)
class Score:
    """One capture's per-packet result."""

    capture: str
    packets: int
    learned: int
    tested: int
    malicious: int
    flagged: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.malicious if self.malicious else 0.0


def labels(capture: Path) -> np.ndarray:
    """Per packet (in capture order), 1 when labelled malicious."""
    rows = np.loadtxt(
        capture.with_name(f"{capture.stem}_labeled.csv"), delimiter=";", dtype=np.int64, ndmin=2
    )
    ordered: np.ndarray = rows[np.argsort(rows[:, 0]), 1]
    return ordered


def packet_records(capture: Path) -> tuple[RecordBatch, RecordBatch, np.ndarray]:
    """One flows row per packet, the Modbus requests as protocol rows, and each request's packet."""
    flows, requests, owners = [], [], []
    table = FlowTable(service_ports=(MODBUS_PORT,))
    number = 0
    for batch in read_capture(capture):
        layers = decode_layers(batch)
        update = table.update(
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
        flows.append(_flow_rows(batch, layers, update.from_client))
        found, rows = _modbus_requests(batch, layers, update.from_client)
        requests.append(found)
        owners.append(rows + number)
        number += len(batch)
    return (
        RecordBatch.concat(flows[0].kind, flows),
        RecordBatch.concat(requests[0].kind, requests),
        np.concatenate(owners),
    )


def _flow_rows(batch: PacketBatch, layers: Layers, from_client: np.ndarray) -> RecordBatch:
    src, dst = layers.src_addr.copy(), layers.dst_addr.copy()
    sport, dport = layers.src_port, layers.dst_port
    no_ip = layers.ip_version == 0
    src[no_ip] = mac_addresses(layers.src_mac[no_ip])
    dst[no_ip] = mac_addresses(layers.dst_mac[no_ip])
    forward = from_client | no_ip
    client = np.where(forward, src, dst)
    server = np.where(forward, dst, src)
    port = np.where(forward, dport, sport)
    protocol = np.where(port == MODBUS_PORT, int(Protocol.MODBUS), int(Protocol.UNKNOWN))
    return RecordBatch.build(
        "flows",
        {
            "ts": batch.ts_ns,
            "ts_end": batch.ts_ns,
            "site": SITE,
            "segment": "default",
            "src_addr": client,
            "dst_addr": server,
            "src_port": np.where(forward, sport, dport),
            "dst_port": port,
            "transport": layers.ip_proto,
            "protocol": protocol,
            "packets": 1,
            "bytes": layers.ip_total_length,
        },
        len(batch),
    )


def _modbus_requests(
    batch: PacketBatch, layers: Layers, from_client: np.ndarray
) -> tuple[RecordBatch, np.ndarray]:
    """Client-to-server TCP packets to port 502 with a whole MBAP header and function code."""
    length, offset = layers.payload_length, layers.payload_offset
    rows = np.flatnonzero(from_client & (layers.dst_port == MODBUS_PORT) & (length >= 8))
    buffer = batch.buffer

    def byte(at: int) -> np.ndarray:
        where = offset[rows] + at
        return np.where(length[rows] > at, buffer[np.minimum(where, len(buffer) - 1)], 0).astype(np.int64)

    function = byte(7)
    first, count = byte(8) * 256 + byte(9), byte(10) * 256 + byte(11)
    single = np.isin(function, (5, 6))
    operation = np.array([int(operation_of(int(f) & 0x7F)) for f in function], dtype=np.uint8)
    addressed = np.isin(function, (1, 2, 3, 4, 5, 6, 15, 16))
    written = np.isin(function, (5, 6, 16)) & (length[rows] >= 14)
    value = np.where(single, count, byte(13) * 256 + byte(14)).astype(np.float64)
    value[~written] = np.nan
    layers_src, layers_dst = layers.src_addr, layers.dst_addr
    return (
        RecordBatch.build(
            "protocol",
            {
                "ts": batch.ts_ns[rows],
                "site": SITE,
                "segment": "default",
                "src_addr": layers_src[rows],
                "dst_addr": layers_dst[rows],
                "src_port": layers.src_port[rows],
                "dst_port": MODBUS_PORT,
                "transport": 6,
                "protocol": int(Protocol.MODBUS),
                "operation": operation,
                "function": function,
                "unit": byte(6),
                "address": np.where(addressed, first, -1),
                "quantity": np.where(single, 1, np.where(addressed, count, 0)),
                "status": 0,
                "value": value,
                "response_ns": -1,
            },
            len(rows),
        ),
        rows,
    )


def evaluate(capture: Path) -> Score:
    """Learn before the first malicious packet, then classify every later packet."""
    truth = labels(capture)
    flows, requests, owners = packet_records(capture)
    if len(truth) != len(flows):
        raise ValueError(f"{capture.name}: {len(flows)} packets but {len(truth)} labels")
    start = int(np.argmax(truth == 1)) if truth.any() else len(truth)
    baseline, scoper = Baseline(learning_ns=1 << 62), Scoping()
    request_at = {int(packet): i for i, packet in enumerate(owners)}
    flagged = np.zeros(len(truth), dtype=bool)
    for packet in range(len(truth)):
        if packet == start:
            baseline.protect(SITE)
        found = baseline.observe(observe(flows.take(slice(packet, packet + 1))), scoper)
        at = request_at.get(packet)
        if at is not None:
            found += baseline.observe(observe(requests.take(slice(at, at + 1))), scoper)
        flagged[packet] = packet >= start and bool(found)
    tested = truth[start:] == 1
    hits = flagged[start:]
    return Score(
        capture.stem,
        len(truth),
        start,
        len(truth) - start,
        int(tested.sum()),
        int(hits.sum()),
        int((hits & tested).sum()),
    )


def available() -> bool:
    return all((DATASET / f"{name}.pcap").is_file() for name in CAPTURES)


def table(scores: list[Score]) -> str:
    """The scores as a text table."""
    lines = [
        f"{'capture':<46}{'packets':>8}{'learnt':>8}{'tested':>8}{'malicious':>10}{'flagged':>8}"
        f"{'TP':>6}{'precision':>10}{'recall':>8}"
    ]
    for s in scores:
        lines.append(
            f"{s.capture:<46}{s.packets:>8}{s.learned:>8}{s.tested:>8}{s.malicious:>10}{s.flagged:>8}"
            f"{s.true_positives:>6}{s.precision:>10.3f}{s.recall:>8.3f}"
        )
    return "\n".join(lines)


def run() -> list[Score]:
    """Every capture's score (the datasets folder must be there: `available()`)."""
    return [evaluate(DATASET / f"{name}.pcap") for name in CAPTURES]
