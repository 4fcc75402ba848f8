"""The site's UTC offset is looked up per distinct hour of a batch, not per hour of its span: a record
stamped 0 (a corrupt capture) or far in the future costs an hour more, and every offset stays exact
to the second around daylight saving changes. The look-ups are counted, not timed (the suite
asserts the work done; speed is the benchmarks' to report)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from plantwarden.detection import windows
from plantwarden.detection.segmentation import SegmentationCheck
from plantwarden.detection.windows import WindowClock
from tests.unit.detection.plant_models import WEDNESDAY_NOON, ns, plant_site, protocol_records

FAR = 2**62  # nanoseconds: the year 2116
NIGHT = ns("2026-11-25T04:59:00+01:00")  # inside the `night` schedule


@pytest.fixture
def look_ups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seconds whose offset the clock looked up in the time zone database, in order."""
    asked: list[int] = []
    real = windows._offset

    def counted(timezone: ZoneInfo, second: int) -> int:
        asked.append(second)
        return real(timezone, second)

    monkeypatch.setattr(windows, "_offset", counted)
    return asked


def test_a_batch_spanning_a_century_checks_in_a_few_look_ups_and_as_its_records_do_alone(
    look_ups: list[int],
) -> None:
    check = SegmentationCheck(plant_site())
    opcua = {"src": "10.5.0.7", "protocol": "opcua", "port": 4840}  # a channel open only at night
    stamps = [0, WEDNESDAY_NOON, NIGHT, FAR]
    check.check(protocol_records([{**opcua, "ts": WEDNESDAY_NOON}]))  # verdicts decided, warm
    batch = protocol_records([{**opcua, "ts": ts} for ts in stamps])
    look_ups.clear()
    together = check.verdicts(batch).bits
    asked = len(look_ups)  # two per distinct hour at most; per hour of the span would be ~10**6
    alone = [int(check.verdicts(protocol_records([{**opcua, "ts": ts}])).bits[0]) for ts in stamps]
    assert together.tolist() == alone
    assert len(set(alone)) == 2  # some inside the schedule, some outside: the time decided them
    assert 0 < asked <= 2 * len(stamps), look_ups


def offsets_by_zoneinfo(timezone: str, seconds: list[int]) -> list[int]:
    zone = ZoneInfo(timezone)
    found = []
    for second in seconds:
        offset = datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()
        found.append(int(offset.total_seconds()) if offset is not None else 0)
    return found


def transitions(timezone: str, years: range) -> list[int]:
    """The seconds at which the zone's offset changes in these years (found by a scan of hours)."""
    zone_offsets = offsets_by_zoneinfo
    found: list[int] = []
    for year in years:
        start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        hours = list(range(start, start + 366 * 86_400, 3600))
        offsets = zone_offsets(timezone, hours)
        for index in range(1, len(hours)):
            if offsets[index] != offsets[index - 1]:
                low, high = hours[index - 1], hours[index]
                while high - low > 1:
                    middle = (low + high) // 2
                    same = zone_offsets(timezone, [middle])[0] == offsets[index - 1]
                    low, high = (middle, high) if same else (low, middle)
                found.append(high)
    return found


@pytest.mark.parametrize("timezone", ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns", "UTC"])
def test_offsets_around_every_change_of_scattered_years_agree_with_zoneinfo(timezone: str) -> None:
    clock = WindowClock(plant_site(timezone))
    changes = transitions(timezone, range(1975, 2101, 25))
    seconds = sorted({c + d for c in changes for d in (-3601, -1, 0, 1, 59, 1799, 3599)} | {0, FAR // 10**9})
    column = np.array(seconds, dtype=np.int64)
    assert clock.offsets(column).tolist() == offsets_by_zoneinfo(timezone, seconds)


def test_the_offsets_of_far_apart_records_need_few_look_ups(look_ups: list[int]) -> None:
    clock = WindowClock(plant_site("Europe/Berlin"))
    extremes = np.array([-(2**63) // 10**9, 0, FAR // 10**9, (2**63 - 1) // 10**9], dtype=np.int64)
    offsets = clock.offsets(extremes)
    assert 0 < len(look_ups) <= 2 * len(extremes), look_ups
    assert offsets.tolist() == offsets_by_zoneinfo("Europe/Berlin", extremes.tolist())
    masks = clock.masks(np.array([0, FAR, 2**63 - 1, -(2**63)], dtype=np.int64))
    assert len(masks) == 4
