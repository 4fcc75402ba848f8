from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from plantwarden.core.clock import FixedClock, SystemClock
from plantwarden.core.ids import new_id


def test_new_ids_are_uuid7_and_ordered_by_time() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first.version == 7 and second.version == 7
    assert first.variant == "specified in RFC 4122"
    assert first < second
    milliseconds = first.int >> 80
    assert abs(milliseconds - time.time() * 1000) < 5000


def test_new_ids_are_unique_within_one_millisecond() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_clocks_are_timezone_aware() -> None:
    assert SystemClock().now().tzinfo is UTC
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(minutes=5))
    assert clock.now() == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 1, 1))  # noqa: DTZ001
