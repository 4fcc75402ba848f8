"""The zone and conduit map of one site as SVG: zones as boxes in rows by Purdue level, conduits
as links between them.

Pure: `render_zone_map(site, zones, conduits, strays)` lays everything out at deterministic
positions and writes one self-contained SVG document the console can inline.
- zones sit in rows by Purdue level, 5 at the top down to 0 at the bottom (only levels that
  hold a zone get a row), in the model's order within a row; each box shows the zone's name,
  id, level, target security level, subnets, its assets (declared in the model, and seen in
  the inventory) and its open violations;
- a conduit of two zones is a line between their boxes, a conduit of three or more a small hub
  in the gap below the highest of its zones, joined to each; either is labelled with the
  conduit's id and channel count, and links to the conduit's page;
- `strays` are pairs of zones with violations that no conduit joins, drawn dashed;
- zones and conduits with open violations are drawn in the warning colour.
Colours and text styles are presentation attributes (the console's Content-Security-Policy
blocks inline styles); every text is escaped, with the characters XML forbids replaced.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

BOX_W, BOX_H, BOX_GAP = 250, 112, 40
ROW_GAP, MARGIN, HEADER = 110, 20, 30
LINE_H = 15
HUB_R, HUB_SPREAD = 7, 46
NAME_CHARS, SUBNET_CHARS = 34, 38
WARNING, WARNING_FILL = "#c0392b", "#fdecea"
LINK, BOX_FILL, BOX_STROKE = "#4e79a7", "#f5f7f9", "#b8c0c8"
HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'
UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Characters XML 1.0 forbids, and the Unicode controls that reorder text (a name could spoof)."""


@dataclass(frozen=True, slots=True)
class ZoneBox:
    """A zone as the map shows it: `declared` assets of the model, `seen` in the inventory,
    `violations` open."""

    id: str
    name: str
    purdue_level: float
    security_level: str
    subnets: tuple[str, ...]
    declared: int
    seen: int
    violations: int


@dataclass(frozen=True, slots=True)
class ConduitLink:
    """A conduit between the zones drawn (ids of `ZoneBox`es), with its channel count and
    open violations."""

    id: str
    name: str
    zones: tuple[str, ...]
    channels: int
    violations: int


@dataclass(frozen=True, slots=True)
class StrayLink:
    """Open violations between two zones that no conduit joins."""

    a: str
    b: str
    violations: int


@dataclass(frozen=True, slots=True)
class Placed:
    """A box's top left corner."""

    x: float
    y: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + BOX_W / 2, self.y + BOX_H / 2


def render_zone_map(
    site: str, zones: Sequence[ZoneBox], conduits: Sequence[ConduitLink], strays: Sequence[StrayLink] = ()
) -> str:
    """The map as one SVG document; conduits and strays naming a zone not in `zones` lose that end."""
    placed, width, height = layout(zones)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="zonemap" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
        f'aria-label="Zones and conduits of {_text(site)}">'
    ]
    out.extend(_row_labels(zones, placed))
    out.append('<g class="links">')
    out.extend(_stray_svg(k, stray, placed) for k, stray in enumerate(strays) if _drawn(stray, placed))
    hubs = _hub_positions(conduits, placed)
    for k, conduit in enumerate(conduits):
        out.extend(_conduit_svg(k, site, conduit, placed, hubs.get(conduit.id)))
    out.append('</g><g class="zones">')
    out.extend(_zone_svg(k, zone, placed[zone.id]) for k, zone in enumerate(zones))
    out.append("</g></svg>")
    return "\n".join(out)


