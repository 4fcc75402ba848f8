"""The model's channels as layer 3/4 permits: which networks may open which service to which.

A `Permit` is the common currency of enforcement and reachability: the firewall compiles the
declared permits into rules, a rendered ruleset is read back into permits, and observed flows are
written as permits too, so the three views can be compared.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from plantwarden.zones.plant.model import Channel, Conduit, Network, SiteModel


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
