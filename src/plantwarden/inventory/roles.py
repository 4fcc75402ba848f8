"""Roles: what kind of device an asset is (PLC, HMI, engineering workstation, ...), with the evidence.

A role is inferred from what the asset says of itself (identity facts) and from how it behaves on
the network (the protocols it serves and uses, its peers, its polling). Every guess carries its
confidence and the evidence it stands on, as short sentences an engineer can check.

`infer_roles(assets, edges, statistics)` is pure and deterministic. The rules, first match wins
(docs/inventory.md, "Roles", says why each one holds in a real plant):

1. network device, strong: a router MAC of the asset book, LLDP capabilities of a bridge or
   router, or a MAC that carries the traffic of two or more other addresses;
2. PLC: answers requests of a field-device protocol (Modbus, S7comm, EtherNet/IP, DNP3,
   IEC 104, BACnet) as the server;
3. engineering workstation: a client that programs a device (PROGRAM requests);
4. HMI or historian: a client that polls industrial servers steadily: an HMI writes or sends
   commands, or polls fast (under 2.5 s); a historian polls slower and only reads;
5. engineering workstation: a client of industrial servers without steady polling (short
   sessions: writes, identification, diagnostics, commands, a few reads);
6. PLC, weaker: serves only OPC UA, or names itself over an industrial identity protocol;
7. IoT device: publishes over MQTT and takes no part in industrial protocols;
8. network device, weak: no IP traffic of its own, but announces itself by LLDP, or its MAC
   carries one other address's traffic;
9. IT host: any other asset with IP traffic (DNS, NTP, web, the MQTT broker, office hosts);
10. unknown: nothing of the above.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from plantwarden.core.records.schema import Protocol
from plantwarden.inventory.assets import Asset, RouterMac
from plantwarden.inventory.edges import Edge, FunctionStatistics


class Role(enum.StrEnum):
    """The kinds of device the inventory tells apart."""

    PLC = "plc"
    HMI = "hmi"
    ENGINEERING_WORKSTATION = "engineering_workstation"
    HISTORIAN = "historian"
    IT_HOST = "it_host"
    IOT_DEVICE = "iot_device"
    NETWORK_DEVICE = "network_device"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RoleGuess:
    """The role inferred for one asset: `confidence` in 0..1, `evidence` the reasons, strongest first."""

    role: Role
    confidence: float
    evidence: tuple[str, ...]


DEVICE_PROTOCOLS = frozenset(
    {Protocol.MODBUS, Protocol.S7COMM, Protocol.ENIP, Protocol.DNP3, Protocol.IEC104, Protocol.BACNET}
)
"""Protocols whose server is a field device: the controller, RTU or building controller answers."""
INDUSTRIAL_PROTOCOLS = DEVICE_PROTOCOLS | {Protocol.OPCUA}
"""Protocols of the control system (OPC UA servers are PLCs, SCADA servers and gateways alike)."""
IDENTITY_SOURCES = frozenset(
    {"modbus_43_14", "s7_szl", "cip_identity", "bacnet_i_am", "bacnet_property", "pn_dcp"}
)
"""Sources of a device naming itself over an industrial protocol (only field devices answer them)."""
IDENTITY_FACTS = ("vendor", "model", "product_name", "device_vendor", "firmware", "station_name")
FAST_POLL_NS = 2_500_000_000
"""Polling faster than this is an operator's screen (HMIs refresh every 0.25-2 s)."""
MAX_POLL_NS = 120_000_000_000
"""Requests repeated slower than this are not steady polling (an engineer's occasional writes)."""
MIN_INTERVALS = 5
"""How many intervals between requests of one item make it steady polling."""
COMMANDS = frozenset({"WRITE", "CONTROL"})
ENGINEERING_OPERATIONS = frozenset({"WRITE", "CONTROL", "DIAGNOSTIC", "IDENTIFY", "PROGRAM"})
NETWORK_CAPABILITIES = ("bridge", "router")
CAPABILITY_FACTS = ("enabled_capabilities", "capabilities", "system_capabilities")
MQTT_PUBLISH = 3
LINK_SOURCES = frozenset({"arp", "dhcp", "lldp", "pn_dcp"})
"""Sources in which a device states its own MAC."""

Place = tuple[str, str, str]
"""(site, segment, address): an IP or MAC where an edge or an asset has it."""


