"""The zone and conduit map: rows by Purdue level, conduits as lines or hubs, warnings, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.zones.zonemap import WARNING, ConduitLink, StrayLink, ZoneBox, render_zone_map

NS = "{http://www.w3.org/2000/svg}"


def _zone(zone_id: str, level: float, violations: int = 0, name: str = "") -> ZoneBox:
    return ZoneBox(zone_id, name or zone_id.title(), level, "SL 2", ("10.0.0.0/24",), 2, 1, violations)


ZONES = (
    _zone("cell-a", 1),
    _zone("enterprise", 4),
    _zone("cell-b", 1, violations=2),
    _zone("field", 0),
    _zone("dmz", 3.5),
    _zone("supervisory", 2),
)
CONDUITS = (
    ConduitLink("cells", "Supervisory to the cells", ("supervisory", "cell-a", "cell-b"), 4, 1),
    ConduitLink("dmz-it", "DMZ to IT", ("dmz", "enterprise"), 1, 0),
)


def _parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, checked for being well-formed)


def _by(root: ET.Element, attribute: str) -> dict[str, ET.Element]:
    return {g.attrib[attribute]: g for g in root.iter(f"{NS}g") if attribute in g.attrib}


def _top(group: ET.Element) -> float:
    rect = group.find(f"{NS}rect")
    assert rect is not None
    return float(rect.attrib["y"])


def _left(group: ET.Element) -> float:
    rect = group.find(f"{NS}rect")
    assert rect is not None
    return float(rect.attrib["x"])


def test_zones_sit_in_rows_by_purdue_level_from_the_top_down() -> None:
    zones = _by(_parsed(render_zone_map("plant", ZONES, CONDUITS)), "data-zone")
    tops = {zone_id: _top(group) for zone_id, group in zones.items()}
    assert tops["enterprise"] < tops["dmz"] < tops["supervisory"] < tops["cell-a"] < tops["field"]
    assert tops["cell-a"] == tops["cell-b"] and _left(zones["cell-a"]) < _left(zones["cell-b"])
    text = " ".join(zones["dmz"].itertext())
    assert "dmz \u00b7 L3.5 \u00b7 SL 2" in text and "10.0.0.0/24" in text
    assert "assets: 2 declared, 1 seen" in text and "0 open violations" in text


def test_a_conduit_of_two_zones_is_a_line_and_one_of_three_a_hub_with_a_spoke_each() -> None:
    root = _parsed(render_zone_map("plant", ZONES, CONDUITS))
    conduits = _by(root, "data-conduit")
    assert len(conduits["dmz-it"].findall(f"{NS}path")) == 1
    assert conduits["dmz-it"].find(f"{NS}circle") is None
    assert (
        len(conduits["cells"].findall(f"{NS}path")) == 3 and conduits["cells"].find(f"{NS}circle") is not None
    )
    assert "dmz-it (1 channel)" in "".join(conduits["dmz-it"].itertext())
    assert "cells (4 channels)" in "".join(conduits["cells"].itertext())
    links = [a.attrib["href"] for a in root.iter(f"{NS}a")]
    assert links == ["/conduits/cells?site=plant", "/conduits/dmz-it?site=plant"]


def test_violations_are_drawn_in_the_warning_colour() -> None:
    root = _parsed(render_zone_map("plant", ZONES, CONDUITS, [StrayLink("enterprise", "field", 3)]))
    zones, conduits = _by(root, "data-zone"), _by(root, "data-conduit")
    assert zones["cell-b"].attrib["class"] == "zone warn" and zones["cell-a"].attrib["class"] == "zone"
    assert (
        _rect(zones["cell-b"]).attrib["stroke"] == WARNING
        and _rect(zones["cell-a"]).attrib["stroke"] != WARNING
    )
    assert {p.attrib["stroke"] for p in conduits["cells"].findall(f"{NS}path")} == {WARNING}
    assert WARNING not in {p.attrib["stroke"] for p in conduits["dmz-it"].findall(f"{NS}path")}
    stray = next(g for g in root.iter(f"{NS}g") if g.attrib.get("class") == "stray warn")
    path = stray.find(f"{NS}path")
    assert path is not None and path.attrib["stroke-dasharray"] and path.attrib["stroke"] == WARNING
    assert "no conduit: 3 open violations" in "".join(stray.itertext())


def _rect(group: ET.Element) -> ET.Element:
    rect = group.find(f"{NS}rect")
    assert rect is not None
    return rect


def test_conduits_lose_the_zones_not_drawn_and_vanish_below_two() -> None:
    shown = [z for z in ZONES if z.id in {"supervisory", "cell-a", "enterprise"}]
    conduits = [replace(CONDUITS[0], zones=("supervisory", "cell-a", "cell-b")), CONDUITS[1]]
    root = _parsed(render_zone_map("plant", shown, conduits, [StrayLink("cell-a", "field", 1)]))
    drawn = _by(root, "data-conduit")
    assert set(drawn) == {"cells"} and len(drawn["cells"].findall(f"{NS}path")) == 1
    assert not [g for g in root.iter(f"{NS}g") if g.attrib.get("class") == "stray warn"]


def test_the_same_input_gives_the_same_bytes_and_no_zones_a_valid_document() -> None:
    assert render_zone_map("plant", ZONES, CONDUITS) == render_zone_map("plant", ZONES, CONDUITS)
    empty = _parsed(render_zone_map("plant", [], []))
    assert empty.tag == f"{NS}svg" and list(empty.iter(f"{NS}rect")) == []


def test_hostile_names_are_escaped_and_forbidden_characters_replaced() -> None:
    hostile = '<script>alert(1)</script>"\x00\u202e'
    zones = [_zone("cell-a", 1, name=hostile), _zone("cell-b", 1)]
    conduits = [ConduitLink('x"><img src=x>', hostile, ("cell-a", "cell-b"), 1, 0)]
    svg = render_zone_map('site"&', zones, conduits)
    assert "<script>" not in svg and "<img" not in svg and "\x00" not in svg and "\u202e" not in svg
    root = _parsed(svg)
    assert "<script>alert(1)</script>" in "".join(root.itertext())
    href = next(root.iter(f"{NS}a")).attrib["href"]
    assert href == "/conduits/x%22%3E%3Cimg%20src%3Dx%3E?site=site%22%26"
    assert 'aria-label="Zones and conduits of site&quot;&amp;"' in svg


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(st.text(max_size=60), min_size=1, max_size=6),
    levels=st.lists(st.sampled_from((0, 1, 2, 3, 3.5, 4, 5)), min_size=6, max_size=6),
)
def test_any_names_give_a_document_that_parses(names: list[str], levels: list[float]) -> None:
    zones = [_zone(f"z{n}", levels[n], violations=n % 2, name=name) for n, name in enumerate(names)]
    ids = tuple(zone.id for zone in zones)
    conduits = [ConduitLink(names[0], names[-1], ids, len(names), 1), ConduitLink("pair", "", ids[:2], 1, 0)]
    root = _parsed(render_zone_map(names[0], zones, conduits, [StrayLink(ids[0], ids[-1], 1)]))
    assert len(_by(root, "data-zone")) == len(zones)
