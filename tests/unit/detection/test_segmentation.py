"""The zone check: every rule with records that must and must not break it, windows across
midnight and daylight saving time, aggregation, IPv6, segments and sites."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.detection.channels import Verdict
from plantwarden.detection.segmentation import SegmentationCheck
from plantwarden.detection.verdicts import VerdictBook
from plantwarden.detection.violations import Violation, merge, sample_records
from plantwarden.detection.windows import WindowClock
from tests.unit.core.records.factories import telemetry_batch
from tests.unit.detection.plant_models import (
    WEDNESDAY_NOON,
    channel,
    flows,
    ns,
    plant_site,
    protocol_records,
    read_minutes,
)

MINUTE_NS = 60_000_000_000


def broken(
    batch: RecordBatch, site_check: SegmentationCheck | None = None
) -> list[tuple[str, str, str, str]]:
    """(rule, source, destination, operation) of each violation, sorted."""
    found = (site_check or SegmentationCheck(plant_site())).check(batch)
    return sorted((v.rule, v.src, v.dst, v.operation) for v in found)


def test_traffic_along_a_channel_or_inside_a_zone_is_allowed() -> None:
    batch = protocol_records(
        [
            {},  # a Modbus read from SCADA to the PLC
            {"operation": "write"},
            {"src": "10.2.0.5", "protocol": "s7comm", "port": 102, "operation": "program"},  # inside the cell
            {"src": "10.1.0.50", "protocol": "s7comm", "port": 102, "operation": "read"},  # eng-ws, any time
            {"src": "10.1.0.5", "dst": "10.1.0.99"},  # hmi-x is declared in the cell
        ]
    )
    assert broken(batch) == []


def test_an_address_in_no_zone() -> None:
    batch = protocol_records([{"src": "10.77.0.1"}, {"dst": "192.168.1.1"}, {"src": "10.1.0.6"}])
    assert broken(batch) == [
        ("zone.unzoned-asset", "10.1.0.5", "192.168.1.1", "read"),
        ("zone.unzoned-asset", "10.77.0.1", "10.2.0.10", "read"),
    ]


def test_zones_that_no_conduit_joins() -> None:
    batch = protocol_records([{"src": "10.9.0.4"}, {"src": "10.1.0.4"}])
    violations = SegmentationCheck(plant_site()).check(batch)
    assert [(v.rule, v.src, v.src_zone, v.dst_zone) for v in violations] == [
        ("zone.no-conduit", "10.9.0.4", "office", "cell")
    ]
    assert "no conduit joins zones office and cell" in violations[0].reason


@pytest.mark.parametrize(
    "record",
    [
        {"src": "10.2.0.10", "dst": "10.1.0.5"},  # the PLC opening to SCADA: the wrong direction
        {"port": 503},  # Modbus, but not to the channel's port
        {"protocol": "s7comm", "port": 102},  # S7 from a SCADA host that is not eng-ws
        {"protocol": "enip", "port": 502},  # another protocol on the Modbus port
        {"transport": "udp"},  # the channel is over TCP
    ],
)
def test_what_no_channel_carries(record: dict[str, object]) -> None:
    [violation] = SegmentationCheck(plant_site()).check(protocol_records([record]))
    assert (violation.rule, violation.conduit, violation.channel) == (
        "zone.channel-not-allowed",
        "scada-cell",
        None,
    )
    assert "modbus tcp/502 scada -> cell (read, write)" in violation.reason


def test_named_clients_narrow_a_channel() -> None:
    s7 = {"protocol": "s7comm", "port": 102}
    assert broken(protocol_records([{**s7, "src": "10.1.0.50"}])) == []
    assert broken(protocol_records([{**s7, "src": "10.1.0.51"}])) == [
        ("zone.channel-not-allowed", "10.1.0.51", "10.2.0.10", "read")
    ]


def test_cleartext_where_encryption_is_required() -> None:
    batch = protocol_records(
        [
            {"src": "10.5.0.7", "port": 5020},  # Modbus decoded on the channel that must be encrypted
            {"dst": "10.5.0.7", "port": 802, "operation": "write"},  # Modbus in clear on the mbaps port
        ]
    )
    violations = SegmentationCheck(plant_site()).check(batch)
    assert sorted((v.rule, v.channel, v.operation) for v in violations) == [
        ("zone.cleartext", "mbaps", "write"),
        ("zone.cleartext", "modbus-tls", "read"),
    ]
    encrypted_flows = flows([{"src": "10.5.0.7", "port": 5020}, {"dst": "10.5.0.7", "port": 802}])
    assert broken(encrypted_flows) == []  # no industrial protocol decoded: nothing proves cleartext


def test_operations_a_channel_does_not_allow() -> None:
    batch = protocol_records([{"operation": "program"}, {"operation": "malformed"}, {"operation": "write"}])
    violations = SegmentationCheck(plant_site()).check(batch)
    assert [(v.rule, v.operation, v.channel) for v in violations] == [
        ("zone.operation-not-allowed", "program", "modbus"),
        ("zone.operation-not-allowed", "malformed", "modbus"),
    ]
    assert "does not allow program (it allows read, write)" in violations[0].reason


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-11-27T21:59:00+01:00", False),  # Friday, before the window opens
        ("2026-11-27T22:00:00+01:00", True),
        ("2026-11-28T03:00:00+01:00", True),  # Saturday morning: Friday's window across midnight
        ("2026-11-28T23:00:00+01:00", True),  # Saturday night
        ("2026-11-29T05:59:00+01:00", True),  # Sunday morning: Saturday's window
        ("2026-11-29T06:00:00+01:00", False),
        ("2026-11-25T12:00:00+01:00", False),  # Wednesday noon
    ],
)
def test_program_outside_the_maintenance_window_across_midnight(moment: str, inside: bool) -> None:
    program = {
        "src": "10.1.0.50",
        "protocol": "s7comm",
        "port": 102,
        "operation": "program",
        "ts": ns(moment),
    }
    reads = {**program, "operation": "read"}
    found = broken(protocol_records([program, reads]))
    assert found == ([] if inside else [("zone.outside-window", "10.1.0.50", "10.2.0.10", "program")])


def test_a_channel_with_a_schedule_is_closed_outside_it() -> None:
    opcua = {"src": "10.5.0.7", "protocol": "opcua", "port": 4840}
    night = ns("2026-11-25T04:59:00+01:00")
    violations = SegmentationCheck(plant_site()).check(protocol_records([{**opcua, "ts": night}, opcua]))
    assert [(v.rule, v.first_ns) for v in violations] == [("zone.outside-window", WEDNESDAY_NOON)]
    assert "outside the schedule of channel cell-dmz/opcua (night: " in violations[0].reason


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2026-07-15T06:30:00+00:00", True),  # 08:30 CEST
        ("2026-01-14T06:30:00+00:00", False),  # 07:30 CET
        ("2026-07-15T15:30:00+00:00", False),  # 17:30 CEST
        ("2026-01-14T15:30:00+00:00", True),  # 16:30 CET
    ],
)
def test_windows_follow_daylight_saving_time(moment: str, inside: bool) -> None:
    site = plant_site(opcua=channel("opcua", "opcua", "dmz", "cell", schedule=("day",)))
    record = {"src": "10.5.0.7", "protocol": "opcua", "port": 4840, "ts": ns(moment)}
    assert bool(broken(protocol_records([record]), SegmentationCheck(site))) is not inside


def test_the_repeated_hour_and_the_missing_hour_of_daylight_saving_time() -> None:
    clock = WindowClock(plant_site())
    bit = clock.mask_of(["sunday-2am"])
    moments = {
        "2026-10-25T00:30:00+00:00": True,  # 02:30 CEST
        "2026-10-25T01:30:00+00:00": True,  # 02:30 CET, the hour again
        "2026-10-25T02:30:00+00:00": False,  # 03:30 CET
        "2026-03-29T00:30:00+00:00": False,  # 01:30 CET
        "2026-03-29T01:00:00+00:00": False,  # 03:00 CEST: 02:00 never happened
    }
    masks = clock.masks(np.array([ns(m) for m in moments], dtype=np.int64))
    assert [bool(int(m) & bit) for m in masks] == list(moments.values())


@pytest.mark.parametrize("timezone", ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns", "UTC"])
def test_window_masks_agree_with_zoneinfo_over_a_year(timezone: str) -> None:
    site = plant_site(timezone)
    clock = WindowClock(site)
    start = ns("2026-01-01T00:00:00+00:00")
    instants = np.sort(np.random.default_rng(7).integers(start, start + 366 * 86_400 * 10**9, 3000))
    masks = clock.masks(instants)
    zone = ZoneInfo(timezone)
    for instant, mask in zip(instants.tolist(), masks.tolist(), strict=True):
        local = datetime.fromtimestamp(instant // 10**9, UTC).astimezone(zone)
        minute = local.hour * 60 + local.minute
        expected = [w.contains(local.weekday(), minute) for w in site.windows.values()]
        assert [bool(mask >> i & 1) for i in range(len(expected))] == expected, local


def test_violations_are_aggregated_per_endpoints_operation_and_window() -> None:
    program = {"operation": "program"}
    rows = [{**program, "ts": WEDNESDAY_NOON + i * MINUTE_NS} for i in range(7)]
    rows += [{**program, "ts": WEDNESDAY_NOON + 3600 * 10**9 + i} for i in range(2)]
    rows += [{**program, "dst": "10.2.0.11"}, {}, {"operation": "control"}]
    found = SegmentationCheck(plant_site(), samples=3).check(protocol_records(rows))
    violations = sorted(found, key=lambda v: (v.window_start_ns, v.dst, v.operation))
    assert [(v.dst, v.operation, v.count, v.window_start_ns) for v in violations] == [
        ("10.2.0.10", "control", 1, ns("2026-11-25T11:00:00+00:00")),
        ("10.2.0.10", "program", 7, ns("2026-11-25T11:00:00+00:00")),
        ("10.2.0.11", "program", 1, ns("2026-11-25T11:00:00+00:00")),
        ("10.2.0.10", "program", 2, ns("2026-11-25T12:00:00+00:00")),
    ]
    seven = violations[1]
    assert seven.rows == (0, 1, 2) and len(seven.samples or ()) == 3
    assert (seven.first_ns, seven.last_ns) == (WEDNESDAY_NOON, WEDNESDAY_NOON + 6 * MINUTE_NS)
    assert (
        seven.dedup_key
        == "zone.operation-not-allowed|plant-a|default|10.1.0.5|10.2.0.10|program|2026-11-25T11:00:00Z"
    )
    shown = sample_records(seven.samples, seven.rows)  # type: ignore[arg-type]
    first = shown[0]
    assert (first["row"], first["src_addr"], first["operation"], first["ts"]) == (
        0,
        "10.1.0.5",
        3,
        "2026-11-25T11:00:00.000000+00:00",
    )
    again = SegmentationCheck(plant_site()).check(protocol_records(rows))
    assert sorted(v.count for v in again) == [1, 1, 2, 7]


def test_read_aggregates_count_their_requests_and_flows_have_no_operation() -> None:
    minutes = read_minutes([{"src": "10.9.0.4", "requests": 40}, {"src": "10.9.0.4", "requests": 2}])
    [aggregate] = SegmentationCheck(plant_site()).check(minutes)
    assert (aggregate.rule, aggregate.operation, aggregate.count, aggregate.kind) == (
        "zone.no-conduit",
        "read",
        42,
        "protocol_read_minutes",
    )
    assert aggregate.last_ns == WEDNESDAY_NOON + 30 * 10**9
    conversations = flows([{"src": "10.9.0.4", "port": 445}, {"src": "10.1.0.5", "port": 445}])
    assert broken(conversations) == [
        ("zone.channel-not-allowed", "10.1.0.5", "10.2.0.10", "flow"),
        ("zone.no-conduit", "10.9.0.4", "10.2.0.10", "flow"),
    ]


def test_ipv6_addresses_are_placed_in_their_zones() -> None:
    opcua = {"src": "fd00:5::7", "protocol": "opcua", "port": 4840}
    night = ns("2026-11-25T01:00:00+01:00")
    batch = protocol_records(
        [{**opcua, "ts": night}, opcua, {"src": "fd00:9::1"}, {"src": "::ffff:10.1.0.5"}]
    )
    assert broken(batch) == [
        ("zone.outside-window", "fd00:5::7", "10.2.0.10", "read"),
        ("zone.unzoned-asset", "fd00:9::1", "10.2.0.10", "read"),
    ]


def test_a_zone_only_holds_addresses_of_its_segment_and_other_sites_are_not_judged() -> None:
    on_line2 = protocol_records([{"segment": "line-2"}, {"segment": "line-2", "src": "10.2.0.3"}])
    violations = SegmentationCheck(plant_site()).check(on_line2)
    assert [(v.rule, v.segment, v.src, v.dst_zone) for v in violations] == [
        ("zone.unzoned-asset", "line-2", "10.1.0.5", "line2")  # 10.1.0.5 is in no zone of line-2
    ]
    mixed = protocol_records([{"segment": "line-2"}, {}, {"site": "plant-b", "src": "10.9.9.9"}])
    assert broken(mixed) == [("zone.unzoned-asset", "10.1.0.5", "10.2.0.10", "read")]


def test_verdicts_once_decided_give_the_same_answers() -> None:
    rows: list[dict[str, object]] = [
        {"operation": op} for op in ("read", "write", "program", "control", "malformed")
    ]
    rows += [{"src": "10.9.0.4"}, {"src": "10.77.0.1"}, {"src": "10.5.0.7", "port": 5020}]
    batch = protocol_records(rows)
    checker = SegmentationCheck(plant_site())
    first = checker.verdicts(batch)
    again = checker.verdicts(batch)
    assert first.bits.tolist() == again.bits.tolist() and first.channel.tolist() == again.channel.tolist()
    assert np.count_nonzero(first.bits) == 6


def test_merging_adds_counts_and_keeps_a_few_samples() -> None:
    checker = SegmentationCheck(plant_site(), samples=2)
    kept: dict[tuple[object, ...], Violation] = {}
    for _ in range(3):
        merge(kept, checker.check(protocol_records([{"operation": "program"}] * 2)), samples=2)
    [violation] = kept.values()
    assert violation.count == 6 and violation.rows == () and len(violation.samples or ()) == 2


def test_what_cannot_be_checked_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="telemetry records cannot be checked"):
        SegmentationCheck(plant_site()).check(telemetry_batch(3))
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Olympus'"):
        SegmentationCheck(plant_site("Mars/Olympus"))


@pytest.mark.parametrize("key_space", [1_000, 2**40])
def test_verdicts_are_decided_once_per_key_in_a_dense_or_a_sparse_book(key_space: int) -> None:
    decided: list[int] = []

    def decide(key: int) -> Verdict:
        decided.append(key)
        return Verdict(key % 4)

    book = VerdictBook(key_space, decide)
    keys = np.array([7, 3, 7, 999, 3, 8], dtype=np.int64)
    numbers = book.of(keys)
    assert [book.verdicts[n].bits for n in numbers.tolist()] == [3, 3, 3, 3, 3, 0]
    assert sorted(decided) == [3, 7, 8, 999]
    assert book.of(np.array([8, 999, 5], dtype=np.int64)).tolist() == [0, numbers[3], 2]
    assert sorted(decided) == [3, 5, 7, 8, 999]  # only the new key was decided
    assert book.bits.tolist() == [0, 3, 1]
