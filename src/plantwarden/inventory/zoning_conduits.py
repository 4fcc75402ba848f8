"""The conduits of a suggested plant.yaml: one per pair of zones that talk, with one channel per
service and direction seen.

A channel's service is the protocol the sensor decoded when it runs over the transport seen,
else the well-known service of the server port (`dns` for udp/53), else the bare transport with
the port (`tcp` on 8000). Its operations are the categories of the requests seen (malformed
requests allow nothing); its clients are named when at most `max_clients` were seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from plantwarden.inventory.zoning_draft import (
    DraftChannel,
    DraftConduit,
    DraftZone,
    IdRegistry,
    plant_id,
    plural,
    span,
)
from plantwarden.inventory.zoning_inputs import ObservedEdge, ZoneMap, is_unicast, parse_address
from plantwarden.zones.plant.model import OPERATIONS, Address
from plantwarden.zones.plant.protocols import BY_RECORD_PROTOCOL, SERVICES

TRANSPORTS = {6: "tcp", 17: "udp"}
"""IP protocol numbers of the transports a channel can name."""
WELL_KNOWN = {
    (service.transport, port): service.name for service in SERVICES.values() for port in service.ports
}
"""The service plant.yaml names for a transport and server port."""
INDUSTRIAL = frozenset(BY_RECORD_PROTOCOL.values())
"""Services whose requests the sensor decodes into operations."""
SHOWN = 3
"""How many addresses a comment lists before it only counts them."""

ChannelKey = tuple[str, str, str, str, int]
"""(initiator zone, responder zone, service, transport, port of a bare transport else 0)."""


@dataclass
class _Seen:
    """What the edges of one channel add up to."""

    ports: set[int] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    odd_operations: set[str] = field(default_factory=set)
    clients: set[tuple[str, Address]] = field(default_factory=set)
    servers: set[Address] = field(default_factory=set)
    requests: int = 0
    flows: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, edge: ObservedEdge, port: int, client: tuple[str, Address], server: Address) -> None:
        self.ports.add(port)
        for name in edge.operations:
            (self.operations if name.lower() in OPERATIONS else self.odd_operations).add(name.lower())
        self.clients.add(client)
        self.servers.add(server)
        self.requests += edge.requests
        self.flows += edge.flows
        if edge.first_seen is not None:
            self.first = edge.first_seen if self.first is None else min(self.first, edge.first_seen)
        if edge.last_seen is not None:
            self.last = edge.last_seen if self.last is None else max(self.last, edge.last_seen)


def service_of(protocol: str, transport: str, port: int) -> str:
    """The plant.yaml service of a communication: the decoded protocol when it runs over that
    transport, else the well-known service of the port, else the bare transport."""
    service = SERVICES.get(protocol)
    if service is not None and service.transport == transport and protocol not in ("tcp", "udp"):
        return service.name
    return WELL_KNOWN.get((transport, port), transport)


LEFT_OUT = {
    "group": ("communication", "with a multicast or broadcast address", "channels name unicast hosts"),
    "transport": (
        "service",
        "between zones over an IP protocol other than TCP and UDP, or without a port",
        "channels name TCP and UDP ports",
    ),
}
"""What no channel carries, by reason: the noun counted, what it is, and why."""


@dataclass
class _Graph:
    """The channels seen so far, the communications inside each zone, and what was left out."""

    channels: dict[ChannelKey, _Seen] = field(default_factory=dict)
    inside: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)

    def add(self, zone_map: ZoneMap, edge: ObservedEdge) -> None:
        client, server = parse_address(edge.client), parse_address(edge.server)
        if not (is_unicast(client) and is_unicast(server)):
            self.left_out["group"] += 1
            return
        client_zone = zone_map.zone_of(edge.segment, client)
        server_zone = zone_map.zone_of(edge.segment, server)
        if client_zone is server_zone:
            self.inside[client_zone.id] += 1
            return
        for number, port in edge.services:
            transport = TRANSPORTS.get(number)
            if transport is None or not 1 <= port <= 65535:
                self.left_out["transport"] += 1
                continue
            service = service_of(edge.protocol, transport, port)
            key = (client_zone.id, server_zone.id, service, transport, port if service == transport else 0)
            self.channels.setdefault(key, _Seen()).add(edge, port, (edge.segment, client), server)


def draft_conduits(zone_map: ZoneMap, edges: Sequence[ObservedEdge]) -> tuple[list[DraftConduit], list[str]]:
    """The conduits between the zones of `zone_map` (whose ids are set), and notes on what no
    channel can carry."""
    graph = _Graph()
    for edge in edges:
        graph.add(zone_map, edge)
    zones = {zone.id: zone for zone in zone_map.zones.values()}
    for zone_id, count in graph.inside.items():
        zones[zone_id].comments.append(
            f"{plural(count, 'communication')} inside the zone (no conduit needed)"
        )
    notes = [
        f"Left out, as {why}: {plural(count, noun)} {what}."
        for reason, count in sorted(graph.left_out.items())
        for noun, what, why in [LEFT_OUT[reason]]
    ]
    return _conduits(zones, graph.channels, zone_map.options.max_clients), notes


def _conduits(
    zones: dict[str, DraftZone], seen: dict[ChannelKey, _Seen], max_clients: int
) -> list[DraftConduit]:
    conduits: dict[tuple[str, str], DraftConduit] = {}
    channel_ids: dict[tuple[str, str], IdRegistry] = {}
    for key in sorted(seen):
        initiator, responder, service, transport, port = key
        pair = _pair(zones[initiator], zones[responder])
        if pair not in conduits:
            conduits[pair] = _conduit(zones[pair[0]], zones[pair[1]])
            channel_ids[pair] = IdRegistry()
        base = plant_id(transport, str(port)) if port else service
        channel_id = channel_ids[pair].claim(base, plant_id(base, "from", initiator))
        conduits[pair].channels.append(_channel(channel_id, key, seen[key], max_clients))
    return [conduits[pair] for pair in sorted(conduits, key=lambda p: conduits[p].id)]


def _pair(first: DraftZone, second: DraftZone) -> tuple[str, str]:
    """The two zones of a conduit, the higher Purdue level first (as a diagram reads top down)."""
    ordered = sorted((first, second), key=lambda zone: (-zone.purdue_level, zone.id))
    return (ordered[0].id, ordered[1].id)


def _conduit(upper: DraftZone, lower: DraftZone) -> DraftConduit:
    level = max(upper.security_level, lower.security_level)
    return DraftConduit(
        id=plant_id(upper.id, "", lower.id),
        name=f"{upper.name} and {lower.name}",
        zones=(upper.id, lower.id),
        security_level=level,
        comments=[f"security level {level}: the higher of its two zones'"],
    )


def _channel(channel_id: str, key: ChannelKey, seen: _Seen, max_clients: int) -> DraftChannel:
    initiator, responder, service, transport, _ = key
    ports = tuple(sorted(seen.ports))
    named = SERVICES[service]
    operations = tuple(op for op in OPERATIONS if op in seen.operations)
    return DraftChannel(
        id=channel_id,
        protocol=service,
        transport=transport,
        ports=() if ports == named.ports else ports,
        initiator=initiator,
        responder=responder,
        operations=operations,
        client_addresses=tuple(sorted(seen.clients, key=_client_order))
        if len(seen.clients) <= max_clients
        else (),
        comments=_channel_comments(service, seen, operations),
    )


def _client_order(client: tuple[str, Address]) -> tuple[str, int, int]:
    return (client[0], client[1].version, int(client[1]))


def _channel_comments(service: str, seen: _Seen, operations: tuple[str, ...]) -> list[str]:
    clients = _listed(sorted({address for _, address in seen.clients}, key=lambda a: (a.version, int(a))))
    servers = _listed(sorted(seen.servers, key=lambda a: (a.version, int(a))))
    counts = [f"{seen.requests:,} requests"] if seen.requests else []
    counts += [f"{seen.flows:,} connections"] if seen.flows else []
    comments = [f"{clients} -> {servers}: {', '.join(counts) or 'seen'}; {span(seen.first, seen.last)}"]
    if "malformed" in seen.odd_operations:
        comments.append("malformed requests were seen too: no channel allows them")
    unknown = sorted(seen.odd_operations - {"malformed"})
    if unknown:
        comments.append(f"operations of unknown category left out: {', '.join(unknown)}")
    if service in INDUSTRIAL and not operations:
        comments.append(
            "no request decoded (connections only): operations stay at the default, read and identify"
        )
    return comments


def _listed(addresses: list[Address]) -> str:
    if len(addresses) <= SHOWN:
        return ", ".join(str(a) for a in addresses)
    return f"{len(addresses)} hosts"
