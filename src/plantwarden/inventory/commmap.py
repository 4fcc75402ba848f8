"""The communication map: assets as shapes in their zone's box, lines for who talks to whom, as SVG.

Pure and server-side: `layout(nodes, links)` places everything at deterministic positions and
`render_svg(layout)` writes one self-contained SVG document the console can inline. No database,
no browser, no randomness: the same nodes and links, in any order, give the same bytes.

How the map is arranged, so that 500 assets stay readable:
- each group (the asset's zone, else its segment) is a labelled box; boxes sit in Purdue-like
  bands, top to bottom: network, enterprise and IT, operations (historians, HMIs, engineering
  workstations), control (PLCs), field (IoT devices), unclassified. A box goes to the band of the
  role most of its assets have (network devices and unknown assets do not vote);
- inside a box, assets sit in a grid sorted by role (network devices first, IoT last), then
  address (numerically), then id; labels are cut to `LABEL_CHARS` characters, the full text is in
  the tooltip;
- all links between two assets (both directions, every protocol) are drawn once, as a slightly
  bent line whose width grows with the log of the requests, arrows pointing at the servers;
- past `bundle_above` pairs of assets in different groups, those pairs are drawn as one line per
  pair of groups, labelled with how many pairs it stands for (lines inside a box stay).

Every text that came from the network is escaped, with the characters XML forbids and the
Unicode controls that reorder text replaced. Elements carry ids and data attributes for the page's
CSS and a later highlight: nodes `n<i>` (`data-node` the asset id), groups `g<i>`, lines `e<i>`
(`data-a`, `data-b` the node element ids), bundles `b<i>` (`data-a`, `data-b` the group ids).
"""

from __future__ import annotations

import ipaddress
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory.roles import Role

LABEL_CHARS = 18
GROUP_LABEL_CHARS = 40
DEFAULT_BUNDLE_ABOVE = 600
"""Pairs across groups drawn one by one at most; more are bundled per pair of groups."""

CELL_W, CELL_H = 150, 44
GROUP_PAD, GROUP_HEADER, GROUP_GAP = 10, 26, 30
BAND_HEADER, MARGIN, LEGEND_H = 26, 20, 70
SHAPE_X, SHAPE_Y, SHAPE_R = 14, 16, 10
"""Where a node's shape sits in its cell, and how far a line stops short of its centre."""

ROLE_ORDER = (
    Role.NETWORK_DEVICE,
    Role.IT_HOST,
    Role.HISTORIAN,
    Role.HMI,
    Role.ENGINEERING_WORKSTATION,
    Role.PLC,
    Role.IOT_DEVICE,
    Role.UNKNOWN,
)
ROLE_RANK = {role: rank for rank, role in enumerate(ROLE_ORDER)}
ROLE_LEGEND = {
    Role.NETWORK_DEVICE: ("network device", "#6c757d", "M0-9L9 0 0 9-9 0Z"),
    Role.IT_HOST: ("IT host", "#4e79a7", "M-8-7H8V7H-8Z"),
    Role.HISTORIAN: ("historian", "#b07aa1", "M-8-5 0-9 8-5V5L0 9-8 5Z"),
    Role.HMI: ("HMI", "#59a14f", "M-10-6H10V6H-10Z"),
    Role.ENGINEERING_WORKSTATION: ("engineering workstation", "#f28e2b", "M0-9 9 7H-9Z"),
    Role.PLC: ("PLC", "#e15759", "M-8-8H8V8H-8ZM-4-4V4H4V-4Z"),
    Role.IOT_DEVICE: ("IoT device", "#76b7b2", "M-6 0A6 6 0 1 0 6 0 6 6 0 1 0-6 0Z"),
    Role.UNKNOWN: ("unknown", "#9c9c9c", "M-8 0A8 8 0 1 0 8 0 8 8 0 1 0-8 0Z"),
}
"""Legend text, colour and shape (an SVG path around 0,0) of each role."""

