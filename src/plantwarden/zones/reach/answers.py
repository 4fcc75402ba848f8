"""The questions reachability answers: what a zone reaches, and the paths to the crown jewels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantwarden.core.errors import NotFound
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit
from plantwarden.zones.reach.hosts import HostGraph
from plantwarden.zones.reach.search import Search, Target

MAX_PATHS = 3
"""How many shortest paths an answer lists per target by default."""


@dataclass(frozen=True, slots=True)
class Reach:
    """What an attacker holding every host of `from_zone` reaches: other zones, crown jewels
    (including those of its own zone, held from the start) and hosts outside the model."""

    site: str
    from_zone: str
    zones: tuple[Target, ...]
    crown_jewels: tuple[Target, ...]
    outside: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """How an attacker in `from_zone` reaches an asset of another zone (`target.id`)."""

    from_zone: str
    target: Target


def reachable(
    site: SiteModel, permits: Sequence[Permit], from_zone: str, max_paths: int = MAX_PATHS
) -> Reach:
    """What `from_zone` reaches under these permits (declared, observed or the firewall's)."""
    return reach_from(HostGraph.build(site, permits), from_zone, max_paths)


def reach_from(graph: HostGraph, from_zone: str, max_paths: int = MAX_PATHS) -> Reach:
    """`reachable` over a graph already built (to ask for many zones at the cost of one build)."""
    search = Search(graph, from_zone)
    zones = [
        search.target(zone.id, search.members[zone.id], max_paths)
        for zone in graph.site.zones
        if zone.id != from_zone
    ]
    outside = [
        search.target(host.name, [host.index], max_paths)
        for host in graph.hosts
        if host.zone is None and host.asset is None
    ]
    return Reach(
        site=graph.site.id,
        from_zone=from_zone,
        zones=tuple(target for target in zones if target is not None),
        crown_jewels=_asset_targets(search, _crown_jewels(graph), max_paths),
        outside=tuple(target for target in outside if target is not None),
    )


def paths_to_crown_jewels(
    site: SiteModel, permits: Sequence[Permit], to: str | None = None, max_paths: int = MAX_PATHS
) -> tuple[Route, ...]:
    """From every zone, the shortest paths to each crown jewel of another zone it reaches; `to`
    names one asset instead (of any criticality)."""
    graph = HostGraph.build(site, permits)
    assets = _crown_jewels(graph) if to is None else [_asset_host(graph, to)]
    routes: list[Route] = []
    for zone in site.zones:
        search = Search(graph, zone.id)
        foreign = [index for index in assets if graph.hosts[index].zone != zone.id]
        routes.extend(Route(zone.id, t) for t in _asset_targets(search, foreign, max_paths))
    return tuple(routes)


def _crown_jewels(graph: HostGraph) -> list[int]:
    jewels = {asset.id for asset in graph.site.assets if asset.crown_jewel}
    return [host.index for host in graph.hosts if host.asset in jewels]


def _asset_host(graph: HostGraph, asset_id: str) -> int:
    for host in graph.hosts:
        if host.asset == asset_id:
            return host.index
    known = ", ".join(asset.id for asset in graph.site.assets) or "none"
    raise NotFound(f"site {graph.site.id} declares no asset {asset_id!r} (its assets: {known})")


def _asset_targets(search: Search, hosts: list[int], max_paths: int) -> tuple[Target, ...]:
    found = []
    for index in hosts:
        host = search.graph.hosts[index]
        target = search.target(host.asset or host.name, [index], max_paths)
        if target is not None:
            found.append(target)
    return tuple(found)
