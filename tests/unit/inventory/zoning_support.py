"""Hand-built observed inventories for the tests of `zones suggest`, and the checks every draft
must pass: ids valid and unique, and every observed edge between zones carried by a channel."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from plantwarden.inventory.zoning import ObservedEdge, ObservedHost, Suggestion
from plantwarden.inventory.zoning_draft import ID_PATTERN
from plantwarden.inventory.zoning_inputs import is_unicast
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import declared_permits

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TRANSPORT_NUMBERS = {"tcp": 6, "udp": 17}


def host(
    address: str,
    role: str | None,
    confidence: float = 0.9,
    *,
    segment: str = "default",
    name: str = "",
    evidence: tuple[str, ...] = (),
    more: tuple[str, ...] = (),
) -> ObservedHost:
    """A stored asset at `address` (and `more` addresses) with a role."""
    return ObservedHost(
        segment=segment,
        addresses=(address, *more),
        role=role,
        confidence=confidence if role else 0.0,
        evidence=evidence or ((f"acts as {role}",) if role else ()),
        name=name,
        first_seen=START,
        last_seen=START + timedelta(minutes=3),
    )


def edge(
    client: str,
    server: str,
    protocol: str = "modbus",
    port: int = 502,
    *,
    transport: str = "tcp",
    operations: tuple[str, ...] = ("READ",),
    segment: str = "default",
) -> ObservedEdge:
    """A stored communication; `protocol` "unknown" for flows only (then no operations)."""
    flows_only = protocol == "unknown"
    return ObservedEdge(
        segment=segment,
        client=client,
        server=server,
        protocol=protocol,
        services=((TRANSPORT_NUMBERS[transport], port),),
        operations=() if flows_only else operations,
        requests=0 if flows_only else 120,
        flows=2,
        first_seen=START,
        last_seen=START + timedelta(minutes=2),
    )


def comments(suggestion: Suggestion) -> str:
    """The draft's comments as one text, wrapped lines joined."""
    lines = (line.strip() for line in suggestion.text.splitlines())
    return " ".join(line.lstrip("#").strip() for line in lines if line.startswith("#"))


def zone_of(site: SiteModel, segment: str, address: str) -> str | None:
    """The model's zone of an address seen in `segment`, as the sensor will place it: a declared
    asset's zone (when that zone is of the segment), else the zone of the segment whose subnet
    holds it, else none."""
    parsed = ipaddress.ip_address(address)
    zones = {zone.id: zone for zone in site.zones}
    for asset in site.assets:
        if parsed in asset.addresses and zones[asset.zone].segment == segment:
            return asset.zone
    found = [z.id for z in site.zones if z.segment == segment and any(parsed in n for n in z.subnets)]
    assert len(found) <= 1, (address, found)
    return found[0] if found else None


def uncovered(site: SiteModel, edges: Iterable[ObservedEdge]) -> list[ObservedEdge]:
    """Edges between two zones that no channel permits, in their direction, with their port; an
    end in no zone is a failure. Edges with a multicast or broadcast end are left out on purpose."""
    permits = declared_permits(site)
    missing = []
    for observed in edges:
        client, server = ipaddress.ip_address(observed.client), ipaddress.ip_address(observed.server)
        if not (is_unicast(client) and is_unicast(server)):
            continue
        client_zone = zone_of(site, observed.segment, observed.client)
        server_zone = zone_of(site, observed.segment, observed.server)
        assert client_zone is not None and server_zone is not None, f"an end of {observed} is in no zone"
        if client_zone == server_zone:
            continue
        for number, port in observed.services:
            transport = {6: "tcp", 17: "udp"}[number]
            if not any(
                p.transport == transport
                and (not p.ports or port in p.ports)
                and any(client in n for n in p.sources)
                and any(server in n for n in p.destinations)
                for p in permits
            ):
                missing.append(observed)
    return missing


def check_draft(suggestion: Suggestion, edges: Iterable[ObservedEdge]) -> SiteModel:
    """What every draft must satisfy; the site's model, for more checks."""
    (site,) = suggestion.model.sites
    for kind, ids in (
        ("zone", [z.id for z in site.zones]),
        ("conduit", [c.id for c in site.conduits]),
        ("asset", [a.id for a in site.assets]),
    ):
        assert len(ids) == len(set(ids)), f"{kind} ids repeat: {ids}"
        assert all(ID_PATTERN.match(i) for i in ids), ids
    assert uncovered(site, edges) == []
    return site