BANDS = (
    "Network",
    "Enterprise and IT",
    "Operations: historians, HMIs, engineering",
    "Control: PLCs",
    "Field: IoT devices",
    "Unclassified",
)
ROLE_BAND = {
    Role.IT_HOST: 1,
    Role.HISTORIAN: 2,
    Role.HMI: 2,
    Role.ENGINEERING_WORKSTATION: 2,
    Role.PLC: 3,
    Role.IOT_DEVICE: 4,
}
PROTOCOL_COLOURS = {
    "modbus": "#1f77b4",
    "s7comm": "#d62728",
    "enip": "#2ca02c",
    "iec104": "#9467bd",
    "dnp3": "#8c564b",
    "opcua": "#e377c2",
    "mqtt": "#17becf",
    "bacnet": "#bcbd22",
    "unknown": "#7f7f7f",
}
OTHER_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")
MULTI_COLOUR = "#444444"
LINK_PAINT = 'fill="none" stroke-opacity="0.55"'
HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'
"""A white outline under a label, so it reads over the lines beneath it."""
BAND_TEXT = 'font-size="13" font-weight="bold" fill="#333"'
GROUP_TEXT = 'font-size="12" font-weight="bold" fill="#333"'
UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Characters XML 1.0 forbids, and the Unicode controls that reorder text (a label could spoof)."""


@dataclass(frozen=True, slots=True)
class MapNode:
    """One asset to draw: `group` its zone (else its segment), `role` a `Role` value."""

    id: str
    label: str
    group: str
    role: str
    address: str

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidInput("a map node needs an id", details={"node": repr(self)})
        if not self.group:
            raise InvalidInput(f"map node {self.id!r} has no group (zone or segment)")
        if self.role not in ROLE_RANK:
            known = ", ".join(role.value for role in ROLE_ORDER)
            raise InvalidInput(f"map node {self.id!r} has unknown role {self.role!r}; known: {known}")


@dataclass(frozen=True, slots=True)
class MapLink:
    """One client talking to one server with one protocol: `requests` seen, `operations` names."""

    client: str
    server: str
    protocol: str
    requests: int
    operations: frozenset[str]

    def __post_init__(self) -> None:
        if self.client == self.server:
            raise InvalidInput(f"map link from node {self.client!r} to itself")
        if not self.protocol:
            raise InvalidInput(f"map link {self.client!r} -> {self.server!r} has no protocol")
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 0:
            raise InvalidInput(
                f"map link {self.client!r} -> {self.server!r} has requests {self.requests!r}; "
                "expected a count (an integer >= 0)"
            )


@dataclass(frozen=True, slots=True)
class PlacedNode:
    """A node at its cell's top-left corner (`x`, `y`); `element` is its SVG id."""

    node: MapNode
    element: str
    group: int
    x: int
    y: int
    short_label: str
    peers: int


@dataclass(frozen=True, slots=True)
class PlacedGroup:
    """A group's box: `band` indexes `BANDS`; `count` assets inside."""

    name: str
    element: str
    band: int
    x: int
    y: int
    width: int
    height: int
    count: int


@dataclass(frozen=True, slots=True)
class PlacedPair:
    """The links between two nodes (indexes into the layout's nodes, `a` < `b`), drawn as one line."""

    a: int
    b: int
    links: tuple[MapLink, ...]
    requests: int
    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bundle:
    """The pairs of nodes between two groups (indexes, `a` < `b`), drawn as one line."""

    a: int
    b: int
    pairs: int
    links: int
    requests: int
    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MapLayout:
    """Everything placed: what `render_svg` draws, in drawing order."""

    width: int
    height: int
    bands: tuple[tuple[str, int], ...]
    groups: tuple[PlacedGroup, ...]
    nodes: tuple[PlacedNode, ...]
    pairs: tuple[PlacedPair, ...]
    bundles: tuple[Bundle, ...]
    protocols: tuple[str, ...]


