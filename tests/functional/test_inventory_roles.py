"""Roles and request statistics on the generated plant, against the generator's ground truth.

The simulated plant (30,000 packets, seed 11: about ten minutes of traffic) goes through the
sensor with its identity frames on; its sightings feed an asset book and its records an edge
book, and the roles are inferred from both. The generator's ledger lists every host that
appears in the capture with its role, and every client's requests per function with the answer
delays and poll intervals it generated. Every talker first wakes within two seconds of the
start, so the engineering workstation's first session (identify, write, read back) is in every
capture, however short; the test checks the ledger has it rather than trusting that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.records.schema import FLOWS, PROTOCOL_RECORDS
from plantwarden.inventory import AssetBook, EdgeBook, FunctionStatistics
from plantwarden.inventory.roles import Role, RoleGuess, infer_roles
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.monitoring.sightings import sightings
from plantwarden.sim.traffic.generator import generate

SITE, SEGMENT = "riverside", "plant"
S = 1_000_000_000
MIN_INTERVALS = 50
"""A period is compared where the ledger counts at least this many intervals (the HMI's ~600,
the historian's ~120, the telemetry's ~60 per function): the engineer's few writes have none."""


class EdgeSink:
    """A record sink feeding protocol records and flows to an edge book."""

    def __init__(self) -> None:
        self.book = EdgeBook()

    def write(self, batch: RecordBatch) -> WriteReport:
        if batch.kind in (PROTOCOL_RECORDS, FLOWS):
            self.book.add(batch)
        return WriteReport(records=len(batch), stored=len(batch))


@dataclass
class Inferred:
    ledger: dict[str, Any]
    assets: AssetBook
    edges: EdgeBook
    roles: dict[Any, RoleGuess]


@pytest.fixture(scope="module")
def inferred(tmp_path_factory: pytest.TempPathFactory) -> Inferred:
    generated = generate(tmp_path_factory.mktemp("plant") / "plant.pcap", seed=11, packets=30_000)
    sink = EdgeSink()
    sensor = Sensor(
        SensorOptions(site=SITE, segment=SEGMENT), sink, protocols=tuple(PROTOCOLS.values()), identity=True
    )
    book = AssetBook()
    for batch in read_capture(generated.capture, batch_size=512):
        sensor.process(batch)
        assert sensor.last_layers is not None
        book.add_many(sightings(batch, sensor.last_layers, sensor.last_identity, SITE, SEGMENT))
    sensor.finish()
    roles = infer_roles(book.assets(), sink.book.edges(), sink.book.statistics(), book.router_macs())
    ledger = json.loads(Path(generated.ledger_path).read_text(encoding="utf-8"))
    return Inferred(ledger, book, sink.book, roles)


def test_every_host_of_the_capture_gets_its_role(inferred: Inferred) -> None:
    hosts = inferred.ledger["hosts"]
    roles = {host["role"] for host in hosts}
    assert roles == {role.value for role in Role} - {Role.IOT_DEVICE, Role.UNKNOWN}
    assert any(p["client"] == _ip(hosts, "eng-ws-1") for p in inferred.ledger["polling"])
    wrong = []
    for host in hosts:
        asset = inferred.assets.find(SITE, SEGMENT, host["ip"])
        assert asset is not None, host
        # Exactly its own MAC, none of the routers' in front of it; a host beyond the routers
        # (the internet) is seen behind their MACs only, so it has none.
        own = set() if host["zone"] == "outside" else {host["mac"]}
        assert {mac.address for mac in asset.macs} == own, host
        guess = inferred.roles[asset.id]
        if guess.role.value != host["role"]:
            wrong.append((host["name"], host["role"], guess))
        assert guess.evidence and 0 < guess.confidence <= 1
    assert not wrong
    listed = {host["ip"] for host in hosts}
    assert {ip.address for asset in inferred.assets.assets() for ip in asset.ips} == listed


def test_the_evidence_names_the_numbers(inferred: Inferred) -> None:
    hosts = inferred.ledger["hosts"]

    def evidence(name: str) -> tuple[str, ...]:
        asset = inferred.assets.find(SITE, SEGMENT, _ip(hosts, name))
        assert asset is not None
        return inferred.roles[asset.id].evidence

    assert evidence("hmi-1")[0] == "polls 6 devices over modbus every 1.0 s"
    assert evidence("historian-1")[0] == "polls 6 devices over modbus every 5.0 s"
    assert evidence("tank-1")[0].startswith("serves modbus to 3 clients")  # HMI, historian, engineer
    assert evidence("broker-1")[0] == "serves mqtt to 6 clients"
    assert evidence("cell-a-switch")[0] == "LLDP names it a bridge"


def test_polling_periods_and_answer_times_match_the_ledger(inferred: Inferred) -> None:
    """Every function the ledger counts: the same requests; where it has at least
    `MIN_INTERVALS` intervals, the period within 5 % of the generated median interval; where it
    has answers, the answer median and 95th percentile within 5 % of the generated ones."""
    statistics = {
        (s.client, s.server, s.protocol.name.lower(), s.function): s for s in inferred.edges.statistics()
    }
    periods = answers = 0
    for entry in inferred.ledger["polling"]:
        key = (entry["client"], entry["server"], entry["protocol"], entry["function"])
        stats: FunctionStatistics = statistics[key]
        assert stats.requests == entry["requests"], entry
        if entry["intervals"] >= MIN_INTERVALS:
            assert stats.period_ns == pytest.approx(entry["interval_median_s"] * S, rel=0.05), entry
            periods += 1
        if entry["answers"]:
            assert stats.responses == entry["answers"], entry
            assert stats.response_median_ns == pytest.approx(entry["answer_median_s"] * S, rel=0.05), entry
            assert stats.response_p95_ns == pytest.approx(entry["answer_p95_s"] * S, rel=0.05), entry
            answers += 1
    assert periods == 6 * 4 + 6 + 6  # the HMI's four functions per PLC, the historian's, telemetry
    assert answers >= 6 * 5 + 6  # those polls, the MQTT connects, the engineer's requests


def _ip(hosts: list[dict[str, str]], name: str) -> str:
    return next(host["ip"] for host in hosts if host["name"] == name)
