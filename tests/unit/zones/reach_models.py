"""Test support for reachability: small plant models built from the dataclasses, random plants for
hypothesis, and a brute-force search over every single host address and every service.

The brute force shares no code with `plantwarden.zones.reach`: it enumerates addresses one by one,
makes each declared asset one host and every other address a host of its own, and follows the
semantics written in the `zones.reach` docstring literally.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st

from plantwarden.zones.plant.model import OPERATIONS, Asset, Conduit, SecurityLevel, SiteModel, Zone
from plantwarden.zones.plant.permits import Permit

ALL_OPERATIONS = frozenset(OPERATIONS)
OUTSIDE_NETWORKS = ("192.168.9.0/30", "192.168.9.4/31", "192.168.9.9/32")


def zone(zone_id: str, *subnets: str) -> Zone:
    """A zone with these subnets (level 1, SL 2)."""
    networks = tuple(ipaddress.ip_network(subnet) for subnet in subnets)
    return Zone(zone_id, zone_id, 1, networks, (), SecurityLevel.uniform(2))


def asset(asset_id: str, zone_id: str, *addresses: str, criticality: str = "medium") -> Asset:
    """An asset of a zone with these addresses."""
    ips = tuple(ipaddress.ip_address(address) for address in addresses)
    return Asset(asset_id, asset_id, ips, zone_id, criticality)  # type: ignore[arg-type]


def site(zones: Sequence[Zone], assets: Sequence[Asset] = (), conduits: Sequence[Conduit] = ()) -> SiteModel:
    """A site holding these zones (each listing its assets), assets and conduits."""
    listed = tuple(replace(z, assets=tuple(a.id for a in assets if a.zone == z.id)) for z in zones)
    return SiteModel("plant", "Plant", "UTC", listed, tuple(conduits), tuple(assets))


def permit(
    sources: Sequence[str],
    destinations: Sequence[str],
    label: str,
    *,
    transport: str = "tcp",
    ports: tuple[int, ...] = (502,),
    operations: Sequence[str] = ("read",),
    schedule: tuple[str, ...] = (),
) -> Permit:
    """A permit between networks written as strings."""
    return Permit(
        sources=tuple(ipaddress.ip_network(s) for s in sources),
        destinations=tuple(ipaddress.ip_network(d) for d in destinations),
        transport=transport,
        ports=ports,
        operations=frozenset(operations),
        label=label,
        schedule=schedule,
    )


@st.composite
def random_plants(draw: st.DrawFn, views: int = 1) -> tuple[SiteModel, list[list[Permit]]]:
    """A site of 2-5 zones with IPv4 /29 and /30 and IPv6 /125 subnets, a few assets (some critical,
    some with an address outside their zone's subnets) and `views` lists of 1-12 random permits."""
    zones: list[Zone] = []
    for number in range(draw(st.integers(2, 5))):
        prefixes = draw(st.lists(st.sampled_from((29, 30, 125)), min_size=1, max_size=2))
        subnets = (
            f"fd00:{number}:{s}::/{p}" if p > 32 else f"10.{number}.{s}.0/{p}" for s, p in enumerate(prefixes)
        )
        zones.append(zone(f"z{number}", *subnets))
    assets: list[Asset] = []
    used: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for z in zones:
        pool = [a for subnet in z.subnets for a in subnet] + [ipaddress.ip_address(f"172.16.{len(assets)}.1")]
        for _ in range(draw(st.integers(0, 3))):
            addresses = [
                a for a in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2)) if a not in used
            ]
            if addresses:
                used.update(addresses)
                criticality = draw(st.sampled_from(("low", "critical")))
                assets.append(asset(f"a{len(assets)}", z.id, *map(str, addresses), criticality=criticality))
    plant = site(zones, assets)
    return plant, [draw(st.lists(_random_permit(plant), min_size=1, max_size=12)) for _ in range(views)]


def _random_permit(plant: SiteModel) -> st.SearchStrategy[Permit]:
    networks: list[str] = list(OUTSIDE_NETWORKS)
    for z in plant.zones:
        for subnet in z.subnets:
            networks.append(str(subnet))
            networks.extend(str(part) for part in subnet.subnets(new_prefix=subnet.prefixlen + 1))
    networks.extend(str(ipaddress.ip_network(address)) for a in plant.assets for address in a.addresses)
    sides = st.lists(st.sampled_from(networks), min_size=1, max_size=2)
    return st.builds(
        lambda sources, destinations, label, transport, ports, operations, schedule: permit(
            sources,
            destinations,
            label,
            transport=transport,
            ports=ports,
            operations=operations,
            schedule=schedule,
        ),
        sides,
        sides,
        st.sampled_from(("c1/modbus", "c2/https", "c3/ssh", "c4/any")),
        st.sampled_from(("tcp", "udp")),
        st.sampled_from(((), (502,), (80, 443))),
        st.lists(st.sampled_from(OPERATIONS), max_size=3),
        st.sampled_from(((), ("night",))),
    )


HostKey = tuple[str, str]
"""A brute-force host: ("asset", id) or ("address", one address)."""
Service = tuple[str, int]
"""A transport and one port."""
Edge = tuple[str, frozenset[str], Service]
"""What one host may do to another: (label, operations, one service)."""
UNNAMED_PORT = 9
"""A port no random permit names, standing for every port a permit without ports opens."""


