"""Checks and building of plant.yaml's assets: addresses, zone membership, register maps, unit ids."""

from __future__ import annotations

from typing import Any, cast

from plantwarden.zones.plant.context import SiteContext, address
from plantwarden.zones.plant.model import Address, Asset, Register, Zone
from plantwarden.zones.plant.source import Path
from plantwarden.zones.plant.unit_ids import check_gateway_routes, check_unit_id

_READ_ONLY_KINDS = ("input", "discrete")


def build_assets(ctx: SiteContext, zones: tuple[Zone, ...]) -> tuple[Asset, ...]:
    """The site's assets, each placed in a zone: declared, listed by a zone, or by its subnet."""
    items = ctx.data.get("assets") or []
    ctx.asset_ids = ctx.unique(items, "assets", "asset")
    listed = _listed_by_zones(ctx, zones)
    owners: dict[Address, str] = {}
    assets = []
    for index, item in enumerate(items):
        path: Path = ("assets", index)
        addresses = _addresses(ctx, item, path)
        for parsed in addresses:
            if parsed in owners:
                ctx.problem(path, f"address {parsed} is also the address of asset {owners[parsed]!r}")
            owners.setdefault(parsed, item["id"])
        zone = _zone_of(ctx, item, path, addresses, zones, listed.get(item["id"]))
        check_unit_id(ctx, item, index)
        assets.append(
            Asset(
                id=item["id"],
                name=item.get("name") or item["id"],
                addresses=addresses,
                zone=zone or "",
                criticality=item.get("criticality", "medium"),
                gateway_only=bool(item.get("gateway_only", False)),
                registers=_registers(ctx, item.get("registers") or [], (*path, "registers")),
                unit_id=item.get("unit_id"),
                description=item.get("description") or "",
                rate_limits=_rate_limits(ctx, item.get("rate_limits") or {}, (*path, "rate_limits")),
            )
        )
    check_gateway_routes(ctx, assets)
    return tuple(assets)


def _rate_limits(ctx: SiteContext, items: dict[str, Any], path: Path) -> tuple[tuple[str, float], ...]:
    for role in items:
        ctx.known(role, ctx.roles, (*path, role), "role")
    return tuple((role, float(rate)) for role, rate in items.items())


def _listed_by_zones(ctx: SiteContext, zones: tuple[Zone, ...]) -> dict[str, str]:
    listed: dict[str, str] = {}
    for index, zone in enumerate(zones):
        for number, asset_id in enumerate(zone.assets):
            where: Path = ("zones", index, "assets", number)
            if not ctx.known(asset_id, ctx.asset_ids, where, "asset"):
                continue
            if asset_id in listed:
                ctx.problem(where, f"asset {asset_id!r} is already listed by zone {listed[asset_id]!r}")
                continue
            listed[asset_id] = zone.id
    return listed


def _addresses(ctx: SiteContext, item: dict[str, Any], path: Path) -> tuple[Address, ...]:
    if ("address" in item) == ("addresses" in item):
        ctx.problem(path, f"asset {item['id']!r} needs either address: or addresses: (one of them)")
        return ()
    if "address" in item:
        texts, paths = [item["address"]], [(*path, "address")]
    else:
        texts = item["addresses"]
        paths = [(*path, "addresses", n) for n in range(len(texts))]
    parsed = (address(ctx, text, where) for text, where in zip(texts, paths, strict=True))
    return tuple(a for a in parsed if a is not None)


def _zone_of(
    ctx: SiteContext,
    item: dict[str, Any],
    path: Path,
    addresses: tuple[Address, ...],
    zones: tuple[Zone, ...],
    listed: str | None,
) -> str | None:
    declared = item.get("zone")
    if declared is not None and not ctx.known(declared, ctx.zone_ids, (*path, "zone"), "zone"):
        return None
    if declared and listed and declared != listed:
        ctx.problem((*path, "zone"), f"asset says zone {declared!r} but zone {listed!r} lists it")
        return None
    if declared or listed:
        return cast(str, declared or listed)
    by_subnet = {z.id for a in addresses for z in zones if any(a in subnet for subnet in z.subnets)}
    if len(by_subnet) == 1:
        return by_subnet.pop()
    if by_subnet:
        ctx.problem(
            path, f"asset {item['id']!r} has addresses in zones {', '.join(sorted(by_subnet))}: say zone:"
        )
    elif addresses:
        ctx.problem(path, f"asset {item['id']!r} is in no zone's subnet: add zone: or the subnet to a zone")
    return None


def _registers(ctx: SiteContext, items: list[dict[str, Any]], path: Path) -> tuple[Register, ...]:
    registers = []
    names: set[str] = set()
    taken: dict[tuple[str, int], str] = {}
    for index, item in enumerate(items):
        where: Path = (*path, index)
        register = Register(
            address=item["address"],
            name=item["name"],
            kind=item["kind"],
            type=item["type"],
            unit=item.get("unit") or "",
            word_order=item.get("word_order", "big"),
            scale=float(item.get("scale", 1.0)),
            safe_range=_safe_range(ctx, item, where),
            writers=tuple(item.get("writers") or ()),
            max_change=float(item["max_change"]) if "max_change" in item else None,
            counter=item.get("counter"),
        )
        _check_register(ctx, register, where, names, taken)
        registers.append(register)
    return tuple(registers)


def _safe_range(ctx: SiteContext, item: dict[str, Any], where: Path) -> tuple[float, float] | None:
    if "safe_range" not in item:
        return None
    low, high = (float(v) for v in item["safe_range"])
    if low > high:
        ctx.problem(
            (*where, "safe_range"), f"safe range [{low:g}, {high:g}] has its low end above its high end"
        )
    return (low, high)


def _check_register(
    ctx: SiteContext, register: Register, where: Path, names: set[str], taken: dict[tuple[str, int], str]
) -> None:
    if register.name in names:
        ctx.problem((*where, "name"), f"register name {register.name!r} is used twice in this map")
    names.add(register.name)
    if register.kind in ("coil", "discrete") and register.type != "bool":
        ctx.problem((*where, "type"), f"a {register.kind} holds one bit: its type must be bool")
    if register.last > 65535:
        ctx.problem((*where, "address"), f"{register.type} at {register.address} runs past address 65535")
    for number in range(register.address, register.last + 1):
        other = taken.get((register.kind, number))
        if other is not None:
            ctx.problem((*where, "address"), f"{register.kind} address {number} is also used by {other!r}")
            break
        taken[(register.kind, number)] = register.name
    if register.writers and register.kind in _READ_ONLY_KINDS:
        ctx.problem((*where, "writers"), f"{register.kind} registers cannot be written; remove writers")
    if register.max_change is not None and register.kind != "holding":
        ctx.problem((*where, "max_change"), f"a {register.kind} has no rate of change: max_change is for"
                    " holding registers")  # fmt: skip
    if register.counter and register.type == "bool":
        ctx.problem((*where, "counter"), "a bool counts nothing: counter is for numeric registers")
    for number, role in enumerate(register.writers):
        ctx.known(role, ctx.roles, (*where, "writers", number), "role")
