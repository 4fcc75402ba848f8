"""Zones of different network segments that reuse the same subnet (cells behind NAT) are refused by
the firewall compiler, drift and reachability, which filter and search one address space; zones of
different segments with their own addresses are fine."""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.zones.firewall.cli import firewall_group
from plantwarden.zones.firewall.drift import drift
from plantwarden.zones.firewall.render import compile_ruleset, render_ruleset
from plantwarden.zones.plant.model import Asset, Channel, Conduit, SecurityLevel, SiteModel, Zone
from plantwarden.zones.plant.permits import (
    SegmentsOverlap,
    declared_permits,
    segment_overlaps,
    zone_networks,
)
from plantwarden.zones.reach import compare, paths_to_crown_jewels, reachable
from plantwarden.zones.reach_cli import reach_group

AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LEVEL = SecurityLevel.uniform(2)


def cell(zone_id: str, segment: str, *subnets: str) -> Zone:
    networks = tuple(ipaddress.ip_network(s) for s in subnets)
    return Zone(zone_id, zone_id, 1, networks, (), LEVEL, segment=segment)


def two_lines(line2_subnet: str = "10.0.1.0/24") -> SiteModel:
    """SCADA on the default segment; line1 and line2 each on their own segment, conduits from
    SCADA to each; a critical PLC in line1 and in line2."""
    zones = (
        cell("scada", "default", "10.0.9.0/24"),
        cell("line1", "line1", "10.0.1.0/24"),
        cell("line2", "line2", line2_subnet),
    )
    conduits = tuple(
        Conduit(
            f"scada-{line}",
            line,
            ("scada", line),
            (Channel("modbus", "modbus", "tcp", (502,), ("scada",), (line,), frozenset({"read"})),),
            LEVEL,
        )
        for line in ("line1", "line2")
    )
    line2_plc = ipaddress.ip_network(line2_subnet).network_address + 5
    assets = (
        Asset("plc1", "PLC 1", (ipaddress.ip_address("10.0.1.5"),), "line1", "critical"),
        Asset("plc2", "PLC 2", (line2_plc,), "line2", "critical"),
    )
    return SiteModel("plant", "Plant", "UTC", zones, conduits, assets)


def assert_names_the_overlap(error: SegmentsOverlap) -> None:
    message = str(error)
    assert "zone line1 (segment line1) and zone line2 (segment line2) share addresses: 10.0.1.0/24" in message
    assert "model one address space per site (or per router) for enforcement and reachability" in message
    assert error.code == "zones_segments_overlap"
    assert error.details["zones"] == ["line1", "line2"]
    assert error.details["segments"] == ["line1", "line2"]


def test_the_firewall_refuses_zones_of_two_segments_on_one_subnet() -> None:
    site = two_lines()
    with pytest.raises(SegmentsOverlap) as raised:
        render_ruleset(site, at=AT)
    assert_names_the_overlap(raised.value)
    assert "The router's ruleset" in str(raised.value)
    for variant, zone in (("island", "line2"), ("fail-closed", None)):
        with pytest.raises(SegmentsOverlap):
            compile_ruleset(site, variant=variant, zone=zone, table="plantwarden", at=AT)  # type: ignore[arg-type]
    with pytest.raises(SegmentsOverlap):
        drift(site, {"nftables": []}, at=AT)


def test_reachability_refuses_zones_of_two_segments_on_one_subnet() -> None:
    site = two_lines()
    permits = declared_permits(site)
    with pytest.raises(SegmentsOverlap) as raised:
        reachable(site, permits, "scada")
    assert_names_the_overlap(raised.value)
    with pytest.raises(SegmentsOverlap):
        paths_to_crown_jewels(site, permits)
    with pytest.raises(SegmentsOverlap):
        compare(site, permits, permits, permits)


def test_zones_of_two_segments_with_their_own_subnets_are_fine() -> None:
    site = two_lines("10.0.2.0/24")
    assert segment_overlaps(site) == []
    script = render_ruleset(site, at=AT)
    assert "10.0.1.0/24" in script and "10.0.2.0/24" in script
    reach = reachable(site, declared_permits(site), "scada")
    assert [t.id for t in reach.zones] == ["line1", "line2"]
    assert [t.id for t in reach.crown_jewels] == ["plc1", "plc2"]


