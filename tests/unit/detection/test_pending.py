"""The live zone check keeps a bounded number of distinct violations: a scan from 100,000 spoofed
sources or a sweep of 20,000 destinations is folded into few violations whose counts stay right,
and the summary says how many were folded."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.live import ZoneCheckTee
from plantwarden.detection.pending import MANY_DESTINATIONS, MANY_SOURCES, PendingViolations
from plantwarden.detection.segmentation import SegmentationCheck
from plantwarden.detection.violations import Violation
from plantwarden.detection.zone_check import draft, summary
from tests.unit.detection.plant_models import WEDNESDAY_NOON, plant_site, protocol_records

PLC = "10.2.0.10"


def addresses(first: str, count: int) -> list[str]:
    start = int(ipaddress.ip_address(first))
    return [str(ipaddress.ip_address(start + n)) for n in range(count)]


def test_a_scan_from_100_000_sources_is_folded_per_destination_with_every_request_counted() -> None:
    reports: list[Sequence[Violation]] = []
    tee = ZoneCheckTee(plant_site(), None, reports.append, limit=5000, monotonic=lambda: 0.0)
    sources = addresses("10.77.0.0", 100_000)  # in no zone: one violation per source
    half = len(sources) // 2
    for chunk in (sources[:half], sources[half:]):
        tee.write(protocol_records([{"src": src, "dst": PLC} for src in chunk]))
        assert len(tee.pending) <= 5001
    tee.write(protocol_records([{"src": sources[0], "dst": PLC}] * 3))  # a kept one counts on
    tee.close()
    [found] = reports
    assert len(found) == 5001 and tee.reported == 5001
    assert sum(v.count for v in found) == 100_003
    folded = [v for v in found if v.src == MANY_SOURCES]
    assert [(v.rule, v.dst, v.count, v.folded) for v in folded] == [
        ("zone.unzoned-asset", PLC, 95_000, 95_000)
    ]
    assert folded[0].src_zone is None and folded[0].dst_zone == "cell" and folded[0].dst_asset == "plc-1"
    assert folded[0].reason.startswith("The same from many sources to 10.2.0.10, more distinct violations")
    assert len(folded[0].samples or ()) == 5
    first = next(v for v in found if v.src == sources[0])
    assert first.count == 4 and first.folded == 0
    assert "95,000 folded into many-source alerts: more than 5,000 distinct violations" in tee.summary()
    alert = draft(folded[0])
    assert (
        alert.assets == ["plc-1"]
        and alert.dedup_key is not None
        and alert.dedup_key.split("|")[3:5] == [MANY_SOURCES, PLC]
    )
    assert summary(folded[0])["records"] == 95_000 and summary(folded[0])["folded"] == 95_000


def test_a_sweep_of_destinations_folds_into_many_sources_then_into_many_destinations() -> None:
    check = SegmentationCheck(plant_site())
    pending = PendingViolations(samples=5, limit=100)
    targets = addresses("10.88.0.0", 20_000)
    pending.add(check.check(protocol_records([{"src": "10.1.0.5", "dst": dst} for dst in targets])))
    found = pending.values()
    assert len(found) == 201 and sum(v.count for v in found) == 20_000
    ends = [(v.src, v.dst) for v in found]
    assert ends[:100] == [("10.1.0.5", dst) for dst in targets[:100]]
    assert ends[100:200] == [(MANY_SOURCES, dst) for dst in targets[100:200]]
    assert ends[200] == (MANY_SOURCES, MANY_DESTINATIONS) and found[200].count == 19_800
    assert found[200].src_zone == "scada" and found[200].dst_zone is None and found[200].dst_asset is None
    assert pending.folded == 19_900
    assert draft(found[200]).assets == []


def test_violations_of_another_window_or_rule_fold_apart_and_a_report_starts_afresh() -> None:
    check = SegmentationCheck(plant_site())
    pending = PendingViolations(samples=2, limit=1)
    later = WEDNESDAY_NOON + 3600 * 10**9
    rows: list[dict[str, object]] = [
        {"src": "10.77.0.1"},
        {"src": "10.77.0.2"},
        {"src": "10.77.0.3", "ts": later},
    ]
    rows += [{"src": "10.9.0.4"}]  # office to the cell: no conduit
    pending.add(check.check(protocol_records(rows)))
    assert sorted((v.rule, v.src, v.count, v.window_start_ns > WEDNESDAY_NOON) for v in pending.values()) == [
        ("zone.no-conduit", MANY_SOURCES, 1, False),
        ("zone.unzoned-asset", "10.77.0.1", 1, False),
        ("zone.unzoned-asset", MANY_SOURCES, 1, False),
        ("zone.unzoned-asset", MANY_SOURCES, 1, True),
    ]
    assert len(pending.take()) == 4 and len(pending) == 0 and pending.folded == 3
    pending.add(check.check(protocol_records([{"src": "10.77.0.2"}])))
    assert [v.src for v in pending.values()] == ["10.77.0.2"]


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        PendingViolations(samples=5, limit=0)
