"""The clock is passed in, so that tests and the simulated plant control time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator

SECOND_NS = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NANO_DIGITS = 9
_FRACTION = re.compile(r"[.,]([0-9]+)")
"""The fractional seconds of an ISO 8601 time (its only decimal separator)."""


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


def nanoseconds(moment: datetime) -> int:
    """A time as nanoseconds since the epoch, exactly (a naive time is UTC). `timestamp()` goes
    through a float, which is a few hundred nanoseconds off at today's dates."""
    delta = (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND_NS + delta.microseconds * 1000


def from_nanoseconds(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC time, cut to the microsecond (`datetime` keeps
    no finer); exact, where `fromtimestamp(ns / 1e9)` rounds through a float."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def iso_time(ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC to the microsecond, or to the nanosecond when
    it has any (`iso_nanoseconds` reads either back exactly)."""
    text = from_nanoseconds(ns).isoformat(timespec="microseconds")
    rest = ns % 1000
    return text if not rest else f"{text[:26]}{rest:03d}{text[26:]}"


def iso_nanoseconds(text: str) -> int:
    """ISO 8601 text as nanoseconds since the epoch (UTC unless it carries an offset), with up to
    nine fractional digits (`datetime` keeps six: the rest is added here); a ValueError says what
    is wrong."""
    fraction = _FRACTION.search(text)
    extra = 0
    if fraction is not None and len(fraction[1]) > 6:
        digits = fraction[1]
        if len(digits) > NANO_DIGITS:
            raise ValueError(f"has {len(digits)} fractional digits (nanoseconds at most: {NANO_DIGITS})")
        extra = int(digits[6:].ljust(3, "0"))
        text = text[: fraction.start(1) + 6] + text[fraction.end(1) :]
    try:
        return nanoseconds(datetime.fromisoformat(text)) + extra
    except ValueError:
        raise ValueError("is not an ISO 8601 time (e.g. 2026-11-26T08:00:00Z)") from None


UtcDatetime = Annotated[datetime, AfterValidator(in_utc)]
"""A datetime field of the API: naive values taken as UTC, stored in UTC, out-of-range ones refused."""
