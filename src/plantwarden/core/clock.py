"""The clock is passed in, so that tests and the simulated plant control time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator


class Clock(Protocol):
    """Source of the current time (always timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to: the null implementation for tests and simulation."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The time the clock was set to."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self._now += delta


def in_utc(moment: datetime) -> datetime:
    """`moment` in UTC, a naive one taken as UTC. A ValueError says so when the moment has no UTC
    form (such as 0001-01-01T00:00+01:00, which falls before the first representable instant)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the range of storable times") from None


UtcDatetime = Annotated[datetime, AfterValidator(in_utc)]
"""A datetime field of the API: naive values taken as UTC, stored in UTC, out-of-range ones refused."""
