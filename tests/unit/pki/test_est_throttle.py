"""The enrolment backoff: free failures, then doubling blocks up to a ceiling, per source, and a
quiet window that starts the count again."""

from __future__ import annotations

import pytest

from plantwarden.pki.est_throttle import EnrolmentThrottle, EnrolmentThrottled


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_a_doubling_backoff_up_to_the_ceiling() -> None:
    ticks = Ticks()
    throttle = EnrolmentThrottle(free=2, base=1.0, longest=5.0, window=60.0, monotonic=ticks)
    assert [throttle.failed("10.0.0.1") for _ in range(2)] == [0.0, 0.0]
    throttle.check("10.0.0.1")
    assert throttle.failed("10.0.0.1") == 2.0
    with pytest.raises(EnrolmentThrottled, match="try again in 2 seconds") as refused:
        throttle.check("10.0.0.1")
    assert refused.value.retry_after_seconds == 2.0
    throttle.check("10.0.0.2")  # another source is not slowed down
    assert throttle.failed("10.0.0.1") == 4.0
    assert throttle.failed("10.0.0.1") == 5.0  # the ceiling
    ticks.now += 5.0
    throttle.check("10.0.0.1")  # the block has passed


def test_a_quiet_window_starts_the_count_again() -> None:
    ticks = Ticks()
    throttle = EnrolmentThrottle(free=1, base=1.0, longest=60.0, window=30.0, monotonic=ticks)
    throttle.failed("s")
    assert throttle.failed("s") == 2.0
    ticks.now += 31.0
    assert throttle.failed("s") == 0.0


def test_a_full_table_forgets_old_sources_first() -> None:
    ticks = Ticks()
    throttle = EnrolmentThrottle(free=0, base=100.0, longest=100.0, window=10.0, monotonic=ticks, capacity=2)
    throttle.failed("old")
    ticks.now += 200.0
    throttle.failed("blocked")
    throttle.failed("new")  # the table is full: "old" (neither blocked nor recent) goes
    with pytest.raises(EnrolmentThrottled):
        throttle.check("blocked")