def layout(zones: Sequence[ZoneBox]) -> tuple[dict[str, Placed], int, int]:
    """Where each box goes, and the drawing's width and height."""
    levels = sorted({zone.purdue_level for zone in zones}, reverse=True)
    rows = {level: [zone for zone in zones if zone.purdue_level == level] for level in levels}
    widest = max((len(row) for row in rows.values()), default=0)
    width = max(600, 2 * MARGIN + HEADER + widest * (BOX_W + BOX_GAP))
    placed: dict[str, Placed] = {}
    for number, level in enumerate(levels):
        row = rows[level]
        left = MARGIN + HEADER + (width - 2 * MARGIN - HEADER - len(row) * (BOX_W + BOX_GAP)) / 2
        for column, zone in enumerate(row):
            placed[zone.id] = Placed(left + column * (BOX_W + BOX_GAP) + BOX_GAP / 2, _row_y(number))
    height = _row_y(len(levels)) - ROW_GAP / 2 + MARGIN if levels else 2 * MARGIN + 40
    return placed, int(width), int(height)


def _row_y(number: int) -> float:
    return MARGIN + number * (BOX_H + ROW_GAP)


def _row_labels(zones: Sequence[ZoneBox], placed: dict[str, Placed]) -> list[str]:
    rows = {zone.purdue_level: placed[zone.id].y for zone in zones}
    return [
        f'<text class="level" x="{MARGIN}" y="{y + BOX_H / 2:.0f}" font-weight="bold" fill="#555">'
        f"L{_level(level)}</text>"
        for level, y in sorted(rows.items(), reverse=True)
    ]


def _zone_svg(k: int, zone: ZoneBox, at: Placed) -> str:
    warn = zone.violations > 0
    stroke, fill = (WARNING, WARNING_FILL) if warn else (BOX_STROKE, BOX_FILL)
    subnets = ", ".join(zone.subnets) or "no subnet"
    level = f"L{_level(zone.purdue_level)}"
    lines = (
        (f"{_short(zone.name, NAME_CHARS)}", 'font-weight="bold" fill="#222"'),
        (f"{_short(zone.id, NAME_CHARS - 12)} \u00b7 {level} \u00b7 {zone.security_level}", 'fill="#333"'),
        (_short(subnets, SUBNET_CHARS), 'fill="#555"'),
        (f"assets: {zone.declared} declared, {zone.seen} seen", 'fill="#333"'),
        (_count(zone.violations, "open violation"), f'fill="{WARNING if warn else "#333"}"'),
    )
    texts = "".join(
        f'<text x="{at.x + 10:.0f}" y="{at.y + 20 + n * LINE_H:.0f}" {paint}>{_text(text)}</text>'
        for n, (text, paint) in enumerate(lines)
    )
    title = (
        f"{zone.name} ({zone.id}), Purdue level {_level(zone.purdue_level)}, {zone.security_level}\n{subnets}"
    )
    return (
        f'<g id="z{k}" class="zone{" warn" if warn else ""}" data-zone="{_text(zone.id)}">'
        f"<title>{_text(title)}</title>"
        f'<rect x="{at.x:.0f}" y="{at.y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{2 if warn else 1}"/>{texts}</g>'
    )


def _hub_positions(
    conduits: Sequence[ConduitLink], placed: dict[str, Placed]
) -> dict[str, tuple[float, float]]:
    """Hubs of conduits joining three or more drawn zones: in the gap below the highest of their
    zones (above it, when that is the only row they touch and another row is above), at the mean
    of their zones' centres, pushed apart when two would overlap."""
    hubs: dict[str, tuple[float, float]] = {}
    for conduit in conduits:
        ends = [placed[zone] for zone in dict.fromkeys(conduit.zones) if zone in placed]
        if len(ends) < 3:
            continue
        top = min(end.y for end in ends)
        below = any(end.y > top for end in ends) or top == MARGIN
        y = top + BOX_H + ROW_GAP / 2 if below else top - ROW_GAP / 2
        x = sum(end.centre[0] for end in ends) / len(ends)
        while any(abs(x - hx) < HUB_SPREAD and hy == y for hx, hy in hubs.values()):
            x += HUB_SPREAD
        hubs[conduit.id] = (x, y)
    return hubs


