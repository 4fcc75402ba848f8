"""A channel's schedule windows as UTC day and hour matches for nft.

Windows are weekly, in the site's time zone. The kernel evaluates `meta hour` as seconds since
UTC midnight and `meta day` in its own time zone (UTC unless the hardware clock keeps local
time); nft converts `"HH:MM"` literals from the local time zone of the process that loads the
ruleset, but takes a bare number of seconds as it is. So the compiler converts each window to
UTC with the site's offset at render time, splits it at UTC midnights, and writes seconds: the
rendered ruleset means the same whatever time zone the router runs in. The site's offset changes
with daylight saving time; `next_offset_change` says until when a rendering holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plantwarden.zones.firewall.errors import CannotRender
from plantwarden.zones.plant.model import SiteModel

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a window inside one UTC day: nft's day number (0 Sunday) and an inclusive range of
    seconds since UTC midnight."""

    window: str
    day: int
    first_second: int
    last_second: int


def site_zone(site: SiteModel) -> ZoneInfo:
    """The site's time zone, or a clear error naming it."""
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CannotRender(f"site {site.id}: unknown time zone {site.timezone!r}") from None


def utc_offset_minutes(site: SiteModel, at: datetime) -> int:
    """The site's offset from UTC, in minutes, at the instant `at`."""
    offset = at.astimezone(site_zone(site)).utcoffset()
    return int(offset.total_seconds()) // 60 if offset is not None else 0


def _utc_spans(spans: tuple[tuple[int, int], ...], offset: int) -> list[tuple[int, int]]:
    """Local minutes-of-week spans shifted to UTC, wrapped at the end of the week."""
    result: list[tuple[int, int]] = []
    for begin, end in spans:
        start = (begin - offset) % MINUTES_PER_WEEK
        stop = start + (end - begin)
        if stop <= MINUTES_PER_WEEK:
            result.append((start, stop))
        else:
            result += [(start, MINUTES_PER_WEEK), (0, stop - MINUTES_PER_WEEK)]
    return result


def _day_pieces(window: str, start: int, stop: int) -> list[Segment]:
    """A UTC minutes-of-week span cut at midnights; minute 0 of the week is Monday 00:00 UTC."""
    pieces: list[Segment] = []
    while start < stop:
        day, minute = divmod(start, MINUTES_PER_DAY)
        piece_end = min(stop, (day + 1) * MINUTES_PER_DAY)
        last = (piece_end - day * MINUTES_PER_DAY) * 60 - 1
        pieces.append(Segment(window, (day + 1) % 7, minute * 60, last))
        start = piece_end
    return pieces


def schedule_segments(site: SiteModel, windows: tuple[str, ...], at: datetime) -> tuple[Segment, ...]:
    """Every UTC-day piece of the named windows, with the site's offset at `at`."""
    offset = utc_offset_minutes(site, at)
    segments: list[Segment] = []
    for name in windows:
        for start, stop in _merged(_utc_spans(site.windows[name].minutes_of_week(), offset)):
            segments += _day_pieces(name, start, stop)
    return tuple(segments)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted, those that touch or overlap joined (a window past Sunday midnight is one)."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def next_offset_change(site: SiteModel, at: datetime) -> datetime | None:
    """The first hour after `at` (within a year) at which the site's UTC offset differs, if any."""
    offset = utc_offset_minutes(site, at)
    hour = at.replace(minute=0, second=0, microsecond=0)
    for step in range(1, 24 * 367):
        moment = hour + timedelta(hours=step)
        if utc_offset_minutes(site, moment) != offset:
            return moment
    return None
