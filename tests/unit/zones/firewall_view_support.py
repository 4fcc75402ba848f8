"""Test support for the firewall view: a small plant with a gateway-only PLC, random rulesets for
hypothesis, and the verdict of a ruleset on one connection by walking its rules in order.

The walk shares no code with `zones.firewall.permits`: it tests each rule's fields against one
connection, as nftables does, and takes the first verdict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hypothesis import strategies as st

from plantwarden.zones.firewall.rules import Rule, Ruleset
from plantwarden.zones.plant.model import (
    Address,
    Asset,
    Channel,
    Conduit,
    Network,
    SecurityLevel,
    SiteModel,
    Zone,
)
from plantwarden.zones.plant.permits import Permit

GATEWAY = "10.0.9.5"


def _zone(zone_id: str, subnet: str) -> Zone:
    return Zone(zone_id, zone_id, 1, (ipaddress.ip_network(subnet),), (), SecurityLevel.uniform(2))


def _channel(channel_id: str, initiators: tuple[str, ...], servers: tuple[str, ...] = ()) -> Channel:
    return Channel(
        channel_id, "modbus", "tcp", (502,), initiators, ("cell",), frozenset({"read"}), servers=servers
    )


def gateway_plant() -> SiteModel:
    """Zones ops 10.0.2.0/24, cell 10.0.3.0/24 and dmz 10.0.9.0/24 (the gateway 10.0.9.5); ops may
    poll only the PLC (10.0.3.5, critical, gateway-only), the dmz the whole cell."""
    conduit = Conduit(
        "ops-cell",
        "Operations to the cell",
        ("ops", "dmz", "cell"),
        (_channel("polling", ("ops",), ("plc",)), _channel("gateway", ("dmz",))),
        SecurityLevel.uniform(2),
    )
    plc = Asset("plc", "PLC", (ipaddress.ip_address("10.0.3.5"),), "cell", "critical", gateway_only=True)
    return SiteModel(
        "plant",
        "Plant",
        "UTC",
        (_zone("ops", "10.0.2.0/24"), _zone("cell", "10.0.3.0/24"), _zone("dmz", "10.0.9.0/24")),
        (conduit,),
        (plc,),
        gateways=(ipaddress.ip_address(GATEWAY),),
    )


# The verdict of a ruleset, rule by rule.

Connection = tuple[Address, Address, str, int]


def _in(address: Address, networks: tuple[Network, ...] | None, negated: bool) -> bool:
    if networks is None:
        return True
    inside = any(address.version == n.version and address in n for n in networks)
    return inside != negated


def rule_matches(rule: Rule, connection: Connection) -> bool:
    """Whether the rule matches the first packet of the connection."""
    source, destination, transport, port = connection
    if rule.family is not None and (source.version == 4) != (rule.family == "ip"):
        return False
    if not (
        _in(source, rule.sources, rule.sources_negated)
        and _in(destination, rule.destinations, rule.destinations_negated)
    ):
        return False
    if rule.transport is not None and rule.transport != transport:
        return False
    return not rule.ports or port in rule.ports


def accepted(ruleset: Ruleset, connection: Connection) -> bool:
    """The chain's verdict on a new connection: its first matching rule's, else the policy's."""
    for rule in ruleset.rules:
        if rule.verdict is not None and rule_matches(rule, connection):
            return rule.verdict == "accept"
    return ruleset.policy == "accept"


def permitted(permits: Sequence[Permit], connection: Connection) -> bool:
    """Whether some permit grants the connection."""
    source, destination, transport, port = connection
    for permit in permits:
        if permit.transport.startswith("any but "):
            transport_in = transport not in permit.transport.removeprefix("any but ").split("/")
        else:
            transport_in = permit.transport in ("any", transport)
        if (
            transport_in
            and (not permit.ports or port in permit.ports)
            and any(source.version == n.version and source in n for n in permit.sources)
            and any(destination.version == n.version and destination in n for n in permit.destinations)
        ):
            return True
    return False


# Random rulesets over a small space: 10.0.0.0/29 and fd00::/126, ports 1-3, tcp, udp and icmp.

V4 = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/29", "10.0.0.0/30", "10.0.0.4/31", "10.0.0.2/32", "10.0.0.7/32")
]
V6 = [ipaddress.ip_network(n) for n in ("fd00::/126", "fd00::1/128", "fd00::2/127")]
TRANSPORTS = ("tcp", "udp", "icmp")
PORTS = (1, 2, 3)
HOSTS_V4: list[Address] = [ipaddress.ip_address(f"10.0.0.{n}") for n in range(8)]
HOSTS_V6: list[Address] = [ipaddress.ip_address(f"fd00::{n}") for n in range(4)]
CONNECTIONS: list[Connection] = [
    (source, destination, transport, port)
    for hosts in (HOSTS_V4, HOSTS_V6)
    for source in hosts
    for destination in hosts
    for transport in TRANSPORTS
    for port in (PORTS if transport != "icmp" else (0,))
]


@st.composite
def sides(draw: st.DrawFn, family: str | None) -> tuple[tuple[Network, ...] | None, bool]:
    """Any address, or networks of the family, possibly negated."""
    if family is None:
        return None, False
    networks = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(V4 if family == "ip" else V6), min_size=1, max_size=2))
    )
    return (None, False) if networks is None else (tuple(networks), draw(st.booleans()))


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """One accept or drop rule: family, (negated) sources and destinations, transport, ports."""
    family = draw(st.sampled_from([None, "ip", "ip", "ip6"]))
    sources, sources_negated = draw(sides(family))
    destinations, destinations_negated = draw(sides(family))
    transport = draw(st.sampled_from([None, "tcp", "udp", "icmp"]))
    ports: tuple[int, ...] = ()
    if transport in ("tcp", "udp"):
        ports = tuple(sorted(draw(st.sets(st.sampled_from(PORTS), max_size=2))))
    verdict = draw(st.sampled_from(["accept", "drop"]))
    return Rule(
        f"rule {verdict}",
        verdict,
        family,
        sources,
        sources_negated,
        destinations,
        destinations_negated,
        transport,
        ports,
    )


@st.composite
def rulesets(draw: st.DrawFn) -> Ruleset:
    """Up to six rules and a policy."""
    return Ruleset("t", draw(st.sampled_from(["drop", "accept"])), tuple(draw(st.lists(rules(), max_size=6))))