@dataclass
class _Traffic:
    """What one asset does on the network, gathered from the edges and statistics."""

    served: dict[Protocol, set[str]] = field(default_factory=lambda: defaultdict(set))
    answered: dict[Protocol, int] = field(default_factory=lambda: defaultdict(int))
    servers: dict[Protocol, set[str]] = field(default_factory=lambda: defaultdict(set))
    operations: set[str] = field(default_factory=set)
    polled: list[FunctionStatistics] = field(default_factory=list)
    published: list[FunctionStatistics] = field(default_factory=list)
    services_served: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    services_used: set[str] = field(default_factory=set)

    @property
    def any(self) -> bool:
        return bool(self.served or self.servers or self.services_served or self.services_used)


def infer_roles(
    assets: Iterable[Asset],
    edges: Iterable[Edge],
    statistics: Iterable[FunctionStatistics],
    router_macs: Iterable[RouterMac] = (),
) -> dict[uuid.UUID, RoleGuess]:
    """The role of every asset, with its evidence. `router_macs` are the asset book's
    (`AssetBook.router_macs()`): the asset a router MAC is bound to is a router."""
    assets = sorted(assets, key=lambda asset: asset.id)
    owners = {(a.site, ip.segment, ip.address): a.id for a in assets for ip in a.ips}
    traffic: dict[uuid.UUID, _Traffic] = defaultdict(_Traffic)
    for edge in edges:
        _add_edge(traffic, owners, edge)
    for stats in statistics:
        _add_statistics(traffic, owners, stats)
    forwarding = _forwarding(assets)
    routers = {(router.site, router.segment, router.mac) for router in router_macs}
    return {
        asset.id: _guess(asset, traffic.get(asset.id, _Traffic()), forwarding.get(asset.id, ()), routers)
        for asset in assets
    }


def _add_edge(traffic: dict[uuid.UUID, _Traffic], owners: Mapping[Place, uuid.UUID], edge: Edge) -> None:
    client = owners.get((edge.site, edge.segment, edge.client))
    server = owners.get((edge.site, edge.segment, edge.server))
    services = [_service(transport, port) for transport, port in edge.services]
    if edge.protocol is not Protocol.UNKNOWN:
        services = [edge.protocol.name.lower()]
    if client is not None:
        traffic[client].services_used.update(services)
        if edge.protocol in INDUSTRIAL_PROTOCOLS and edge.requests:
            traffic[client].servers[edge.protocol].add(edge.server)
            traffic[client].operations.update(edge.operations)
    if server is not None:
        for service in services:
            traffic[server].services_served[service].add(edge.client)


def _add_statistics(
    traffic: dict[uuid.UUID, _Traffic], owners: Mapping[Place, uuid.UUID], stats: FunctionStatistics
) -> None:
    client = owners.get((stats.site, stats.segment, stats.client))
    server = owners.get((stats.site, stats.segment, stats.server))
    answered = stats.requests - stats.unanswered - stats.aggregated_errors  # read minutes count too
    if server is not None and stats.protocol in INDUSTRIAL_PROTOCOLS and answered > 0:
        traffic[server].served[stats.protocol].add(stats.client)
        traffic[server].answered[stats.protocol] += answered
    if client is None:
        return
    if stats.protocol in INDUSTRIAL_PROTOCOLS and _steady(stats):
        traffic[client].polled.append(stats)
    if stats.protocol is Protocol.MQTT and stats.function == MQTT_PUBLISH:
        traffic[client].published.append(stats)


def _steady(stats: FunctionStatistics) -> bool:
    """Whether a function is polled steadily: enough repeats of an item, at most every two minutes."""
    return stats.period_ns is not None and stats.intervals >= MIN_INTERVALS and stats.period_ns <= MAX_POLL_NS


