"""Charts of the console drawn on the server: numbers in, SVG geometry out.

Pure functions, no markup: the templates (`_charts.html`) write the SVG from these shapes with
Jinja's autoescaping, so that a label (a zone name, a device variable) is text and never markup.
Lengths are in the SVG's user units; every chart scales to its container through its viewBox.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LABEL_CHARACTERS = 28
"""Labels drawn longer than this are cut (with an ellipsis); the full text is in the title and
the data table."""


@dataclass(frozen=True)
class Part:
    """One stacked part of a bar: its name (the legend's), value, CSS class and link, if any."""

    name: str
    value: int
    css: str = ""
    href: str = ""


@dataclass(frozen=True)
class Piece:
    """A part placed: a rectangle at (x, y) of `width` by `height`."""

    part: Part
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    """One bar (a row of a horizontal chart or a column of a vertical one), its parts placed."""

    label: str
    shown: str  # the label as drawn: cut to LABEL_CHARACTERS
    total: int
    pieces: tuple[Piece, ...]
    x: float  # where the label or the column sits
    y: float


@dataclass(frozen=True)
class Tick:
    """A value on the value axis, and where it lies."""

    value: int
    at: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    top: int  # the highest value the axis shows (0 when there is nothing to show)
    plot: tuple[float, float, float, float]  # left, top, right, bottom of the plotting area


def shorten(label: str, limit: int = LABEL_CHARACTERS) -> str:
    """The label, cut to `limit` characters with an ellipsis when longer."""
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least `value` (0 for 0): a round axis end."""
    if value <= 0:
        return 0
    power: int = 10 ** (len(str(value)) - 1)  # exact for integers, unlike log10
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _ticks(top: int, start: float, length: float) -> tuple[Tick, ...]:
    """Ticks at a round step (1, 2, 5, 10, ...): the smallest that makes at most five of them."""
    if top == 0:
        return (Tick(0, start),)
    step = next(s * 10**k for k in range(len(str(top))) for s in (1, 2, 5) if top // (s * 10**k) <= 5)
    return tuple(Tick(value, start + length * value / top) for value in range(0, top + 1, step))


def horizontal_bars(
    rows: Sequence[tuple[str, Sequence[Part]]],
    *,
    width: int = 480,
    row_height: int = 22,
    label_width: int = 190,
) -> Chart:
    """One horizontal bar per (label, parts) row, top to bottom, its parts stacked left to right;
    lengths in proportion to the largest total."""
    gap = 4
    plot = (float(label_width), 4.0, float(width - 40), float(4 + len(rows) * row_height))
    top = nice_top(max((sum(p.value for p in parts) for _, parts in rows), default=0))
    span = plot[2] - plot[0]
    bars = []
    for index, (label, parts) in enumerate(rows):
        y = plot[1] + index * row_height
        pieces, x = [], plot[0]
        for part in parts:
            length = span * part.value / top if top else 0.0
            if part.value > 0:
                pieces.append(Piece(part, round(x, 2), y + gap / 2, round(length, 2), row_height - gap))
            x += length
        total = sum(p.value for p in parts)
        bars.append(Bar(label, shorten(label), total, tuple(pieces), round(x, 2), y + row_height / 2))
    return Chart(width, int(plot[3] + 24), tuple(bars), _ticks(top, plot[0], span), top, plot)


def columns(
    rows: Sequence[tuple[str, Sequence[Part]]], *, width: int = 640, height: int = 200, left: int = 40
) -> Chart:
    """One column per (label, parts) row, left to right, its parts stacked from the bottom up;
    heights in proportion to the largest total."""
    plot = (float(left), 8.0, float(width - 8), float(height - 24))
    top = nice_top(max((sum(p.value for p in parts) for _, parts in rows), default=0))
    span = plot[3] - plot[1]
    slot = (plot[2] - plot[0]) / max(len(rows), 1)
    bars = []
    for index, (label, parts) in enumerate(rows):
        x = plot[0] + index * slot
        pieces, y = [], plot[3]
        for part in parts:
            length = span * part.value / top if top else 0.0
            y -= length
            if part.value > 0:
                pieces.append(Piece(part, round(x + 1, 2), round(y, 2), round(slot - 2, 2), round(length, 2)))
        total = sum(p.value for p in parts)
        bars.append(Bar(label, shorten(label), total, tuple(pieces), round(x + slot / 2, 2), round(y, 2)))
    ticks = tuple(Tick(t.value, round(plot[3] - (t.at - plot[1]), 2)) for t in _ticks(top, plot[1], span))
    return Chart(width, height, tuple(bars), ticks, top, plot)


@dataclass(frozen=True)
class Sparkline:
    """A small line chart: the polylines (one per run of present values), the range drawn, and
    the latest value."""

    width: int
    height: int
    lines: tuple[str, ...]  # SVG `points` attributes
    low: float | None
    high: float | None
    last: float | None
    count: int


def sparkline(
    times: Sequence[int], values: Sequence[float], *, width: int = 160, height: int = 36
) -> Sparkline:
    """The values over their times, scaled to fill the box (a flat series lies in the middle); a
    missing value (NaN) breaks the line."""
    present = [v for v in values if not math.isnan(v)]
    if not present or not times:
        return Sparkline(width, height, (), None, None, None, len(values))
    low, high = min(present), max(present)
    first, last_time = times[0], times[-1]
    pad = 2.0

    def x(ts: int) -> float:
        return pad + (width - 2 * pad) * ((ts - first) / (last_time - first) if last_time > first else 0.5)

    def y(value: float) -> float:
        share = (value - low) / (high - low) if high > low else 0.5
        return pad + (height - 2 * pad) * (1 - share)

    lines: list[list[str]] = []
    run: list[str] = []
    for ts, value in zip(times, values, strict=True):
        if math.isnan(value):
            lines.append(run)
            run = []
        else:
            run.append(f"{x(ts):.1f},{y(value):.1f}")
    lines.append(run)
    drawn = tuple(" ".join(r) if len(r) > 1 else f"{r[0]} {r[0]}" for r in lines if r)
    return Sparkline(
        width, height, drawn, low, high, present[-1] if not math.isnan(values[-1]) else None, len(values)
    )