def test_a_declared_address_of_one_segment_inside_another_segments_subnet_overlaps() -> None:
    site = two_lines("10.0.2.0/24")
    outside = Asset("hist", "Historian", (ipaddress.ip_address("10.0.2.77"),), "scada")
    site = replace(site, assets=(*site.assets, outside))
    [overlap] = segment_overlaps(site)
    assert (overlap.first.id, overlap.second.id) == ("scada", "line2")
    assert [(str(a), str(b)) for a, b in overlap.networks] == [("10.0.2.77/32", "10.0.2.0/24")]
    with pytest.raises(SegmentsOverlap, match=r"zone scada \(segment default\) and zone line2"):
        render_ruleset(site, at=AT)


def test_several_overlapping_pairs_are_counted_and_a_partial_overlap_names_both_subnets() -> None:
    site = two_lines("10.0.1.128/25")
    site = replace(site, zones=(*site.zones, cell("line3", "line3", "10.0.0.0/16")))
    pairs = [(o.first.id, o.second.id) for o in segment_overlaps(site)]
    assert pairs == [("scada", "line3"), ("line1", "line2"), ("line1", "line3"), ("line2", "line3")]
    with pytest.raises(SegmentsOverlap) as raised:
        reachable(site, declared_permits(site), "scada")
    assert "(and 3 more pair(s) of zones)" in str(raised.value)
    line1_line2 = segment_overlaps(site)[1]
    assert "share addresses: 10.0.1.0/24 and 10.0.1.128/25" in str(line1_line2)


SUBNETS = [
    f"10.0.{third}.{fourth}/{prefix}" for third in (0, 1) for fourth, prefix in ((0, 24), (0, 25), (128, 26))
]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(SUBNETS), st.sampled_from(("a", "b", "c"))), min_size=2, max_size=6)
)
def test_overlaps_found_by_the_sweep_are_those_of_every_pair(zones: list[tuple[str, str]]) -> None:
    site = SiteModel(
        "p", "P", "UTC", tuple(cell(f"z{i}", seg, net) for i, (net, seg) in enumerate(zones)), ()
    )
    expected = set()
    for a, b in itertools.combinations(site.zones, 2):
        if a.segment != b.segment:
            nets = zone_networks(site, a.id)[0], zone_networks(site, b.id)[0]
            if nets[0].overlaps(nets[1]):
                expected.add((a.id, b.id))
    assert {(o.first.id, o.second.id) for o in segment_overlaps(site)} == expected


PLANT = """\
version: 1
sites:
  - id: plant
    name: Plant
    timezone: UTC
    zones:
      - {id: scada, name: SCADA, purdue_level: 2, subnets: [10.0.9.0/24], security_level: 2}
      - {id: line1, name: Line 1, purdue_level: 1, subnets: [10.0.1.0/24], segment: line1, security_level: 2}
      - {id: line2, name: Line 2, purdue_level: 1, subnets: [10.0.1.0/24], segment: line2, security_level: 2}
    conduits:
      - id: scada-line1
        name: SCADA to line 1
        zones: [scada, line1]
        security_level: 2
        channels:
          - {id: modbus, protocol: modbus, from: scada, to: line1, operations: [read]}
"""


def test_the_commands_refuse_the_site_with_the_reason(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT)
    runs = [
        (firewall_group, ["render", "--plant", str(plant)]),
        (firewall_group, ["drift", "--plant", str(plant), "--file", str(tmp_path / "absent.json")]),
        (reach_group, ["show", "--plant", str(plant), "--from", "scada"]),
        (reach_group, ["paths", "--plant", str(plant)]),
    ]
    for group, args in runs:
        result = CliRunner().invoke(group, args)
        assert isinstance(result.exception, SegmentsOverlap), (args, result.output)
        assert_names_the_overlap(result.exception)