def _forwarding(assets: list[Asset]) -> dict[uuid.UUID, tuple[str, ...]]:
    """For each asset whose own MAC carries the traffic of other addresses: those addresses.

    A MAC held by several assets is the Ethernet source of several IPs. Its owner is the one
    holder that states it (ARP, DHCP, LLDP, DCP) and has no other MAC in that segment; the
    others' addresses reach the sensor through it: it forwards (a router, a gateway). Once a
    device has stated its MAC with its own IP, the asset book keeps the MAC off the others and
    lists their addresses as the device's `carried_ips` instead."""
    holders: dict[Place, list[Asset]] = defaultdict(list)
    found: dict[uuid.UUID, set[str]] = defaultdict(set)
    for asset in assets:
        found[asset.id].update(ip.address for ip in asset.carried_ips)
        for mac in asset.macs:
            holders[(asset.site, mac.segment, mac.address)].append(asset)
    for (_, segment, _), holding in holders.items():
        if len(holding) < 2:
            continue
        owners = [a for a in holding if a.sources & LINK_SOURCES and _macs_in(a, segment) == 1]
        if len(owners) != 1:
            continue
        owner = owners[0]
        for other in holding:
            if other is not owner:
                found[owner.id].update(ip.address for ip in other.ips if ip.segment == segment)
    return {asset_id: tuple(sorted(addresses)) for asset_id, addresses in found.items() if addresses}


def _macs_in(asset: Asset, segment: str) -> int:
    return sum(1 for mac in asset.macs if mac.segment == segment)


def _guess(asset: Asset, traffic: _Traffic, forwarded: tuple[str, ...], routers: set[Place]) -> RoleGuess:
    for rule in (_strong_network, _plc, _programmer, _poller, _engineer, _weak_plc, _iot):
        guess = rule(asset, traffic, forwarded, routers)
        if guess is not None:
            return guess
    return _rest(asset, traffic, forwarded)


def _strong_network(
    asset: Asset, traffic: _Traffic, forwarded: tuple[str, ...], routers: set[Place]
) -> RoleGuess | None:
    evidence = []
    for mac in sorted(asset.macs):
        if (asset.site, mac.segment, mac.address) in routers:
            evidence.append(f"its MAC {mac.address} forwards the traffic of many addresses (a router MAC)")
    capabilities = _capabilities(asset)
    if capabilities:
        evidence.append(f"LLDP names it a {' and '.join(capabilities)}")
    if len(forwarded) >= 2:
        evidence.append(_forwards(forwarded))
    if not evidence:
        return None
    return RoleGuess(Role.NETWORK_DEVICE, 0.9, (*evidence, *_lldp_evidence(asset)))


