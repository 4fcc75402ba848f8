"""Click callbacks for the values that commands of every layer take: times (ISO 8601, kept to the
nanosecond) and durations (15m, 1h, 7d, 1w), with one wording for their errors."""

from __future__ import annotations

import re

import click

from plantwarden.core.clock import SECOND_NS, iso_nanoseconds

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*")


def time_ns(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> int | None:
    """An optional ISO 8601 time (UTC unless it carries an offset, up to nine fractional digits) as
    nanoseconds since the epoch."""
    if value is None:
        return None
    try:
        return iso_nanoseconds(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} {error}") from None


def duration_ns(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> int | None:
    """An optional duration such as 90s, 15m, 1h, 2d or 1w, in nanoseconds."""
    if value is None:
        return None
    found = _DURATION.fullmatch(value)
    if found is None or int(found.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a duration (a number and s, m, h, d or w: 15m, 1h, 7d)")
    return int(found.group(1)) * _UNITS[found.group(2)] * SECOND_NS
