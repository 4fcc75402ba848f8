"""Checks and building of plant.yaml's conduits and their channels."""

from __future__ import annotations

from typing import Any

from plantwarden.zones.plant.context import SiteContext, security_level
from plantwarden.zones.plant.model import Asset, Channel, Conduit, SecurityLevel, Zone
from plantwarden.zones.plant.protocols import SERVICES
from plantwarden.zones.plant.source import Path

DEFAULT_OPERATIONS = frozenset({"read", "identify"})


def build_conduits(
    ctx: SiteContext, zones: tuple[Zone, ...], assets: tuple[Asset, ...]
) -> tuple[Conduit, ...]:
    """The site's conduits; a conduit without a level gets the highest of its zones', per requirement."""
    items = ctx.data.get("conduits") or []
    ctx.unique(items, "conduits", "conduit")
    levels = {zone.id: zone.security_level for zone in zones}
    zone_of = {asset.id: asset.zone for asset in assets}
    conduits = []
    for index, item in enumerate(items):
        path: Path = ("conduits", index)
        members = tuple(item["zones"])
        for number, zone in enumerate(members):
            ctx.known(zone, ctx.zone_ids, (*path, "zones", number), "zone")
        if "security_level" in item:
            level = security_level(item["security_level"])
        else:
            level = _highest([levels[z] for z in members if z in levels])
        conduits.append(
            Conduit(
                id=item["id"],
                name=item.get("name") or item["id"],
                zones=members,
                channels=_channels(ctx, item, path, zone_of),
                security_level=level,
                description=item.get("description") or "",
            )
        )
    return tuple(conduits)


def _highest(levels: list[SecurityLevel]) -> SecurityLevel:
    if not levels:
        return SecurityLevel.uniform(0)
    return SecurityLevel(tuple(max(values) for values in zip(*(lv.values for lv in levels), strict=True)))


def _channels(
    ctx: SiteContext, conduit: dict[str, Any], path: Path, zone_of: dict[str, str]
) -> tuple[Channel, ...]:
    channels = []
    used: dict[str, int] = {}
    for index, item in enumerate(conduit["channels"]):
        where: Path = (*path, "channels", index)
        channel_id = item.get("id") or _default_id(item["protocol"], used)
        if channel_id in used and "id" in item:
            ctx.problem(
                (*where, "id"), f"channel id {channel_id!r} is used twice in conduit {conduit['id']!r}"
            )
        used[channel_id] = used.get(channel_id, 0) + 1
        channels.append(_channel(ctx, conduit, item, where, channel_id, zone_of))
    return tuple(channels)


def _default_id(protocol: str, used: dict[str, int]) -> str:
    if protocol not in used:
        return protocol
    number = 2
    while f"{protocol}-{number}" in used:
        number += 1
    return f"{protocol}-{number}"


def _channel(
    ctx: SiteContext,
    conduit: dict[str, Any],
    item: dict[str, Any],
    where: Path,
    channel_id: str,
    zone_of: dict[str, str],
) -> Channel:
    service = SERVICES[item["protocol"]]
    transport = item.get("transport", service.transport)
    if "transport" in item and service.ports and transport != service.transport:
        ctx.problem((*where, "transport"), f"{service.name} runs over {service.transport}, not {transport}")
    ports = tuple(item.get("ports") or service.ports)
    if not ports:
        ctx.problem(where, f"a {service.name} channel needs ports: (which ports of the responders)")
    initiators = _zone_list(ctx, conduit, item["from"], (*where, "from"))
    responders = _zone_list(ctx, conduit, item["to"], (*where, "to"))
    for key in ("maintenance", "schedule"):
        for number, window in enumerate(item.get(key) or []):
            ctx.known(window, ctx.window_ids, (*where, key, number), "window")
    _check_members(ctx, item.get("clients") or [], initiators, (*where, "clients"), zone_of, "initiator")
    _check_members(ctx, item.get("servers") or [], responders, (*where, "servers"), zone_of, "responder")
    return Channel(
        id=channel_id,
        protocol=service.name,
        transport=transport,
        ports=ports,
        initiators=initiators,
        responders=responders,
        operations=frozenset(item.get("operations", _default_operations(service.record_protocol))),
        maintenance=tuple(item.get("maintenance") or ()),
        schedule=tuple(item.get("schedule") or ()),
        clients=tuple(item.get("clients") or ()),
        servers=tuple(item.get("servers") or ()),
        encrypted=item.get("encryption", "optional") == "required",
    )


def _default_operations(record_protocol: int | None) -> frozenset[str]:
    """Reads and identification for the industrial protocols the sensor decodes; nothing for the
    others (their traffic carries no operation the records could show)."""
    return DEFAULT_OPERATIONS if record_protocol is not None else frozenset()


def _zone_list(
    ctx: SiteContext, conduit: dict[str, Any], value: str | list[str], where: Path
) -> tuple[str, ...]:
    zones = (value,) if isinstance(value, str) else tuple(value)
    for number, zone in enumerate(zones):
        at = where if isinstance(value, str) else (*where, number)
        if zone not in conduit["zones"]:
            ctx.problem(
                at,
                f"zone {zone!r} is not one of the zones of conduit {conduit['id']!r}: "
                + ", ".join(conduit["zones"]),
            )
    return zones


def _check_members(
    ctx: SiteContext,
    asset_ids: list[str],
    zones: tuple[str, ...],
    where: Path,
    zone_of: dict[str, str],
    side: str,
) -> None:
    for number, asset_id in enumerate(asset_ids):
        at = (*where, number)
        if ctx.known(asset_id, ctx.asset_ids, at, "asset") and zone_of.get(asset_id) not in zones:
            ctx.problem(
                at,
                f"asset {asset_id!r} is in zone {zone_of.get(asset_id)!r}, not an {side} zone of the channel",
            )