def _plc(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    served = sorted(protocol for protocol in traffic.served if protocol in DEVICE_PROTOCOLS)
    if not served:
        return None
    evidence = [_serves(traffic, protocol) for protocol in served]
    if traffic.servers:
        evidence.append(f"also a client of {_count(_all_servers(traffic), 'server')}")
    return RoleGuess(Role.PLC, 0.9, (*evidence, *_identity_evidence(asset)))


def _programmer(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    if "PROGRAM" not in traffic.operations:
        return None
    servers = _all_servers(traffic)
    evidence = (f"sends program or configuration requests to {_count(servers, 'device')}",)
    return RoleGuess(Role.ENGINEERING_WORKSTATION, 0.9, (*evidence, *_client_evidence(traffic)))


def _poller(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    if not traffic.polled:
        return None
    servers = sorted({stats.server for stats in traffic.polled})
    protocols = "/".join(sorted({stats.protocol.name.lower() for stats in traffic.polled}))
    period = _median([stats.period_ns or 0 for stats in traffic.polled])
    polls = f"polls {_count(servers, 'device')} over {protocols} every {_seconds(period)}"
    commands = sorted(traffic.operations & COMMANDS)
    if commands:
        sends = f"sends {' and '.join(name.lower() for name in commands)} requests"
        return RoleGuess(Role.HMI, 0.9, (polls, sends))
    if period < FAST_POLL_NS:
        return RoleGuess(Role.HMI, 0.8, (polls, "reads only, at an operator screen's refresh rate"))
    return RoleGuess(Role.HISTORIAN, 0.8, (polls, "reads only, slower than an operator screen"))


def _engineer(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    if not any(protocol in INDUSTRIAL_PROTOCOLS for protocol in traffic.servers):
        return None
    operations = traffic.operations & ENGINEERING_OPERATIONS
    confidence = 0.8 if operations else 0.5
    evidence = [f"talks to {_count(_all_servers(traffic), 'device')} without steady polling"]
    if operations:
        evidence.append(f"sends {', '.join(sorted(name.lower() for name in operations))} requests")
    return RoleGuess(Role.ENGINEERING_WORKSTATION, confidence, (*evidence, *_client_evidence(traffic)))


def _weak_plc(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    if Protocol.OPCUA in traffic.served:
        evidence = (_serves(traffic, Protocol.OPCUA), *_identity_evidence(asset))
        return RoleGuess(Role.PLC, 0.6, evidence)
    identity = _identity_evidence(asset)
    if asset.sources & IDENTITY_SOURCES and identity:
        return RoleGuess(Role.PLC, 0.6, ("names itself over an industrial protocol", *identity))
    return None


def _iot(asset: Asset, traffic: _Traffic, *_: object) -> RoleGuess | None:
    if not traffic.published:
        return None
    brokers = sorted({stats.server for stats in traffic.published})
    periods = [stats.period_ns for stats in traffic.published if stats.period_ns is not None]
    every = f" every {_seconds(_median(periods))}" if periods else ""
    evidence = (
        f"publishes over mqtt to {_count(brokers, 'broker')}{every}",
        "serves no industrial protocol and polls none",
    )
    return RoleGuess(Role.IOT_DEVICE, 0.7, evidence)


def _rest(asset: Asset, traffic: _Traffic, forwarded: tuple[str, ...]) -> RoleGuess:
    if traffic.any:
        return _it_host(traffic)
    if "lldp" in asset.sources:
        lldp = ("announces itself by LLDP and sends no IP traffic of its own", *_lldp_evidence(asset))
        return RoleGuess(Role.NETWORK_DEVICE, 0.7, lldp)
    if forwarded:
        return RoleGuess(Role.NETWORK_DEVICE, 0.6, (_forwards(forwarded), "no IP traffic of its own"))
    return RoleGuess(Role.UNKNOWN, 0.0, ("no IP traffic of its own, and nothing that names its kind",))


def _it_host(traffic: _Traffic) -> RoleGuess:
    evidence = [
        f"serves {service} to {_count(clients, 'client')}"
        for service, clients in sorted(traffic.services_served.items())
    ]
    if traffic.services_used:
        evidence.append(f"uses {', '.join(sorted(traffic.services_used))}")
    evidence.append("no industrial role")
    return RoleGuess(Role.IT_HOST, 0.6, tuple(evidence))


def _capabilities(asset: Asset) -> list[str]:
    """The network capabilities (bridge, router) an LLDP capabilities fact names, if any."""
    text = " ".join(asset.facts[name].value.lower() for name in CAPABILITY_FACTS if name in asset.facts)
    return [name for name in NETWORK_CAPABILITIES if name in text]


def _lldp_evidence(asset: Asset) -> tuple[str, ...]:
    facts = asset.facts
    named = [
        f"{name} {facts[name].value!r}" for name in ("system_name", "system_description") if name in facts
    ]
    return (f"LLDP: {', '.join(named)}",) if named else ()


def _identity_evidence(asset: Asset) -> tuple[str, ...]:
    facts = asset.facts
    named = [
        f"{name} {facts[name].value!r} ({facts[name].source})" for name in IDENTITY_FACTS if name in facts
    ]
    return (f"reports {', '.join(named)}",) if named else ()


def _client_evidence(traffic: _Traffic) -> tuple[str, ...]:
    protocols = sorted(protocol for protocol in traffic.servers if protocol in INDUSTRIAL_PROTOCOLS)
    return tuple(
        f"{protocol.name.lower()} client of {_count(traffic.servers[protocol], 'server')}"
        for protocol in protocols
    )


def _serves(traffic: _Traffic, protocol: Protocol) -> str:
    clients = traffic.served[protocol]
    answered = traffic.answered[protocol]
    return f"serves {protocol.name.lower()} to {_count(clients, 'client')} ({answered:,} requests answered)"


def _forwards(addresses: tuple[str, ...]) -> str:
    shown = ", ".join(addresses[:5]) + (", ..." if len(addresses) > 5 else "")
    return f"its MAC carries the traffic of {_count(addresses, 'other address', 'other addresses')} ({shown})"


def _all_servers(traffic: _Traffic) -> set[str]:
    return {server for servers in traffic.servers.values() for server in servers}


def _count(items: Iterable[object], singular: str, plural: str = "") -> str:
    number = len(set(items))
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _median(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0


def _seconds(ns: int) -> str:
    seconds = ns / 1e9
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


def _service(transport: int, port: int) -> str:
    name = {6: "tcp", 17: "udp"}.get(transport, f"ip-{transport}")
    return f"{name}/{port}"
