"""The generated captures read by tshark: no errors, and its Modbus counts equal the ledger's."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pytest

from plantwarden.sim.attacks import SCENARIOS
from plantwarden.sim.traffic.generator import Generated, generate
from tests.tshark_support import SEVERITY_ERROR, counts, fields

PACKETS = 40_000


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp("capture")
    return generate(folder / "plant.pcapng", seed=11, packets=PACKETS, attacks=list(SCENARIOS))


@pytest.fixture(scope="module")
def rows(generated: Generated) -> list[list[str]]:
    names = ["frame.number", "modbus.func_code", "_ws.expert.severity", "_ws.malformed", "ip.src", "vlan.id"]
    names.append("ieee8021ad.id")
    return fields(generated.capture, names)


def test_tshark_reads_every_frame_without_an_error(generated: Generated, rows: list[list[str]]) -> None:
    assert len(rows) == PACKETS == generated.ledger["packets"]
    errors = [row[0] for row in rows if any(int(s) >= SEVERITY_ERROR for s in row[2].split(",") if s)]
    malformed = [row[0] for row in rows if row[3]]
    assert errors == [] and malformed == []


def test_modbus_function_code_counts_equal_the_ledger(generated: Generated, rows: list[list[str]]) -> None:
    seen: Counter[str] = Counter()
    for row in rows:
        seen += counts(row[1])
    ledger = {code: sum(kinds.values()) for code, kinds in generated.ledger["modbus_function_codes"].items()}
    assert dict(seen) == ledger
    assert {"1", "2", "3", "4", "5", "6", "8", "43"} <= set(ledger)


def test_the_capture_has_real_world_shape(generated: Generated, rows: list[list[str]]) -> None:
    ledger = generated.ledger
    assert ledger["share_of_pdus_in_shared_segments"] >= 0.10
    assert 0.003 <= ledger["share_of_pdus_split"] <= 0.03
    assert ledger["retransmissions"] > 0
    assert {"modbus", "mqtt", "dns", "ntp", "https", "arp"} <= set(ledger["flows"])
    tags = Counter((row[6], row[5]) for row in rows)
    assert tags["", "10"] and tags["", "20"] and tags["100", "30"] and tags["", ""]


def test_retransmissions_and_options_are_what_tshark_sees(generated: Generated) -> None:
    retransmitted = fields(generated.capture, ["frame.number"], "tcp.analysis.retransmission")
    assert len(retransmitted) == generated.ledger["retransmissions"]
    with_options = fields(
        generated.capture, ["tcp.options.timestamp.tsval", "ip.opt.type"], "tcp.options.mss_val"
    )
    assert any(row[0] for row in with_options) and any(not row[0] for row in with_options)
    record_route = fields(generated.capture, ["ip.opt.type", "ip.src"], "ip.opt.type")
    assert record_route and {row[1] for row in record_route} == {"127.10.0.20"}


def test_labels_mark_each_attack_and_only_its_frames(generated: Generated) -> None:
    with generated.labels.open(encoding="utf-8") as handle:
        labels = list(csv.DictReader(handle))
    assert len(labels) == generated.ledger["attack_packets"] > 0
    assert {row["attack"] for row in labels} == set(SCENARIOS)
    addresses = {row[0]: row[1] for row in fields(generated.capture, ["frame.number", "ip.src"])}
    attackers = {"127.10.0.10", "127.10.1.20"}
    for row in labels:
        source = addresses[row["frame"]]
        assert source in attackers or source.startswith(("127.10.2.", "127.10.3.", "127.10.1.")), row


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    digests = []
    for name in ("a", "b"):
        result = generate(tmp_path / f"{name}.pcap", seed=5, packets=5_000, attacks=["scan", "plc-stop"])
        digests.append(tuple(_digest(p) for p in (result.capture, result.labels)))
    other = generate(tmp_path / "c.pcap", seed=6, packets=5_000, attacks=["scan", "plc-stop"])
    assert digests[0] == digests[1]
    assert _digest(other.capture) != digests[0][0]


def test_a_pcap_with_nanoseconds_reads_the_same(tmp_path: Path) -> None:
    micro = generate(tmp_path / "micro.pcap", seed=3, packets=2_000)
    nano = generate(tmp_path / "nano.pcapng", seed=3, packets=2_000, nanoseconds=True)
    micro_times, nano_times = (
        [float(row[0]) for row in fields(r.capture, ["frame.time_epoch"])] for r in (micro, nano)
    )
    assert len(micro_times) == len(nano_times) == 2_000
    # The times are floats of about 1.8e9 s, exact to a quarter of a microsecond.
    assert all(abs(a - b) < 1e-6 for a, b in zip(micro_times, nano_times, strict=True))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
