from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.zones.plant.model import OPERATIONS, Asset, Channel, Conduit, SecurityLevel, SiteModel
from plantwarden.zones.plant.permits import Permit, declared_permits
from plantwarden.zones.reach import (
    Entry,
    Host,
    Reach,
    compare,
    compare_views,
    observed_permits,
    paths_to_crown_jewels,
    reachable,
)
from tests.unit.zones.reach_models import (
    BruteGraph,
    BruteReach,
    HostKey,
    Service,
    asset,
    brute_graph,
    brute_reach,
    large_plant,
    permit,
    random_plants,
    site,
    zone,
)

ENT, OPS, CELL = "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"


def three_zones(*assets: Asset) -> SiteModel:
    return site([zone("ent", ENT), zone("ops", OPS), zone("cell", CELL)], assets)


def summary(reach: Reach) -> dict[str, int]:
    return {t.id: t.hops for t in (*reach.zones, *reach.crown_jewels)}


def test_an_attacker_pivots_through_a_host_that_accepts_a_service() -> None:
    plant = three_zones(
        asset("jump", "ops", "10.0.2.10"), asset("plc", "cell", "10.0.3.5", criticality="critical")
    )
    permits = [
        permit([ENT], ["10.0.2.10/32"], "it-ops/ssh", ports=(22,), operations=["other"]),
        permit(["10.0.2.10/32"], ["10.0.3.5/32"], "ops-cell/modbus", operations=["read", "write"]),
    ]
    reach = reachable(plant, permits, "ent")
    assert summary(reach) == {"ops": 1, "cell": 2, "plc": 2}
    (jewel,) = reach.crown_jewels
    assert jewel.labels == ("ops-cell/modbus",)
    assert jewel.operations == {"read", "write"}
    (path,) = jewel.paths
    assert [(h.source.name, h.target.name) for h in path] == [
        ("other hosts of ent (10.0.1.0/24)", "jump"),
        ("jump", "plc"),
    ]
    assert [[e.label for e in h.entries] for h in path] == [["it-ops/ssh"], ["ops-cell/modbus"]]
    assert path[0].entries[0].service == "tcp/22"


def test_no_pivot_through_a_host_that_only_initiates() -> None:
    plant = three_zones(
        asset("historian", "ops", "10.0.2.20"),
        asset("hmi", "ops", "10.0.2.30"),
        asset("plc", "cell", "10.0.3.5", criticality="critical"),
    )
    permits = [
        permit([ENT], ["10.0.2.20/32"], "it-ops/https", ports=(443,)),
        permit(["10.0.2.30/32"], ["10.0.3.5/32"], "ops-cell/modbus", operations=["write"]),
    ]
    assert summary(reachable(plant, permits, "ent")) == {"ops": 1}
    from_ops = reachable(plant, permits, "ops")
    assert summary(from_ops) == {"cell": 1, "plc": 1}
    assert from_ops.crown_jewels[0].operations == {"write"}


def test_a_permit_open_only_on_a_schedule_counts() -> None:
    channel = Channel(
        "night-backup", "smb", "tcp", (445,), ("ops",), ("cell",), frozenset({"read"}), schedule=("night",)
    )
    conduit = Conduit("ops-cell", "Ops to cell", ("ops", "cell"), (channel,), SecurityLevel.uniform(2))
    plant = three_zones(asset("plc", "cell", "10.0.3.5", criticality="critical"))
    plant = site(plant.zones, plant.assets, [conduit])
    reach = reachable(plant, declared_permits(plant), "ops")
    assert summary(reach) == {"cell": 1, "plc": 1}
    (entry,) = reach.zones[0].entries
    assert (entry.label, entry.service, entry.schedule) == ("ops-cell/night-backup", "tcp/445", ("night",))


def test_the_operations_of_every_way_in_reach_the_last_hop() -> None:
    plant = three_zones(
        asset("hmi", "ops", "10.0.2.30"),
        asset("eng", "ops", "10.0.2.40"),
        asset("plc", "cell", "10.0.3.5", criticality="critical"),
    )
    permits = [
        permit(["10.0.2.30/32"], ["10.0.3.5/32"], "ops-cell/hmi", operations=["read"]),
        permit(["10.0.2.40/32"], ["10.0.3.5/32"], "ops-cell/eng", operations=["write", "program"]),
    ]
    (jewel,) = reachable(plant, permits, "ops").crown_jewels
    assert jewel.operations == {"read", "write", "program"}
    assert jewel.labels == ("ops-cell/eng", "ops-cell/hmi")
    assert [[e.operations for e in p[-1].entries] for p in jewel.paths] == [
        [{"read"}],
        [{"write", "program"}],
    ]
    # Entered from another host of its own zone, the jewel is open to every operation.
    permits.append(permit(["10.0.2.30/32"], ["10.0.3.9/32"], "ops-cell/hmi-2"))
    (jewel,) = reachable(plant, permits, "ops").crown_jewels
    assert jewel.operations == set(OPERATIONS)
    assert "inside cell" in jewel.labels