def layout(
    nodes: Iterable[MapNode], links: Iterable[MapLink], *, bundle_above: int | None = DEFAULT_BUNDLE_ABOVE
) -> MapLayout:
    """Place `nodes` in group boxes and `links` as lines (see the module's docstring).

    Raises `InvalidInput` for two nodes with one id and for a link naming an unknown node.
    `bundle_above=None` never bundles.
    """
    ordered = sorted(_unique(nodes), key=_node_key)
    index = {node.id: i for i, node in enumerate(ordered)}
    pairs = _pairs(links, index)
    names = sorted({node.group for node in ordered}, key=_natural_key)
    members: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(ordered):
        members[node.group].append(i)
    bands = {name: _band([ordered[i] for i in members[name]]) for name in names}
    names.sort(key=lambda name: (bands[name], _natural_key(name)))
    group_of = {name: g for g, name in enumerate(names)}
    sizes = [_grid(len(members[name])) for name in names]
    boxes, band_rows, width, height = _pack(names, bands, sizes)
    peers = Counter(i for pair in pairs for i in (pair.a, pair.b))
    placed_nodes: list[PlacedNode | None] = [None] * len(ordered)
    for g, name in enumerate(names):
        x0, y0 = boxes[g]
        cols = sizes[g][0]
        for k, i in enumerate(members[name]):
            node = ordered[i]
            x = x0 + GROUP_PAD + (k % cols) * CELL_W
            y = y0 + GROUP_HEADER + (k // cols) * CELL_H
            short = _short(node.label or node.address or node.id, LABEL_CHARS)
            placed_nodes[i] = PlacedNode(node, f"n{i}", g, x, y, short, peers[i])
    groups = tuple(
        PlacedGroup(name, f"g{g}", bands[name], *boxes[g], *_box(sizes[g]), len(members[name]))
        for g, name in enumerate(names)
    )
    node_group = [group_of[node.group] for node in ordered]
    drawn, bundles = _bundle(pairs, node_group, bundle_above)
    protocols = sorted({link.protocol for pair in pairs for link in pair.links})
    return MapLayout(
        width=width,
        height=height,
        bands=band_rows,
        groups=groups,
        nodes=tuple(node for node in placed_nodes if node is not None),
        pairs=drawn,
        bundles=bundles,
        protocols=tuple(protocols),
    )


def _unique(nodes: Iterable[MapNode]) -> list[MapNode]:
    seen: dict[str, MapNode] = {}
    for node in nodes:
        if node.id in seen:
            raise InvalidInput(f"two map nodes have the id {node.id!r}", details={"id": node.id})
        seen[node.id] = node
    return list(seen.values())


def _pairs(links: Iterable[MapLink], index: dict[str, int]) -> list[PlacedPair]:
    grouped: dict[tuple[int, int], list[MapLink]] = defaultdict(list)
    for link in links:
        for end in (link.client, link.server):
            if end not in index:
                raise InvalidInput(
                    f"map link {link.client!r} -> {link.server!r} ({link.protocol}) names "
                    f"node {end!r}, which is not on the map",
                    details={"node": end},
                )
        a, b = sorted((index[link.client], index[link.server]))
        grouped[a, b].append(link)
    pairs = []
    for (a, b), found in sorted(grouped.items()):
        if len(found) > 1:  # most pairs hold one link: no key to build
            found.sort(
                key=lambda link: (index[link.client], link.protocol, -link.requests, sorted(link.operations))
            )
        protocols = tuple(sorted({link.protocol for link in found}))
        pairs.append(PlacedPair(a, b, tuple(found), sum(link.requests for link in found), protocols))
    return pairs


def _bundle(
    pairs: list[PlacedPair], node_group: list[int], bundle_above: int | None
) -> tuple[tuple[PlacedPair, ...], tuple[Bundle, ...]]:
    across = [pair for pair in pairs if node_group[pair.a] != node_group[pair.b]]
    if bundle_above is None or len(across) <= bundle_above:
        return tuple(pairs), ()
    by_groups: dict[tuple[int, int], list[PlacedPair]] = defaultdict(list)
    for pair in across:
        ga, gb = sorted((node_group[pair.a], node_group[pair.b]))
        by_groups[ga, gb].append(pair)
    bundles = tuple(
        Bundle(
            a=ga,
            b=gb,
            pairs=len(found),
            links=sum(len(pair.links) for pair in found),
            requests=sum(pair.requests for pair in found),
            protocols=tuple(sorted({p for pair in found for p in pair.protocols})),
        )
        for (ga, gb), found in sorted(by_groups.items())
    )
    inside = tuple(pair for pair in pairs if node_group[pair.a] == node_group[pair.b])
    return inside, bundles


def _band(members: Sequence[MapNode]) -> int:
    votes = Counter(ROLE_BAND[Role(node.role)] for node in members if Role(node.role) in ROLE_BAND)
    if votes:
        return min(votes, key=lambda band: (-votes[band], band))
    if any(node.role == Role.NETWORK_DEVICE for node in members):
        return 0
    return len(BANDS) - 1


def _grid(count: int) -> tuple[int, int]:
    cols = max(1, min(count, math.ceil(math.sqrt(count * 1.2))))
    return cols, math.ceil(count / cols)


def _box(size: tuple[int, int]) -> tuple[int, int]:
    cols, rows = size
    return 2 * GROUP_PAD + cols * CELL_W, GROUP_HEADER + GROUP_PAD + rows * CELL_H


def _pack(
    names: list[str], bands: dict[str, int], sizes: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], tuple[tuple[str, int], ...], int, int]:
    """Shelf-pack the boxes band by band, wrapping rows at a width near the square of their area."""
    boxes = [_box(size) for size in sizes]
    area = sum((w + GROUP_GAP) * (h + GROUP_GAP) for w, h in boxes)
    limit = max([int(math.sqrt(area) * 1.4), *(w for w, _ in boxes)])
    placed: list[tuple[int, int]] = []
    band_rows: list[tuple[str, int]] = []
    y, width, current = MARGIN + LEGEND_H, 0, -1
    x = row_height = 0
    for g, name in enumerate(names):
        w, h = boxes[g]
        if bands[name] != current or x + w > MARGIN + limit:
            y += row_height + (GROUP_GAP if row_height else 0)
            x, row_height = MARGIN, 0
            if bands[name] != current:
                current = bands[name]
                band_rows.append((BANDS[current], y))
                y += BAND_HEADER
        placed.append((x, y))
        x += w + GROUP_GAP
        row_height = max(row_height, h)
        width = max(width, x - GROUP_GAP + MARGIN)
    height = y + row_height + MARGIN
    return placed, tuple(band_rows), max(width, 900), height