def _conduit_svg(
    k: int, site: str, conduit: ConduitLink, placed: dict[str, Placed], hub: tuple[float, float] | None
) -> list[str]:
    ends = [placed[zone] for zone in dict.fromkeys(conduit.zones) if zone in placed]
    if len(ends) < 2:
        return []
    warn = conduit.violations > 0
    colour = WARNING if warn else LINK
    if hub is None:
        a, b = ends
        ax, ay = _border(a, b.centre)
        bx, by = _border(b, a.centre)
        paths = [f"M{ax:.0f} {ay:.0f}L{bx:.0f} {by:.0f}"]
        label_at = ((ax + bx) / 2, (ay + by) / 2 - 4)
    else:
        paths = [f"M{hub[0]:.0f} {hub[1]:.0f}L{_point(_border(end, hub))}" for end in ends]
        label_at = (hub[0] + HUB_R + 4, hub[1] - HUB_R - 2)
    title = (
        f"{conduit.name} ({conduit.id}): {', '.join(conduit.zones)}; "
        f"{_count(conduit.channels, 'channel')}, {_count(conduit.violations, 'open violation')}"
    )
    href = f"/conduits/{quote(conduit.id, safe='')}?site={quote(site, safe='')}"
    out = [
        f'<a href="{_text(href)}"><g id="c{k}" class="conduit{" warn" if warn else ""}" '
        f'data-conduit="{_text(conduit.id)}"><title>{_text(title)}</title>'
    ]
    out.extend(
        f'<path d="{d}" stroke="{colour}" stroke-width="{3 if warn else 2}" fill="none"/>' for d in paths
    )
    if hub is not None:
        out.append(f'<circle cx="{hub[0]:.0f}" cy="{hub[1]:.0f}" r="{HUB_R}" fill="{colour}"/>')
    label = f"{_short(conduit.id, NAME_CHARS)} ({_count(conduit.channels, 'channel')})"
    out.append(
        f'<text x="{label_at[0]:.0f}" y="{label_at[1]:.0f}" fill="{colour}" font-size="10" '
        f'text-anchor="{"start" if hub is not None else "middle"}" {HALO}>{_text(label)}</text></g></a>'
    )
    return out


def _drawn(stray: StrayLink, placed: dict[str, Placed]) -> bool:
    return stray.a in placed and stray.b in placed and stray.a != stray.b


def _stray_svg(k: int, stray: StrayLink, placed: dict[str, Placed]) -> str:
    a, b = placed[stray.a], placed[stray.b]
    ax, ay = _border(a, b.centre)
    bx, by = _border(b, a.centre)
    label = f"no conduit: {_count(stray.violations, 'open violation')}"
    return (
        f'<g id="s{k}" class="stray warn" data-a="{_text(stray.a)}" data-b="{_text(stray.b)}">'
        f"<title>{_text(f'{stray.a} - {stray.b}: {label}')}</title>"
        f'<path d="M{ax:.0f} {ay:.0f}L{bx:.0f} {by:.0f}" stroke="{WARNING}" stroke-width="2" '
        'stroke-dasharray="6 4" fill="none"/>'
        f'<text x="{(ax + bx) / 2:.0f}" y="{(ay + by) / 2 + 12:.0f}" fill="{WARNING}" font-size="10" '
        f'text-anchor="middle" {HALO}>{_text(label)}</text></g>'
    )


def _border(box: Placed, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box's centre towards a point leaves the box."""
    cx, cy = box.centre
    dx, dy = towards[0] - cx, towards[1] - cy
    scale = min(BOX_W / 2 / abs(dx) if dx else math.inf, BOX_H / 2 / abs(dy) if dy else math.inf)
    if scale == math.inf or scale > 1:
        return cx, cy
    return cx + dx * scale, cy + dy * scale


def _point(point: tuple[float, float]) -> str:
    return f"{point[0]:.0f} {point[1]:.0f}"


def _level(level: float) -> str:
    """A Purdue level as written: 3.5 stays, 2.0 is 2."""
    return f"{level:g}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' if n != 1 else ''}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _text(text: str) -> str:
    """Text or an attribute value, safe inside the SVG: escaped, forbidden characters replaced."""
    return escape(UNSAFE_CHARS.sub("\ufffd", text), quote=True)