@dataclass
class BruteGraph:
    """Every host (each asset, each other address alone) and, for every service, who may open it on
    whom: the expanded host and service graph."""

    zone_of: dict[HostKey, str | None]
    edges: dict[tuple[HostKey, HostKey], set[Edge]]
    services: set[Service]
    crown_jewels: set[str]


@dataclass
class BruteReach:
    """The brute force's answers for one attacking zone."""

    graph: BruteGraph
    from_zone: str
    distance: dict[HostKey, int] = field(default_factory=dict)

    def zones(self) -> dict[str, int]:
        """The fewest hops to each other zone reached."""
        found: dict[str, int] = {}
        for host, hops in self.distance.items():
            zone_id = self.graph.zone_of[host]
            if zone_id is not None and zone_id != self.from_zone:
                found[zone_id] = min(hops, found.get(zone_id, hops))
        return found

    def entries(self, targets: set[HostKey]) -> set[tuple[str, frozenset[str]]]:
        """(label, operations) of every edge into `targets` from a reached host outside them."""
        return {
            (label, operations)
            for (source, target), edges in self.graph.edges.items()
            if target in targets and source not in targets and source in self.distance
            for label, operations, _ in edges
        }

    def outside(self) -> set[str]:
        """Every address outside the zones (and no asset's) that the attacker reaches."""
        return {h[1] for h in self.distance if h[0] == "address" and self.graph.zone_of[h] is None}


def brute_graph(plant: SiteModel, permits: Sequence[Permit]) -> BruteGraph:
    """For every pair of hosts and every service, the permits (or the shared zone) that allow it. A
    host accepts a service when some permit allows it to one of the host's addresses."""
    owner, zone_of = _brute_hosts(plant, permits)
    ports = {UNNAMED_PORT} | {port for p in permits for port in p.ports}
    services = {(transport, port) for transport in ("tcp", "udp") for port in ports}
    edges: dict[tuple[HostKey, HostKey], set[Edge]] = {}
    responders: set[HostKey] = set()
    for p in permits:
        sources = {owner[a] for a in owner if any(ipaddress.ip_address(a) in n for n in p.sources)}
        targets = {owner[a] for a in owner if any(ipaddress.ip_address(a) in n for n in p.destinations)}
        for service in services:
            if service[0] == p.transport and (not p.ports or service[1] in p.ports):
                responders |= targets
                for pair in itertools.product(sources, targets):
                    if pair[0] != pair[1]:
                        edges.setdefault(pair, set()).add((p.label, p.operations, service))
    for s, t in itertools.permutations(set(owner.values()) | set(zone_of), 2):
        if t in responders and zone_of[s] is not None and zone_of[s] == zone_of[t]:
            edges.setdefault((s, t), set()).update(
                (f"inside {zone_of[s]}", ALL_OPERATIONS, v) for v in services
            )
    jewels = {a.id for a in plant.assets if a.criticality == "critical"}
    return BruteGraph(zone_of, edges, services, jewels)


def brute_reach(graph: BruteGraph, from_zone: str) -> BruteReach:
    """Breadth-first search over the expanded graph, for an attacker holding every host of the zone."""
    following: dict[HostKey, list[HostKey]] = {}
    for source, target in graph.edges:
        following.setdefault(source, []).append(target)
    reach = BruteReach(graph, from_zone)
    reach.distance = {host: 0 for host, zone_id in graph.zone_of.items() if zone_id == from_zone}
    queue = deque(reach.distance)
    while queue:
        host = queue.popleft()
        for target in following.get(host, []):
            if target not in reach.distance:
                reach.distance[target] = reach.distance[host] + 1
                queue.append(target)
    return reach


def _brute_hosts(
    plant: SiteModel, permits: Sequence[Permit]
) -> tuple[dict[str, HostKey], dict[HostKey, str | None]]:
    """Every address the plant or a permit names, with the host it belongs to and that host's zone."""
    owner: dict[str, HostKey] = {}
    zone_of: dict[HostKey, str | None] = {}
    for a in plant.assets:
        zone_of[("asset", a.id)] = a.zone
        for address in a.addresses:
            owner[str(address)] = ("asset", a.id)
    networks = [n for z in plant.zones for n in z.subnets]
    networks += [n for p in permits for n in (*p.sources, *p.destinations)]
    for network in networks:
        for address in network:
            key = owner.setdefault(str(address), ("address", str(address)))
            if key[0] == "address":
                zone_of[key] = next((z.id for z in plant.zones for n in z.subnets if address in n), None)
    return owner, zone_of


def large_plant(zones: int = 50, assets_per_zone: int = 40) -> tuple[SiteModel, list[Permit]]:
    """A ring of zones (one /24 each, `assets_per_zone` assets, the first critical): each zone's
    first asset may poll the whole of the next zone and of the seventh after it over Modbus, and the
    zone's every host may open HTTPS on one asset of each of those two."""
    zone_list = [zone(f"z{z}", f"10.{z}.0.0/24") for z in range(zones)]
    assets = [
        asset(f"z{z}-a{a}", f"z{z}", f"10.{z}.0.{a + 10}", criticality="critical" if a == 0 else "medium")
        for z in range(zones)
        for a in range(assets_per_zone)
    ]
    permits = []
    for z in range(zones):
        for step in (1, 7):
            other = (z + step) % zones
            permits.append(permit([f"10.{z}.0.10/32"], [f"10.{other}.0.0/24"], f"c{z}-{other}/modbus"))
            permits.append(
                permit([f"10.{z}.0.0/24"], [f"10.{other}.0.{11 + step}/32"], f"c{z}-{other}/https")
            )
    return site(zone_list, assets), permits
