"""The address sets of a ruleset and the model's facts the compiler needs: zone networks per
address family, the gateways, the ports only the gateway may reach, a permit less a zone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from plantwarden.zones.firewall.rules import collapsed, family_of
from plantwarden.zones.plant.model import Asset, Channel, Network, SiteModel
from plantwarden.zones.plant.permits import Permit, host_network, zone_networks

FAMILIES: tuple[str, ...] = ("ip", "ip6")
MODBUS_PORT = 502


def in_family(networks: Iterable[Network], family: str) -> list[Network]:
    """The networks of one address family (`ip` or `ip6`)."""
    return [network for network in networks if family_of(network) == family]


def set_name(base: str, family: str) -> str:
    """`zone_cell1` for IPv4, `zone_cell1_v6` for IPv6 (nft sets hold one family)."""
    return base if family == "ip" else f"{base}_v6"


def zone_family_networks(site: SiteModel, zone_id: str, family: str) -> tuple[Network, ...]:
    """A zone's networks of one family, collapsed (what its named set holds)."""
    return collapsed(in_family(zone_networks(site, zone_id), family))


def gateway_networks(site: SiteModel, family: str) -> tuple[Network, ...]:
    """The site's gateways of one family, as host networks."""
    return collapsed(in_family((host_network(a) for a in site.gateways), family))


def address_sets(site: SiteModel) -> Mapping[str, tuple[str, tuple[Network, ...]]]:
    """Named sets: one per zone and family it has networks in, and the gateways (always both
    families, even empty, since the gateway-only and fail-closed rules name them)."""
    sets: dict[str, tuple[str, tuple[Network, ...]]] = {}
    for family in FAMILIES:
        sets[set_name("gateways", family)] = (family, gateway_networks(site, family))
    for zone in site.zones:
        for family in FAMILIES:
            networks = zone_family_networks(site, zone.id, family)
            if networks:
                sets[set_name(f"zone_{zone.id}", family)] = (family, networks)
    return MappingProxyType(sets)


def _serves(site: SiteModel, channel: Channel, asset: Asset) -> bool:
    if channel.servers:
        return asset.id in channel.servers
    return asset.zone in channel.responders


def protected_ports(site: SiteModel, asset: Asset) -> dict[str, tuple[int, ...]]:
    """The ports of a gateway-only asset that only the gateway may reach, by transport: Modbus
    (TCP 502) and the ports of every channel whose servers or responders include it."""
    ports: dict[str, set[int]] = {"tcp": {MODBUS_PORT}}
    for conduit in site.conduits:
        for channel in conduit.channels:
            if _serves(site, channel, asset) and channel.ports:
                ports.setdefault(channel.transport, set()).update(channel.ports)
    return {transport: tuple(sorted(numbers)) for transport, numbers in sorted(ports.items())}


def responder_ports(site: SiteModel, zone_id: str) -> dict[str, tuple[int, ...]]:
    """The ports the model's channels open into a zone, by transport (empty tuple: any port)."""
    ports: dict[str, set[int] | None] = {}
    for conduit in site.conduits:
        for channel in conduit.channels:
            if zone_id not in channel.responders:
                continue
            known = ports.setdefault(channel.transport, set())
            if known is not None and channel.ports:
                known.update(channel.ports)
            else:
                ports[channel.transport] = None
    return {t: tuple(sorted(p)) if p is not None else () for t, p in sorted(ports.items())}


def _outside(networks: tuple[Network, ...], cut: tuple[Network, ...]) -> tuple[Network, ...]:
    return tuple(
        n
        for n in networks
        if not any(n.version == c.version and n.subnet_of(c) for c in cut)  # type: ignore[arg-type]
    )


def without(site: SiteModel, permit: Permit, zone_id: str) -> Permit | None:
    """The permit less the zone's networks on either side; None when nothing is left."""
    cut = zone_networks(site, zone_id)
    sources, destinations = _outside(permit.sources, cut), _outside(permit.destinations, cut)
    if not sources or not destinations:
        return None
    return Permit(
        sources,
        destinations,
        permit.transport,
        permit.ports,
        permit.operations,
        permit.label,
        permit.schedule,
    )
