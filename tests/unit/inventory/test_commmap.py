"""The communication map: every asset and every communicating pair drawn once, hostile text
escaped, the same bytes for the same input, groups in their bands, clear errors, and the size
and time of a 500-asset, 2,000-link map."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from bench.commmap import synthetic_plant

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory.commmap import (
    BANDS,
    LABEL_CHARS,
    MapLink,
    MapNode,
    layout,
    render_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
MAX_SVG_BYTES = 1_000_000
"""500 assets and 2,000 links measured 690 kB with every pair drawn, 450 kB bundled."""


def node(name: str, group: str = "cell-a", role: str = "plc", address: str = "", label: str = "") -> MapNode:
    return MapNode(name, label or name, group, role, address)


def link(client: str, server: str, protocol: str = "modbus", requests: int = 100, *ops: str) -> MapLink:
    return MapLink(client, server, protocol, requests, frozenset(ops or ("read",)))


def small_plant() -> tuple[list[MapNode], list[MapLink]]:
    nodes = [
        node("hmi", role="hmi", address="10.0.0.9"),
        node("plc-9", address="10.0.0.9"),
        node("plc-10", address="10.0.0.10"),
        node("switch", role="network_device", address="10.0.0.1"),
        node("historian", group="operations", role="historian", address="10.0.1.5"),
        node("office", group="enterprise", role="it_host", address="10.1.0.7"),
    ]
    links = [
        link("hmi", "plc-9"),
        link("hmi", "plc-9", "s7comm", 5, "read", "write"),
        link("hmi", "plc-10", "modbus", 10_000),
        link("plc-10", "hmi", "modbus", 3, "write"),
        link("historian", "plc-9", "opcua", 50),
        link("historian", "plc-10", "opcua", 50),
        link("office", "historian", "unknown", 7),
    ]
    return nodes, links


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, checked for being well-formed)


def drawn_nodes(root: ET.Element) -> dict[str, ET.Element]:
    """Element id -> node element."""
    return {g.attrib["id"]: g for g in root.iter(f"{SVG}g") if "data-node" in g.attrib}


def drawn_pairs(root: ET.Element) -> dict[frozenset[str], ET.Element]:
    nodes = drawn_nodes(root)
    pairs: dict[frozenset[str], ET.Element] = {}
    for path in root.iter(f"{SVG}path"):
        if "data-a" in path.attrib:
            key = frozenset(nodes[path.attrib[end]].attrib["data-node"] for end in ("data-a", "data-b"))
            assert key not in pairs, f"pair {sorted(key)} drawn twice"
            pairs[key] = path
    return pairs


def title(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None and found.text is not None
    return found.text


def test_every_node_is_drawn_once_with_its_role_and_tooltip() -> None:
    nodes, links = small_plant()
    root = parse(render_svg(layout(nodes, links)))
    drawn = drawn_nodes(root)
    assert sorted(g.attrib["data-node"] for g in drawn.values()) == sorted(n.id for n in nodes)
    hmi = next(g for g in drawn.values() if g.attrib["data-node"] == "hmi")
    assert "r-hmi" in hmi.attrib["class"].split()
    assert title(hmi).splitlines() == ["hmi", "HMI", "10.0.0.9", "group cell-a", "2 peers"]


def test_every_communicating_pair_is_drawn_once_with_all_its_links() -> None:
    nodes, links = small_plant()
    root = parse(render_svg(layout(nodes, links, bundle_above=None)))
    pairs = drawn_pairs(root)
    assert set(pairs) == {frozenset((one.client, one.server)) for one in links}
    both_protocols = pairs[frozenset(("hmi", "plc-9"))]
    assert "multi" in both_protocols.attrib["class"].split()
    lines = title(both_protocols).splitlines()
    assert lines == [
        "hmi (10.0.0.9) \u2192 plc-9 (10.0.0.9): modbus, 100 requests (read)",
        "hmi (10.0.0.9) \u2192 plc-9 (10.0.0.9): s7comm, 5 requests (read, write)",
    ]
    assert "p-opcua" in pairs[frozenset(("historian", "plc-9"))].attrib["class"].split()
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert {"modbus", "opcua", "s7comm", "unknown", "several protocols"} <= set(legend)


def test_arrows_point_at_the_servers() -> None:
    nodes, links = small_plant()
    placed = layout(nodes, links)
    root = parse(render_svg(placed))
    pairs = drawn_pairs(root)
    order = [p.node.id for p in placed.nodes]
    one_way = pairs[frozenset(("hmi", "plc-9"))]
    server_end = "marker-end" if order.index("plc-9") > order.index("hmi") else "marker-start"
    assert set(one_way.attrib) & {"marker-end", "marker-start"} == {server_end}
    both_ways = pairs[frozenset(("hmi", "plc-10"))]
    assert {"marker-end", "marker-start"} <= set(both_ways.attrib)


def test_line_width_grows_with_the_requests() -> None:
    nodes, links = small_plant()
    pairs = drawn_pairs(parse(render_svg(layout(nodes, links))))
    busy = float(pairs[frozenset(("hmi", "plc-10"))].attrib["stroke-width"])
    quiet = float(pairs[frozenset(("office", "historian"))].attrib["stroke-width"])
    assert 1 < quiet < busy <= 6


HOSTILE = '<script>alert("x")</script> & \x00\u202e'


def test_hostile_text_is_escaped_everywhere() -> None:
    nodes = [
        MapNode(HOSTILE, HOSTILE, HOSTILE, "plc", HOSTILE),
        MapNode("a&b", "R&D <lab>", "zone's", "hmi", "10.0.0.1"),
    ]
    links = [MapLink("a&b", HOSTILE, HOSTILE, 1, frozenset({HOSTILE}))]
    svg = render_svg(layout(nodes, links))
    root = parse(svg)  # well-formed XML: no raw <, &, NUL or bidi override got through
    assert not any(element.tag.endswith("script") for element in root.iter())
    assert "<script" not in svg
    assert "\x00" not in svg
    assert "\u202e" not in svg
    cleaned = HOSTILE.replace("\x00", "\ufffd").replace("\u202e", "\ufffd")
    drawn = {g.attrib["data-node"]: g for g in drawn_nodes(root).values()}
    assert set(drawn) == {cleaned, "a&b"}
    assert title(drawn[cleaned]).splitlines()[0] == cleaned
    assert title(drawn["a&b"]).splitlines()[0] == "R&D <lab>"
    (pair,) = drawn_pairs(root).values()
    assert cleaned in title(pair)
    groups = {
        g.attrib["data-group"] for g in root.iter(f"{SVG}g") if g.attrib.get("class", "").startswith("group")
    }
    assert groups == {cleaned, "zone's"}


def test_the_map_needs_no_style_sheet_so_it_can_be_inlined_under_the_console_s_csp() -> None:
    """The console's Content-Security-Policy (style-src 'self') blocks <style> elements and
    style attributes in the page: every colour is a presentation attribute instead."""
    nodes, links = small_plant()
    svg = render_svg(layout(nodes, links))
    root = parse(svg)
    assert "<style" not in svg
    assert not [e for e in root.iter() if "style" in e.attrib]
    hmi = next(g for g in drawn_nodes(root).values() if g.attrib["data-node"] == "hmi")
    shape = hmi.find(f"{SVG}use")
    assert shape is not None and shape.attrib["fill"].startswith("#")
    assert all(pair.attrib["stroke"].startswith("#") for pair in drawn_pairs(root).values())


def test_long_labels_are_shortened_with_the_full_text_in_the_tooltip() -> None:
    long_label = "pump-station-north-pressure-controller-7"
    placed = layout([node("p", label=long_label)], [])
    (only,) = placed.nodes
    assert len(only.short_label) == LABEL_CHARS
    assert only.short_label == long_label[: LABEL_CHARS - 1] + "\u2026"
    (g,) = drawn_nodes(parse(render_svg(placed))).values()
    texts = [t.text for t in g.iter(f"{SVG}text")]
    assert texts[0] == only.short_label
    assert title(g).splitlines()[0] == long_label


def test_the_same_input_in_any_order_gives_the_same_bytes() -> None:
    nodes, links = synthetic_plant(100, 400)
    first = render_svg(layout(nodes, links))
    rng = random.Random(3)  # noqa: S311 (a reproducible shuffle, not a secret)
    shuffled_nodes, shuffled_links = nodes[:], links[:]
    rng.shuffle(shuffled_nodes)
    rng.shuffle(shuffled_links)
    assert render_svg(layout(shuffled_nodes, shuffled_links)) == first
    assert render_svg(layout(nodes, links)) == first


def test_nodes_sit_in_their_group_box_sorted_by_role_then_address() -> None:
    nodes, links = small_plant()
    placed = layout(nodes, links)
    for p in placed.nodes:
        box = placed.groups[p.group]
        assert box.name == p.node.group
        assert box.x <= p.x and p.x + 150 <= box.x + box.width
        assert box.y <= p.y and p.y + 44 <= box.y + box.height
    cell = [p.node.id for p in placed.nodes if p.node.group == "cell-a"]
    assert cell == ["switch", "hmi", "plc-9", "plc-10"]  # 10.0.0.9 before 10.0.0.10
    reading = sorted(cell, key=lambda name: next((p.y, p.x) for p in placed.nodes if p.node.id == name))
    assert reading == cell


def test_groups_sort_with_their_ascii_numbers_and_any_other_digits_as_text() -> None:
    names = ["cell-10", "cell-2", "²", "cell-١٢"]  # '²' once raised ValueError from int()
    placed = layout([node(f"plc-{i}", group=name) for i, name in enumerate(names)], [])
    order = [group.name for group in placed.groups]
    assert sorted(order) == sorted(names)
    assert order.index("cell-2") < order.index("cell-10")


def test_groups_do_not_overlap_and_sit_in_purdue_bands() -> None:
    nodes, links = synthetic_plant(500, 2000)
    nodes += [node("sw-1", "backbone", "network_device"), node("mystery", "lab", "unknown")]
    placed = layout(nodes, links)
    boxes = placed.groups
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y or b.y + b.height <= a.y
            )
            assert apart, (a.name, b.name)
    band = {box.name: BANDS[box.band] for box in boxes}
    assert band["backbone"] == "Network"
    assert band["enterprise"] == "Enterprise and IT"
    assert band["operations"].startswith("Operations")
    assert band["cell-01"] == "Control: PLCs"
    assert band["lab"] == "Unclassified"
    tops = {box.name: box.y for box in boxes}
    assert tops["backbone"] < tops["enterprise"] < tops["operations"] < tops["cell-01"] < tops["lab"]
    assert [title for title, _ in placed.bands] == [BANDS[i] for i in (0, 1, 2, 3, 5)]
    cells = [box.name for box in boxes if box.name.startswith("cell-")]
    assert cells == sorted(cells, key=lambda name: int(name[5:]))
    assert all(box.x + box.width <= placed.width and box.y + box.height <= placed.height for box in boxes)


def test_pairs_across_groups_are_bundled_past_the_threshold() -> None:
    nodes, links = small_plant()
    bundled = layout(nodes, links, bundle_above=1)
    inside = {frozenset((bundled.nodes[p.a].node.id, bundled.nodes[p.b].node.id)) for p in bundled.pairs}
    assert inside == {frozenset(("hmi", "plc-9")), frozenset(("hmi", "plc-10"))}
    by_names = {
        frozenset((bundled.groups[b.a].name, bundled.groups[b.b].name)): (b.pairs, b.links, b.requests)
        for b in bundled.bundles
    }
    assert by_names == {
        frozenset(("cell-a", "operations")): (2, 2, 100),
        frozenset(("operations", "enterprise")): (1, 1, 7),
    }
    root = parse(render_svg(bundled))
    labels = [
        t.text or ""
        for g in root.iter(f"{SVG}g")
        if g.attrib.get("class") == "bundle"
        for t in g.iter(f"{SVG}text")
    ]
    assert sorted(labels) == ["1 pair", "2 pairs"]
    legend = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "3 pairs across groups drawn as 2 dashed bundles" in legend
    assert layout(nodes, links, bundle_above=3).bundles == ()
    assert layout(nodes, links, bundle_above=None).bundles == ()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: layout([node("a")], [link("a", "ghost")]), "names node 'ghost', which is not on the map"),
        (lambda: layout([node("a"), node("a")], []), "two map nodes have the id 'a'"),
        (lambda: node("a", role="robot"), "unknown role 'robot'"),
        (lambda: node("", role="plc"), "needs an id"),
        (lambda: node("a", group=""), "has no group"),
        (lambda: link("a", "a"), "to itself"),
        (lambda: link("a", "b", "modbus", -1), "expected a count"),
        (lambda: link("a", "b", ""), "has no protocol"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make()


def test_an_empty_map_is_a_valid_document() -> None:
    root = parse(render_svg(layout([], [])))
    assert root.tag == f"{SVG}svg"
    assert drawn_nodes(root) == {}


def test_500_assets_and_2000_links_stay_small_and_every_pair_is_drawn() -> None:
    nodes, links = synthetic_plant(500, 2000)
    assert len(nodes) == 500 and len(links) == 2000
    for bundle_above in (600, None):
        placed = layout(nodes, links, bundle_above=bundle_above)
        svg = render_svg(placed)
        assert len(svg.encode()) < MAX_SVG_BYTES  # its time is bench/commmap.py's to report
        root = parse(svg)
        assert len(drawn_nodes(root)) == 500
        drawn = sum(bundle.pairs for bundle in placed.bundles) + len(placed.pairs)
        assert drawn == len({frozenset((one.client, one.server)) for one in links})
