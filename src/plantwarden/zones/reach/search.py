"""The attacker's search over the host graph: breadth first, each permit and each zone opened once.

`Search` holds, for one attacking zone, how many hops each host lies from it; targets (a zone, an
asset, a host outside the model) are then described from those distances: the ways in, the
operations at the last hop and the shortest paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plantwarden.core.errors import NotFound
from plantwarden.zones.plant.model import OPERATIONS
from plantwarden.zones.plant.permits import Permit
from plantwarden.zones.reach.hosts import Host, HostGraph

UNREACHED = -1


def inside_label(zone_id: str) -> str:
    """The label of a hop inside one zone, where every service is open."""
    return f"inside {zone_id}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One way into a host: the permit (`label`, usually `conduit/channel`) or the zone itself
    (`inside ZONE`, any service, every operation) that lets a reached host open `service` on it."""

    label: str
    service: str
    operations: frozenset[str]
    schedule: tuple[str, ...] = ()

    @classmethod
    def of_permit(cls, permit: Permit) -> Entry:
        """The entry a permit gives: its label, transport/ports, operations and schedule."""
        ports = ",".join(str(port) for port in permit.ports) or "any"
        return cls(permit.label, f"{permit.transport}/{ports}", permit.operations, permit.schedule)

    @classmethod
    def inside(cls, zone_id: str) -> Entry:
        """The entry between two hosts of one zone: any service, every operation."""
        return cls(inside_label(zone_id), "any", frozenset(OPERATIONS))


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a path: from `source` the attacker opens a service on `target`, by any of
    `entries`."""

    source: Host
    target: Host
    entries: tuple[Entry, ...]


Path = tuple[Hop, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """Something the attacker reaches (a zone, an asset, hosts outside the model): in how many hops
    at the fewest, every way in from a reached host outside it, and up to a few shortest paths.
    A target in the attacker's own zone is held from the start: 0 hops, no path."""

    id: str
    hops: int
    entries: tuple[Entry, ...]
    paths: tuple[Path, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """The conduits/channels (permit labels) through which it is entered."""
        return tuple(sorted({entry.label for entry in self.entries}))

    @property
    def operations(self) -> frozenset[str]:
        """The operations available on it at the last hop (over every way in)."""
        return frozenset(op for entry in self.entries for op in entry.operations)


class Search:
    """How far each host lies from an attacker holding every host of `from_zone`."""

    def __init__(self, graph: HostGraph, from_zone: str) -> None:
        if from_zone not in {zone.id for zone in graph.site.zones}:
            known = ", ".join(zone.id for zone in graph.site.zones)
            raise NotFound(f"site {graph.site.id} has no zone {from_zone!r} (its zones: {known})")
        self.graph = graph
        self.from_zone = from_zone
        self.members: dict[str, list[int]] = {zone.id: [] for zone in graph.site.zones}
        for host in graph.hosts:
            if host.zone is not None:
                self.members.setdefault(host.zone, []).append(host.index)
        self.distance = self._breadth_first()
        self._predecessors: dict[int, dict[int, list[Entry]]] = {}

    def _breadth_first(self) -> list[int]:
        graph = self.graph
        distance = [UNREACHED] * len(graph.hosts)
        frontier = list(self.members[self.from_zone])
        for host in frontier:
            distance[host] = 0
        opened_permits: set[int] = set()
        opened_zones = {self.from_zone}
        hops = 0
        while frontier:
            hops += 1
            following: list[int] = []
            for host in frontier:
                fresh = [p for p in graph.permits_from[host] if p not in opened_permits]
                opened_permits.update(fresh)
                targets = [t for p in fresh for t in graph.destinations[p]]
                zone = graph.hosts[host].zone
                if zone is not None and zone not in opened_zones:
                    opened_zones.add(zone)
                    targets.extend(t for t in self.members[zone] if graph.responds(t))
                for target in targets:
                    if distance[target] == UNREACHED:
                        distance[target] = hops
                        following.append(target)
            frontier = following
        return distance

    def reached(self, host: int) -> bool:
        """Whether the attacker reaches (and so holds) the host."""
        return self.distance[host] != UNREACHED

    def target(self, target_id: str, members: list[int], max_paths: int) -> Target | None:
        """The target made of these hosts, or None if the attacker reaches none of them."""
        reached = [self.distance[m] for m in members if self.reached(m)]
        if not reached:
            return None
        hops = min(reached)
        ends = [m for m in members if self.distance[m] == hops]
        paths = self.paths(ends, max_paths) if hops else ()
        return Target(target_id, hops, self.entries(members), paths)

    def entries(self, members: list[int]) -> tuple[Entry, ...]:
        """Every way into these hosts from a reached host outside them."""
        inside = set(members)
        graph = self.graph
        found: dict[Entry, None] = {}
        for permit in sorted({p for m in members for p in graph.permits_into[m]}):
            if any(self.reached(s) and s not in inside for s in graph.sources[permit]):
                found[Entry.of_permit(graph.permits[permit])] = None
        zones = {zone for m in members if graph.responds(m) and (zone := graph.hosts[m].zone) is not None}
        for zone in sorted(zones):
            if any(self.reached(h) and h not in inside for h in self.members[zone]):
                found[Entry.inside(zone)] = None
        return tuple(found)

    def paths(self, ends: Iterable[int], limit: int) -> tuple[Path, ...]:
        """Up to `limit` shortest paths from the attacker's zone to any of `ends`."""
        found: list[Path] = []
        stack: list[tuple[int, Path]] = [(end, ()) for end in reversed(list(ends))]
        while stack and len(found) < limit:
            host, suffix = stack.pop()
            if self.distance[host] == 0:
                found.append(suffix)
                continue
            for source, entries in reversed(self.predecessors(host).items()):
                hop = Hop(self.graph.hosts[source], self.graph.hosts[host], tuple(entries))
                stack.append((source, (hop, *suffix)))
        return tuple(found)

    def predecessors(self, host: int) -> dict[int, list[Entry]]:
        """The hosts one hop nearer the attacker from which `host` is entered, with the entries."""
        if host not in self._predecessors:
            self._predecessors[host] = self._find_predecessors(host)
        return self._predecessors[host]

    def _find_predecessors(self, host: int) -> dict[int, list[Entry]]:
        graph, nearer = self.graph, self.distance[host] - 1
        found: dict[int, list[Entry]] = {}
        for permit in graph.permits_into[host]:
            for source in graph.sources[permit]:
                if source != host and self.distance[source] == nearer:
                    found.setdefault(source, []).append(Entry.of_permit(graph.permits[permit]))
        zone = graph.hosts[host].zone
        if zone is not None and graph.responds(host):
            for source in self.members[zone]:
                if source != host and self.distance[source] == nearer:
                    found.setdefault(source, []).append(Entry.inside(zone))
        return dict(sorted(found.items()))
