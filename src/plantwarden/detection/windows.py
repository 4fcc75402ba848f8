"""Which of a site's weekly windows each record's time falls in, vectorised.

Windows are weekly, in the site's time zone; records carry nanoseconds UTC. The site's UTC
offset is found for each distinct hour the records fall in (a change inside an hour is located to
the second), so the cost follows the hours present, not the span between the earliest and the
latest record (a record stamped 0 by a corrupt capture costs one more hour, not fifty years).
Each record's local minute of the week is computed from its offset, and one table of 10,080 bit
masks (bit i: inside window i) gives the answer for every record at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput
from plantwarden.zones.plant.model import SiteModel

Array = npt.NDArray[Any]
MINUTES_PER_WEEK = 7 * 1440
MAX_WINDOWS = 64
_HOUR = 3600
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday is 0)


def site_timezone(site: SiteModel) -> ZoneInfo:
    """The site's time zone, or a clear error naming it."""
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"site {site.id}: unknown time zone {site.timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None


class WindowClock:
    """The site's windows as bits: `masks(ts_ns)` says which windows each instant lies in."""

    def __init__(self, site: SiteModel) -> None:
        if len(site.windows) > MAX_WINDOWS:
            raise InvalidInput(f"site {site.id} has {len(site.windows)} windows; at most {MAX_WINDOWS}")
        self.site = site
        self.timezone = site_timezone(site)
        self.names: tuple[str, ...] = tuple(site.windows)
        self._bit = {name: np.uint64(1) << np.uint64(i) for i, name in enumerate(self.names)}
        self._table = np.zeros(MINUTES_PER_WEEK, dtype=np.uint64)
        for name, window in site.windows.items():
            for begin, end in window.minutes_of_week():
                self._table[begin:end] |= self._bit[name]

    def mask_of(self, names: Iterable[str]) -> int:
        """The bits of the named windows (a name the site does not declare is an error)."""
        mask = 0
        for name in names:
            if name not in self._bit:
                raise InvalidInput(f"site {self.site.id} has no window {name!r}")
            mask |= int(self._bit[name])
        return mask

    def masks(self, ts_ns: Array) -> Array:
        """For each time (ns UTC), the bits of the windows it lies in (uint64)."""
        if not len(ts_ns):
            return np.zeros(0, dtype=np.uint64)
        seconds = np.asarray(ts_ns, dtype=np.int64) // SECOND_NS
        local = seconds + self.offsets(seconds)
        days = local // 86_400
        minute = ((days + _EPOCH_WEEKDAY) % 7) * 1440 + (local - days * 86_400) // 60
        result: Array = self._table[minute]
        return result

    def offsets(self, seconds: Array) -> Array:
        """The site's UTC offset (seconds) at each instant (seconds since the epoch)."""
        hours, inverse = np.unique(seconds // _HOUR, return_inverse=True)
        before, change, after = hour_offsets(self.timezone, hours)
        inverse = inverse.reshape(-1)
        found: Array = np.where(seconds >= change[inverse], after[inverse], before[inverse])
        return found


def _offset(timezone: ZoneInfo, second: int) -> int:
    moment = datetime.fromtimestamp(second, UTC).astimezone(timezone)
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def hour_offsets(timezone: ZoneInfo, hours: Array) -> tuple[Array, Array, Array]:
    """For each hour (hours since the epoch, UTC): the offset at its first second, the second at
    which the offset changes inside it (the next hour's first second when it does not), and the
    offset from then on. Two look-ups per hour (shared between consecutive hours); a change is
    located to the second. Offsets change at most once an hour (true of every time zone)."""
    known: dict[int, int] = {}

    def at(second: int) -> int:
        if second not in known:
            known[second] = _offset(timezone, second)
        return known[second]

    before, change, after = [], [], []
    for hour in hours.tolist():
        first, end = hour * _HOUR, hour * _HOUR + _HOUR
        start_offset, end_offset = at(first), at(end)
        before.append(start_offset)
        after.append(end_offset)
        change.append(end if start_offset == end_offset else _change(timezone, first, end, start_offset))
    return (
        np.array(before, dtype=np.int64),
        np.array(change, dtype=np.int64),
        np.array(after, dtype=np.int64),
    )


def _change(timezone: ZoneInfo, low: int, high: int, old: int) -> int:
    """The first second of (low, high] whose offset is no longer `old` (it is at `high`)."""
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _offset(timezone, middle) == old else (low, middle)
    return high
