"""Reachability in the model, in observed traffic and in the firewall, compared.

Each view is a list of permits over the same site (its zones, assets and criticality). For every
attacking zone, the zones and declared assets it reaches are computed in each view; a target
reached in some views and not in others is a difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit
from plantwarden.zones.reach.hosts import HostGraph
from plantwarden.zones.reach.search import Search

MODEL, OBSERVED, FIREWALL = "the model", "observed traffic", "the firewall"
KINDS: tuple[str, ...] = ("zone", "crown jewel", "asset")
"""The kinds of target compared, in the order differences are listed."""


@dataclass(frozen=True, slots=True)
class Difference:
    """`from_zone` reaches `target` (a zone, a crown jewel or another asset) in the views
    `reachable_in` but not in `unreachable_in`."""

    from_zone: str
    kind: str
    target: str
    reachable_in: tuple[str, ...]
    unreachable_in: tuple[str, ...]

    def __str__(self) -> str:
        lets = "lets" if len(self.reachable_in) == 1 else "let"
        does = "does" if len(self.unreachable_in) == 1 else "do"
        return (
            f"{_joined(self.reachable_in)} {lets} {self.from_zone} reach the {self.kind} {self.target}"
            f" but {_joined(self.unreachable_in)} {does} not"
        )


def compare(
    site: SiteModel, declared: Sequence[Permit], observed: Sequence[Permit], firewall: Sequence[Permit]
) -> tuple[Difference, ...]:
    """The differences between the model's, the observed traffic's and the firewall's reachability."""
    return compare_views(site, {MODEL: declared, OBSERVED: observed, FIREWALL: firewall})


def compare_views(site: SiteModel, views: Mapping[str, Sequence[Permit]]) -> tuple[Difference, ...]:
    """The differences between any named views (each a list of permits over the same site)."""
    graphs = {name: HostGraph.build(site, permits) for name, permits in views.items()}
    differences: list[Difference] = []
    for zone in site.zones:
        reached = {name: reached_targets(graph, zone.id) for name, graph in graphs.items()}
        for kind, target in sorted(set().union(*reached.values()), key=_order):
            inside = tuple(name for name in views if (kind, target) in reached[name])
            if len(inside) < len(views):
                outside = tuple(name for name in views if name not in inside)
                differences.append(Difference(zone.id, kind, target, inside, outside))
    return tuple(differences)


def reached_targets(graph: HostGraph, from_zone: str) -> set[tuple[str, str]]:
    """The (kind, id) of every other zone and every declared asset an attacker in the zone reaches."""
    search = Search(graph, from_zone)
    jewels = {asset.id for asset in graph.site.assets if asset.crown_jewel}
    found: set[tuple[str, str]] = set()
    for host in graph.hosts:
        if not search.reached(host.index):
            continue
        if host.zone is not None and host.zone != from_zone:
            found.add(("zone", host.zone))
        if host.asset is not None:
            found.add(("crown jewel" if host.asset in jewels else "asset", host.asset))
    return found


def _order(target: tuple[str, str]) -> tuple[int, str]:
    return KINDS.index(target[0]), target[1]


def _joined(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
