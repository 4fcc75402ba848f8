"""Which of a site's weekly windows each record's time falls in, vectorised.

Windows are weekly, in the site's time zone; records carry nanoseconds UTC. The site's UTC
offset is found for the span of the records (the instants where it changes are located to the
second), each record's local minute of the week is computed from its offset, and one table of
10,080 bit masks (bit i: inside window i) gives the answer for every record at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.zones.plant.model import SiteModel

Array = npt.NDArray[Any]
SECOND_NS = 1_000_000_000
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
        starts, offsets = utc_offsets(self.timezone, int(seconds.min()), int(seconds.max()))
        if len(offsets) == 1:
            return np.full(len(seconds), offsets[0], dtype=np.int64)
        found: Array = offsets[np.searchsorted(starts, seconds, side="right") - 1]
        return found


def _offset(timezone: ZoneInfo, second: int) -> int:
    moment = datetime.fromtimestamp(second, UTC).astimezone(timezone)
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def utc_offsets(timezone: ZoneInfo, first: int, last: int) -> tuple[Array, Array]:
    """The offsets in force from `first` to `last` (seconds since the epoch): `starts[i]` is the
    first second of `offsets[i]`. Sampled hourly; each change is located to the second."""
    starts, offsets = [first], [_offset(timezone, first)]
    hour = first - first % _HOUR + _HOUR
    while hour <= last + _HOUR:
        now = _offset(timezone, hour)
        if now != offsets[-1]:
            low, high = max(hour - _HOUR, first), hour  # offset differs somewhere in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(timezone, middle) == offsets[-1] else (low, middle)
            starts.append(high)
            offsets.append(now)
        hour += _HOUR
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)