def test_a_crown_jewel_of_the_attacking_zone_is_held_from_the_start() -> None:
    plant = three_zones(asset("plc", "cell", "10.0.3.5", criticality="critical"))
    (jewel,) = reachable(plant, [], "cell").crown_jewels
    assert (jewel.id, jewel.hops, jewel.paths) == ("plc", 0, ())
    assert paths_to_crown_jewels(plant, []) == ()


def test_a_firewall_rule_for_part_of_a_subnet_splits_its_other_hosts() -> None:
    plant = three_zones()
    permits = [permit(["10.0.1.0/28"], [OPS], "fw/1"), permit([OPS], [CELL], "fw/2")]
    reach = reachable(plant, permits, "ent")
    assert summary(reach) == {"ops": 1, "cell": 2}
    names = [h.source.name for h in reach.zones[1].paths[0]]
    assert names == ["other hosts of ent (10.0.1.0/24: 10.0.1.0/28)", "other hosts of ops (10.0.2.0/24)"]


def test_hosts_outside_the_model_are_reached_and_named() -> None:
    plant = three_zones()
    permits = [permit([CELL], ["0.0.0.0/0"], "fw/any-https", ports=(443,))]
    reach = reachable(plant, permits, "cell")
    assert summary(reach) == {"ent": 1, "ops": 1}
    (outside,) = reach.outside
    assert outside.id.startswith("hosts outside the model (0.0.0.0/5, 8.0.0.0/7 and ")


def test_an_unknown_zone_or_asset_is_refused_clearly() -> None:
    plant = three_zones()
    with pytest.raises(NotFound, match="site plant has no zone 'dmz' \\(its zones: ent, ops, cell\\)"):
        reachable(plant, [], "dmz")
    with pytest.raises(NotFound, match="declares no asset 'plc'"):
        paths_to_crown_jewels(plant, [], to="plc")


def test_paths_to_crown_jewels_from_every_other_zone() -> None:
    plant = three_zones(
        asset("jump", "ops", "10.0.2.10"), asset("plc", "cell", "10.0.3.5", criticality="critical")
    )
    permits = [permit([ENT], ["10.0.2.10/32"], "a/ssh"), permit(["10.0.2.10/32"], [CELL], "b/modbus")]
    routes = paths_to_crown_jewels(plant, permits)
    assert [(r.from_zone, r.target.id, r.target.hops) for r in routes] == [
        ("ent", "plc", 2),
        ("ops", "plc", 1),
    ]
    to_jump = paths_to_crown_jewels(plant, permits, to="jump")
    assert [(r.from_zone, r.target.hops) for r in to_jump] == [("ent", 1)]


def test_observed_edges_become_one_permit_per_client_server_and_port() -> None:
    plant = three_zones(
        asset("hmi", "ops", "10.0.2.30"), asset("plc", "cell", "10.0.3.5", criticality="critical")
    )
    edges = [
        ("10.0.2.30", "10.0.3.5", "tcp", 502, "modbus", {"read"}),
        ("10.0.2.30", "10.0.3.5", "tcp", 502, "modbus", {"write", "malformed"}),
        ("10.0.2.77", "10.0.3.5", "tcp", 102, "s7comm", ()),
    ]
    first, second = observed_permits(plant, edges)
    assert first.label == "observed modbus hmi -> plc tcp/502"
    assert first.operations == {"read", "write"}
    assert second.label == "observed s7comm 10.0.2.77 -> plc tcp/102"
    assert summary(reachable(plant, [first, second], "ops")) == {"cell": 1, "plc": 1}
    with pytest.raises(InvalidInput, match="transport of an observed edge must be tcp or udp, not 'icmp'"):
        observed_permits(plant, [("10.0.2.30", "10.0.3.5", "icmp", 1, "ping", ())])
    with pytest.raises(InvalidInput, match="unknown operations in an observed edge: erase"):
        observed_permits(plant, [("10.0.2.30", "10.0.3.5", "tcp", 502, "modbus", {"erase"})])
    with pytest.raises(InvalidInput, match="client of an observed edge is not an IP address: 'hmi'"):
        observed_permits(plant, [("hmi", "10.0.3.5", "tcp", 502, "modbus", ())])


def test_compare_says_which_view_lets_a_zone_reach_what() -> None:
    plant = three_zones(asset("historian", "ops", "10.0.2.20", criticality="critical"))
    declared = [permit([CELL], ["10.0.2.40/32"], "c/ntp", transport="udp", ports=(123,))]
    firewall = [*declared, permit([CELL], ["10.0.2.20/32"], "fw/7", ports=())]
    differences = compare(plant, declared, declared, firewall)
    assert [str(d) for d in differences] == [
        "the firewall lets cell reach the crown jewel historian but the model and observed traffic do not"
    ]
    assert compare(plant, declared, declared, declared) == ()


def brute_host(host: Host) -> HostKey:
    """The brute force's host for a host of the answer (any one address stands for a group)."""
    if host.asset is not None:
        return ("asset", host.asset)
    return ("address", str(host.networks[0].network_address))