def render_svg(map_layout: MapLayout) -> str:
    """The layout as one self-contained SVG document (no external references, no script)."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="commmap" width="{map_layout.width}" '
        f'height="{map_layout.height}" viewBox="0 0 {map_layout.width} {map_layout.height}" '
        'font-family="sans-serif" font-size="11" role="img" aria-label="Communication map">',
        _defs(map_layout),
    ]
    out.extend(_legend(map_layout))
    for title, y in map_layout.bands:
        out.append(f'<text class="band" x="{MARGIN}" y="{y + 17}" {BAND_TEXT}>{_text(title)}</text>')
    out.extend(_group_svg(group) for group in map_layout.groups)
    out.append('<g class="links">')
    out.extend(_pairs_svg(map_layout))
    out.append("</g>")
    if map_layout.bundles:
        out.append('<g class="bundles">')
        out.extend(_bundle_svg(k, bundle, map_layout.groups) for k, bundle in enumerate(map_layout.bundles))
        out.append("</g>")
    out.append('<g class="nodes">')
    out.extend(_node_svg(node, map_layout.groups) for node in map_layout.nodes)
    out.append("</g></svg>")
    return "\n".join(out)


def _defs(map_layout: MapLayout) -> str:
    """The role shapes and the arrow head. Colours and text styles are presentation attributes
    on the elements themselves, not a <style> sheet: the console inlines the map under a
    Content-Security-Policy that blocks inline styles (`style-src 'self'`)."""
    shapes = "".join(
        f'<path id="shape-{role.value}" d="{ROLE_LEGEND[role][2]}" stroke="#222" stroke-width="1" '
        'fill-rule="evenodd"/>'
        for role in ROLE_ORDER
    )
    arrow = (
        '<marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6" markerHeight="6" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0 0L8 4 0 8Z" fill="#333"/>'
        "</marker>"
    )
    return f"<defs>{shapes}{arrow}</defs>"


def _link_colour(protocols: Sequence[str]) -> str:
    """A line's colour: its protocol's, or the several-protocols grey."""
    return _protocol_colour(protocols[0]) if len(protocols) == 1 else MULTI_COLOUR


def _legend(map_layout: MapLayout) -> list[str]:
    out = ['<g class="legend">']
    x = MARGIN
    for role in ROLE_ORDER:
        label, _, _ = ROLE_LEGEND[role]
        out.append(
            f'<use href="#shape-{role.value}" class="r-{role.value}" fill="{ROLE_LEGEND[role][1]}" '
            f'x="{x + 10}" y="{MARGIN + 10}"/>'
            f'<text x="{x + 24}" y="{MARGIN + 14}">{label}</text>'
        )
        x += 34 + 7 * len(label)
    x, y = MARGIN, MARGIN + 36
    kinds = [
        (f"p-{_css_name(protocol)}", _short(protocol, LABEL_CHARS), _protocol_colour(protocol))
        for protocol in map_layout.protocols
    ]
    if any(len(pair.protocols) > 1 for pair in map_layout.pairs):
        kinds.append(("multi", "several protocols", MULTI_COLOUR))
    for kind, name, colour in kinds:
        out.append(
            f'<path class="link {kind}" d="M{x} {y}h24" stroke-width="3" stroke="{colour}" {LINK_PAINT}/>'
            f'<text x="{x + 30}" y="{y + 4}">{_text(name)}</text>'
        )
        x += 44 + 7 * len(name)
    bundled = sum(bundle.pairs for bundle in map_layout.bundles)
    drawn = len(map_layout.pairs)
    note = f"{len(map_layout.nodes)} assets, {drawn + bundled} communicating pairs"
    if map_layout.bundles:
        note += (
            f"; {bundled} pairs across groups drawn as {len(map_layout.bundles)} dashed bundles "
            "(one per pair of groups)"
        )
    out.append(f'<text x="{MARGIN}" y="{MARGIN + 60}">{note}</text></g>')
    return out


def _group_svg(group: PlacedGroup) -> str:
    title = f"{group.name}: {_count(group.count, 'asset')}, band {BANDS[group.band]}"
    return (
        f'<g id="{group.element}" class="group band-{group.band}" data-group="{_text(group.name)}">'
        f"<title>{_text(title)}</title>"
        f'<rect x="{group.x}" y="{group.y}" width="{group.width}" height="{group.height}" rx="6" '
        'fill="#f5f7f9" stroke="#b8c0c8"/>'
        f'<text x="{group.x + GROUP_PAD}" y="{group.y + 18}" {GROUP_TEXT}>'
        f"{_text(_short(group.name, GROUP_LABEL_CHARS))} ({group.count})</text></g>"
    )


def _node_svg(placed: PlacedNode, groups: tuple[PlacedGroup, ...]) -> str:
    node = placed.node
    role = Role(node.role)
    title = "\n".join(
        (
            node.label or node.id,
            ROLE_LEGEND[role][0],
            node.address or "no address",
            f"group {groups[placed.group].name}",
            _count(placed.peers, "peer"),
        )
    )
    return (
        f'<g id="{placed.element}" class="node r-{role.value}" data-node="{_text(node.id)}" tabindex="0" '
        f'role="button" aria-label="{_text(title.replace(chr(10), ", "))}" '
        f'data-group="{groups[placed.group].element}" transform="translate({placed.x} {placed.y})">'
        f"<title>{_text(title)}</title>"
        f'<use href="#shape-{role.value}" x="{SHAPE_X}" y="{SHAPE_Y}" fill="{ROLE_LEGEND[role][1]}"/>'
        f'<text x="{SHAPE_X + 14}" y="{SHAPE_Y + 2}" fill="#222" {HALO}>{_text(placed.short_label)}</text>'
        f'<text class="addr" x="{SHAPE_X + 14}" y="{SHAPE_Y + 14}" font-size="9" fill="#555" {HALO}>'
        f"{_text(_short(node.address, LABEL_CHARS + 8))}</text></g>"
    )


def _pairs_svg(map_layout: MapLayout) -> list[str]:
    """One path per pair, from shape to shape (stopping at the shapes' edge), arrows at servers."""
    nodes = map_layout.nodes
    names = [_name(placed) for placed in nodes]
    kinds = {protocol: f"p-{_css_name(protocol)}" for protocol in map_layout.protocols}
    out = []
    for k, pair in enumerate(map_layout.pairs):
        a, b = nodes[pair.a], nodes[pair.b]
        ax, ay = a.x + SHAPE_X, a.y + SHAPE_Y
        bx, by = b.x + SHAPE_X, b.y + SHAPE_Y
        cx, cy = _bend(ax, ay, bx, by, 0.12)
        servers = {link.server for link in pair.links}
        markers = ' marker-end="url(#arrow)"' if b.node.id in servers else ""
        markers += ' marker-start="url(#arrow)"' if a.node.id in servers else ""
        kind = kinds[pair.protocols[0]] if len(pair.protocols) == 1 else "multi"
        name = {a.node.id: names[pair.a], b.node.id: names[pair.b]}
        lines = "\n".join(
            f"{name[link.client]} \u2192 {name[link.server]}: {link.protocol}, "
            f"{_count(link.requests, 'request')}"
            + (f" ({', '.join(sorted(link.operations))})" if link.operations else "")
            for link in pair.links
        )
        out.append(
            f'<path id="e{k}" class="link {kind}" data-a="{a.element}" data-b="{b.element}" '
            f'd="M{_trim(ax, ay, cx, cy)}Q{cx:.0f} {cy:.0f} {_trim(bx, by, cx, cy)}" '
            f'stroke-width="{_width(pair.requests)}" stroke="{_link_colour(pair.protocols)}" {LINK_PAINT}'
            f"{markers}><title>{_text(lines)}</title></path>"
        )
    return out


def _bundle_svg(k: int, bundle: Bundle, groups: tuple[PlacedGroup, ...]) -> str:
    a, b = groups[bundle.a], groups[bundle.b]
    ax, ay = _border(a, b)
    bx, by = _border(b, a)
    cx, cy = _bend(ax, ay, bx, by, 0.15)
    mx, my = (ax + 2 * cx + bx) / 4, (ay + 2 * cy + by) / 4
    title = (
        f"{a.name} \u2194 {b.name}: {bundle.pairs:,} communicating pairs, {bundle.links:,} links, "
        f"{bundle.requests:,} requests; {', '.join(bundle.protocols)}"
    )
    return (
        f'<g id="b{k}" class="bundle" data-a="{a.element}" data-b="{b.element}">'
        f"<title>{_text(title)}</title>"
        f'<path d="M{_point(ax, ay)}Q{_point(cx, cy)} {_point(bx, by)}" '
        f'stroke-width="{round(min(6.0, 1.0 + math.log2(bundle.pairs)), 2)}" stroke="#555" '
        f'stroke-dasharray="6 3" {LINK_PAINT}/>'
        f'<text x="{mx:.0f}" y="{my:.0f}" text-anchor="middle" font-size="10" fill="#333" {HALO}>'
        f"{_count(bundle.pairs, 'pair')}</text></g>"
    )


def _border(group: PlacedGroup, other: PlacedGroup) -> tuple[float, float]:
    """Where the line from `group`'s centre to `other`'s leaves `group`'s box: bundles end on
    the side facing their other group, spread around the box rather than on one point."""
    cx, cy = group.x + group.width / 2, group.y + group.height / 2
    dx = other.x + other.width / 2 - cx
    dy = other.y + other.height / 2 - cy
    scale = min(
        group.width / 2 / abs(dx) if dx else math.inf,
        group.height / 2 / abs(dy) if dy else math.inf,
    )
    if scale == math.inf:
        return cx, cy
    return cx + dx * scale, cy + dy * scale


def _bend(ax: float, ay: float, bx: float, by: float, share: float) -> tuple[float, float]:
    """A control point off the middle of a-b, to its left by `share` of its length: lines along
    one row of a grid do not run through the nodes between their ends."""
    mx, my = (ax + bx) / 2, (ay + by) / 2
    return mx - (by - ay) * share, my + (bx - ax) * share


def _trim(x: float, y: float, cx: float, cy: float) -> str:
    """The end at (x, y) pulled back towards the control point by the shape's radius."""
    dx, dy = cx - x, cy - y
    length = math.hypot(dx, dy) or 1.0
    return _point(x + dx / length * SHAPE_R, y + dy / length * SHAPE_R)


def _point(x: float, y: float) -> str:
    """Whole pixels: finer positions add bytes, not precision anyone sees."""
    return f"{x:.0f} {y:.0f}"


def _width(requests: int) -> float:
    return round(min(6.0, 0.75 + 0.6 * math.log10(1 + requests)), 2)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' if n != 1 else ''}"


def _name(placed: PlacedNode) -> str:
    """A node in a line's tooltip: its full label, and its address when that says more."""
    node = placed.node
    label = node.label or node.id
    return f"{label} ({node.address})" if node.address and node.address != label else label


def _node_key(node: MapNode) -> tuple[tuple[tuple[int, int, str], ...], int, tuple[int, int, bytes], str]:
    return _natural_key(node.group), ROLE_RANK[Role(node.role)], _address_key(node.address), node.id


def _address_key(address: str) -> tuple[int, int, bytes]:
    """IP addresses in numeric order (v4 before v6), then other text (MACs), then none."""
    if not address:
        return 2, 0, b""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return 1, 0, address.encode()
    return 0, ip.version, ip.packed


DIGITS = re.compile(r"([0-9]+)")
"""ASCII digit runs (`\\d` and `str.isdigit()` also take other scripts' digits and '²')."""


def _natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """cell-2 before cell-10: digit runs compare as numbers."""
    return tuple(
        (0, int(part), part) if DIGITS.fullmatch(part) else (1, 0, part)
        for part in DIGITS.split(text)
        if part
    )


def _short(text: str, limit: int) -> str:
    text = UNSAFE_CHARS.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _text(text: str) -> str:
    """Text or an attribute value, safe inside the SVG: escaped, forbidden characters replaced."""
    return escape(UNSAFE_CHARS.sub("\ufffd", text), quote=True)


def _css_name(protocol: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "_", protocol.lower()) or "_"


def _protocol_colour(protocol: str) -> str:
    """A fixed colour per known protocol, another by a hash of the class name (two protocols
    that share a class name share a colour)."""
    name = _css_name(protocol)
    return PROTOCOL_COLOURS.get(name) or OTHER_COLOURS[zlib.crc32(name.encode()) % len(OTHER_COLOURS)]
