"""PROFINET DCP records against tshark on the shared captures that carry DCP: every Get, Set and
Identify request is one record with tshark's service id, source and destination MAC (as
link-local addresses), and the option and suboption of the block it is about; a Set answered
carries its response's BlockError. The PROFINET set-IP capture must give its Set IP record."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.schema import Operation, Protocol, address_text, mac_address
from plantwarden.monitoring.sensor import Sensor
from tests.functional.test_sensor_protocol_records import Kept
from tests.tshark_support import fields

PROFINET = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "datasets"
    / "pcaps"
    / "iti-ics-security-tools"
    / "profinet"
)
CAPTURES = ["ChangeIPUsingDCP.pcap", "PROFINET-RT.pcap", "profinet-wireshark-bug.pcap"]
SUBOPTION_FIELDS = {
    1: "pn_dcp.suboption_ip",
    2: "pn_dcp.suboption_device",
    3: "pn_dcp.suboption_dhcp",
    5: "pn_dcp.suboption_control",
    6: "pn_dcp.suboption_deviceinitiative",
    255: "pn_dcp.suboption_all",
}
NAMES = ["frame.time_epoch", "eth.src", "eth.dst", "pn_dcp.service_id", "pn_dcp.service_type"]
NAMES += ["pn_dcp.xid", "pn_dcp.option", "pn_dcp.block_error", *SUBOPTION_FIELDS.values()]
SET, PRECEDENCE, TRANSACTION = 4, [(5, 5), (5, 6), (1, 2), (1, 3), (2, 2)], [(5, 1), (5, 2)]
Row = tuple[int, str, str, int, int, int]
"""ts, source and destination address (text), function, address, status."""


def blocks(row: dict[str, str]) -> list[tuple[int, int]]:
    """(option, suboption) of each block, in order: tshark lists options in one field and the
    suboptions in one field per option."""
    left = {option: row[name].split(",") if row[name] else [] for option, name in SUBOPTION_FIELDS.items()}
    found = []
    for option in [int(value) for value in row["pn_dcp.option"].split(",") if value]:
        found.append((option, int(left[option].pop(0))))
    return found


def about(service: int, pairs: list[tuple[int, int]]) -> int:
    """The block a request is about, as docs/protocols/identity-protocols.md says."""
    if service == SET:
        ranked = [pair for wanted in PRECEDENCE for pair in pairs if pair == wanted]
        pairs = ranked + ([pair for pair in pairs if pair not in TRANSACTION] or pairs)
    return pairs[0][0] << 8 | pairs[0][1] if pairs else -1


def expected(capture: Path) -> Counter[Row]:
    """tshark's requests, with the status of the Sets' responses."""
    rows = [dict(zip(NAMES, values, strict=True)) for values in fields(capture, NAMES, "pn_dcp")]
    answers = {
        (row["pn_dcp.xid"], row["eth.src"], row["eth.dst"]): max(
            map(int, row["pn_dcp.block_error"].split(","))
        )
        for row in rows
        if row["pn_dcp.service_id"] == str(SET) and row["pn_dcp.service_type"] == "1"
    }
    found: Counter[Row] = Counter()
    for row in rows:
        service = int(row["pn_dcp.service_id"])
        if row["pn_dcp.service_type"] != "0" or service not in (3, 4, 5):
            continue
        status = -2 if service == 5 else answers.get((row["pn_dcp.xid"], row["eth.dst"], row["eth.src"]), -1)
        ts = int(Decimal(row["frame.time_epoch"]) * 1_000_000_000)
        source, destination = (address_text(mac_address(row[name])) for name in ("eth.src", "eth.dst"))
        found[(ts, source, destination, service, about(service, blocks(row)), status)] += 1
    return found


def recorded(capture: Path) -> Counter[Row]:
    """The sensor's DCP records, in batches of 2 (so that answers come in the next batch)."""
    kept = Kept()
    sensor = Sensor(writer=kept, identity=True)
    for batch in read_capture(capture, batch_size=2):
        sensor.process(batch)
    sensor.finish()
    records = kept.protocol()
    dcp = (records["protocol"] == Protocol.PROFINET_DCP).nonzero()[0].tolist()
    assert all(records["transport"][i] == 0 and records["src_port"][i] == 0 for i in dcp)
    columns = ["ts", "src_addr", "dst_addr", "function", "address", "status"]
    rows = zip(*(records[name][dcp].tolist() for name in columns), strict=True)
    return Counter((ts, address_text(s), address_text(d), f, a, st) for ts, s, d, f, a, st in rows)


@pytest.mark.skipif(not PROFINET.is_dir(), reason=f"the shared datasets are absent ({PROFINET})")
@pytest.mark.parametrize("name", CAPTURES)
def test_every_dcp_request_is_the_record_tshark_reads(name: str) -> None:
    want = expected(PROFINET / name)
    assert want, "tshark reads no DCP request"
    assert recorded(PROFINET / name) == want


@pytest.mark.skipif(not PROFINET.is_dir(), reason=f"the shared datasets are absent ({PROFINET})")
def test_the_set_ip_capture_gives_an_accepted_set_ip_write() -> None:
    kept = Kept()
    sensor = Sensor(writer=kept, identity=True)
    for batch in read_capture(PROFINET / "ChangeIPUsingDCP.pcap"):
        sensor.process(batch)
    sensor.finish()
    records = kept.protocol()
    sets = (records["function"] == SET).nonzero()[0]
    assert len(sets) == 1
    (index,) = sets.tolist()
    assert (records["operation"][index], records["address"][index]) == (Operation.WRITE, 0x0102)
    assert (records["status"][index], address_text(records["dst_addr"][index])) == (
        0,
        "fe80::a00:6ff:fe93:cf32",
    )