def entry_services(entry: Entry, services: set[Service]) -> set[Service]:
    """The single services an entry's `transport/ports` (or `any`) stands for."""
    if entry.service == "any":
        return services
    transport, ports = entry.service.split("/")
    return {s for s in services if s[0] == transport and (ports == "any" or str(s[1]) in ports.split(","))}


def check_paths(reach: Reach, brute: BruteReach) -> None:
    edges = brute.graph.edges
    for target in (*reach.zones, *reach.crown_jewels, *reach.outside):
        assert 0 < len(target.paths) <= 3 or target.hops == 0
        for path in target.paths:
            assert len(path) == target.hops and path[0].source.zone == reach.from_zone
            for number, hop in enumerate(path, start=1):
                source, end = brute_host(hop.source), brute_host(hop.target)
                assert brute.distance[end] == number
                assert {(e.label, e.operations) for e in hop.entries} == {e[:2] for e in edges[(source, end)]}
                services = {v for e in hop.entries for v in entry_services(e, brute.graph.services)}
                assert services == {e[2] for e in edges[(source, end)]}
            assert all(a.target == b.source for a, b in itertools.pairwise(path))


def check_against_brute_force(
    plant: SiteModel, permits: list[Permit], graph: BruteGraph, from_zone: str
) -> None:
    reach, brute = reachable(plant, permits, from_zone), brute_reach(graph, from_zone)
    assert {t.id: t.hops for t in reach.zones} == brute.zones()
    for target in reach.zones:
        members = {h for h, z in graph.zone_of.items() if z == target.id}
        assert {(e.label, e.operations) for e in target.entries} == brute.entries(members)
    jewels = {h[1]: d for h, d in brute.distance.items() if h[0] == "asset" and h[1] in graph.crown_jewels}
    assert {t.id: t.hops for t in reach.crown_jewels} == jewels
    for target in reach.crown_jewels:
        assert {(e.label, e.operations) for e in target.entries} == brute.entries({("asset", target.id)})
    reached_outside = {str(a) for t in reach.outside for n in t.paths[0][-1].target.networks for a in n}
    assert reached_outside == brute.outside()
    check_paths(reach, brute)


@settings(max_examples=50, deadline=None)
@given(random_plants())
def test_answers_equal_a_brute_force_search_over_every_host_and_service(
    plant_and_permits: tuple[SiteModel, list[list[Permit]]],
) -> None:
    plant, (permits,) = plant_and_permits
    graph = brute_graph(plant, permits)
    for z in plant.zones:
        check_against_brute_force(plant, permits, graph, z.id)


def brute_targets(plant: SiteModel, brute: BruteReach) -> set[tuple[str, str]]:
    """(kind, id) of every other zone and every asset the brute force reaches."""
    kind = {a.id: "crown jewel" if a.crown_jewel else "asset" for a in plant.assets}
    assets = {(kind[h[1]], h[1]) for h in brute.distance if h[0] == "asset"}
    return {("zone", zone_id) for zone_id in brute.zones()} | assets


@settings(max_examples=30, deadline=None)
@given(random_plants(views=3))
def test_compare_lists_exactly_what_brute_force_reaches_in_some_views_only(
    plant_and_views: tuple[SiteModel, list[list[Permit]]],
) -> None:
    plant, views = plant_and_views
    names = ("model", "traffic", "firewall")
    graphs = [brute_graph(plant, permits) for permits in views]
    expected = set()
    for z in plant.zones:
        reached = {n: brute_targets(plant, brute_reach(g, z.id)) for n, g in zip(names, graphs, strict=True)}
        for target in set().union(*reached.values()):
            inside = tuple(n for n in names if target in reached[n])
            if len(inside) < 3:
                expected.add((z.id, *target, inside))
    found = compare_views(plant, dict(zip(names, views, strict=True)))
    assert {(d.from_zone, d.kind, d.target, d.reachable_in) for d in found} == expected


def ring_hops(zones: int, steps: tuple[int, ...]) -> dict[int, int]:
    """The fewest steps forward around a ring of `zones` from zone 0 to each zone."""
    hops, queue = {0: 0}, deque([0])
    while queue:
        here = queue.popleft()
        for step in steps:
            there = (here + step) % zones
            if there not in hops:
                hops[there] = hops[here] + 1
                queue.append(there)
    return hops


def test_a_fifty_zone_two_thousand_host_plant_is_reached_zone_by_zone_around_its_ring() -> None:
    """The large plant of `bench/reach.py` (which times it against the brute force): zone z's first
    asset polls the whole of zones z+1 and z+7, so each zone is as many hops away as steps of 1 and
    7 around the ring take, and its crown jewel too."""
    plant, permits = large_plant()
    reach = reachable(plant, permits, "z0")
    expected = {f"z{z}": hops for z, hops in ring_hops(50, (1, 7)).items() if z}
    assert {t.id: t.hops for t in reach.zones} == expected
    jewels = {t.id: t.hops for t in reach.crown_jewels}
    assert jewels == {f"{zone}-a0": hops for zone, hops in expected.items()} | {"z0-a0": 0}
