"""The model's channels as layer 3/4 permits: which networks may open which service to which.

A `Permit` is the common currency of enforcement and reachability: the firewall compiles the
declared permits into rules, a rendered ruleset is read back into permits, and observed flows are
written as permits too, so the three views can be compared.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from plantwarden.core.errors import InvalidInput
from plantwarden.zones.plant.model import Channel, Conduit, Network, SiteModel, Zone


@dataclass(frozen=True, slots=True)
class Permit:
    """Initiators in `sources` may open `transport` connections to `ports` (empty: any port) of
    responders in `destinations`. `operations` are the operation categories the channel allows
    (enforced by the gateway, not by packet matching); `schedule` names the windows in which the
    permit holds (empty: always); `label` names where it comes from (`conduit/channel`)."""

    sources: tuple[Network, ...]
    destinations: tuple[Network, ...]
    transport: str
    ports: tuple[int, ...]
    operations: frozenset[str]
    label: str
    schedule: tuple[str, ...] = ()


def host_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Network:
    """The one-address network of a host (/32 or /128)."""
    return ipaddress.ip_network(address)


def zone_networks(site: SiteModel, zone_id: str) -> tuple[Network, ...]:
    """Every network of a zone: its subnets, and its declared assets' addresses outside them."""
    zone = site.zone(zone_id)
    networks: list[Network] = list(zone.subnets)
    for asset in site.assets:
        if asset.zone != zone_id:
            continue
        for address in asset.addresses:
            if not any(address in subnet for subnet in zone.subnets):
                networks.append(host_network(address))
    return tuple(networks)


def _asset_networks(site: SiteModel, asset_ids: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(host_network(a) for asset_id in asset_ids for a in site.asset(asset_id).addresses)


def channel_permit(site: SiteModel, conduit: Conduit, channel: Channel) -> Permit:
    """One channel of a conduit as a permit (clients and servers narrow it to those assets)."""
    if channel.clients:
        sources = _asset_networks(site, channel.clients)
    else:
        sources = tuple(n for zone in channel.initiators for n in zone_networks(site, zone))
    if channel.servers:
        destinations = _asset_networks(site, channel.servers)
    else:
        destinations = tuple(n for zone in channel.responders for n in zone_networks(site, zone))
    return Permit(
        sources=sources,
        destinations=destinations,
        transport=channel.transport,
        ports=channel.ports,
        operations=channel.operations,
        label=f"{conduit.id}/{channel.id}",
        schedule=channel.schedule,
    )


def declared_permits(site: SiteModel) -> tuple[Permit, ...]:
    """Every channel of every conduit of the site as a permit, in the model's order."""
    return tuple(
        channel_permit(site, conduit, channel) for conduit in site.conduits for channel in conduit.channels
    )


class SegmentsOverlap(InvalidInput):
    """Zones of different network segments share addresses, which one router's filter (and the
    reachability over it) cannot tell apart."""

    code = "zones_segments_overlap"


@dataclass(frozen=True, slots=True)
class SegmentOverlap:
    """Networks of two zones of different segments that share addresses."""

    first: Zone
    second: Zone
    networks: tuple[tuple[Network, Network], ...]

    def __str__(self) -> str:
        shared = ", ".join(f"{a} and {b}" if a != b else str(a) for a, b in self.networks)
        return (
            f"zone {self.first.id} (segment {self.first.segment}) and zone {self.second.id}"
            f" (segment {self.second.segment}) share addresses: {shared}"
        )


def segment_overlaps(site: SiteModel) -> list[SegmentOverlap]:
    """Pairs of zones of different segments whose networks (`zone_networks`) overlap, in the
    model's order. One sort and one sweep per address family: the cost follows the networks."""
    found: dict[tuple[int, int], list[tuple[Network, Network]]] = {}
    spans = sorted(_network_spans(site))
    open_spans: list[tuple[int, int, int, int, Network]] = []
    for span in spans:
        version, first, _, zone, network = span
        open_spans = [o for o in open_spans if o[0] == version and o[2] >= first]
        for _, _, _, other, other_network in open_spans:
            if site.zones[other].segment != site.zones[zone].segment:
                pair = (min(other, zone), max(other, zone))
                nets = (other_network, network) if other < zone else (network, other_network)
                found.setdefault(pair, []).append(nets)
        open_spans.append(span)
    return [
        SegmentOverlap(site.zones[a], site.zones[b], tuple(nets)) for (a, b), nets in sorted(found.items())
    ]


def _network_spans(site: SiteModel) -> list[tuple[int, int, int, int, Network]]:
    """(IP version, first address, last address, zone index, network) of every zone network."""
    return [
        (network.version, int(network.network_address), int(network.broadcast_address), index, network)
        for index, zone in enumerate(site.zones)
        for network in zone_networks(site, zone.id)
    ]


def require_one_address_space(site: SiteModel, purpose: str) -> None:
    """Refuse a site whose zones of different segments share addresses: a router filters one
    address space, so `purpose` (the firewall, reachability) could not tell those zones apart."""
    overlaps = segment_overlaps(site)
    if not overlaps:
        return
    more = f" (and {len(overlaps) - 1} more pair(s) of zones)" if len(overlaps) > 1 else ""
    raise SegmentsOverlap(
        f"site {site.id}: {overlaps[0]}{more}. {purpose} works on one address space, and these"
        " segments reuse the same addresses (behind NAT): model one address space per site (or per"
        " router) for enforcement and reachability, for example one site per router, or give each"
        " segment's zones the addresses the router sees.",
        details={
            "site": site.id,
            "zones": [overlaps[0].first.id, overlaps[0].second.id],
            "segments": [overlaps[0].first.segment, overlaps[0].second.segment],
            "networks": [[str(a), str(b)] for a, b in overlaps[0].networks],
        },
    )
