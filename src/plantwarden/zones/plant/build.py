"""From schema-valid plant data to the model: the checks a JSON Schema cannot make.

Ids are unique, references resolve (zones, assets, windows, roles), subnets are networks and do
not overlap within a segment, addresses are addresses, channels' zones belong to their conduit,
register maps do not overlap, time zones exist, unit ids are in range, the gateway of a site
with one gateway can route to each of its gateway_only assets (`unit_ids`), and a site name is one
the service takes (`lines`). Every problem is collected with its position, so one run names all of
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plantwarden.policy.model import is_action, is_pattern
from plantwarden.policy.roles import PROTOCOLS
from plantwarden.zones.plant.assets import build_assets
from plantwarden.zones.plant.conduits import build_conduits
from plantwarden.zones.plant.context import SiteContext, address, network, security_level
from plantwarden.zones.plant.lines import line_problem
from plantwarden.zones.plant.model import (
    DAYS,
    Address,
    Binding,
    Network,
    Right,
    SiteModel,
    Window,
    Zone,
)
from plantwarden.zones.plant.rights import plant_actions
from plantwarden.zones.plant.schema import SITE_NAME_LENGTH
from plantwarden.zones.plant.source import Path, Problem, Source


def build_model(source: Source) -> tuple[tuple[SiteModel, ...], list[Problem]]:
    """The sites of schema-valid data, and every problem found (the sites mean nothing if any)."""
    problems: list[Problem] = []
    sites = []
    seen: set[str] = set()
    for index, data in enumerate(source.data["sites"]):
        if data["id"] in seen:
            problems.append(source.problem(("sites", index, "id"), f"site id {data['id']!r} is used twice"))
        seen.add(data["id"])
        sites.append(_site(SiteContext(source, ("sites", index), data, problems)))
    return tuple(sites), problems


def _site(ctx: SiteContext) -> SiteModel:
    data = ctx.data
    zones = _zones(ctx)
    assets = build_assets(ctx, zones)
    windows = _windows(ctx)
    return SiteModel(
        id=data["id"],
        name=_site_name(ctx),
        timezone=_timezone(ctx),
        zones=zones,
        conduits=build_conduits(ctx, zones, assets),
        assets=assets,
        windows=MappingProxyType(windows),
        rights=_rights(ctx, assets),
        bindings=_bindings(ctx),
        gateways=tuple(
            a for i, t in enumerate(data.get("gateways") or []) if (a := address(ctx, t, ("gateways", i)))
        ),
    )


def _site_name(ctx: SiteContext) -> str:
    """The name as given (the id when there is none); one the service's `one_line` takes, so that
    what validates applies (the schema's pattern has said it for most characters already)."""
    name = ctx.data.get("name") or ""
    problem = line_problem("a site name", name, SITE_NAME_LENGTH)
    if problem:
        ctx.problem(("name",), problem)
    return cast(str, name or ctx.data["id"])


def _timezone(ctx: SiteContext) -> str:
    name = ctx.data.get("timezone") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.problem(
            ("timezone",), f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        )
    return cast(str, name)


def _zones(ctx: SiteContext) -> tuple[Zone, ...]:
    items = ctx.data["zones"]
    ctx.zone_ids = ctx.unique(items, "zones", "zone")
    zones = []
    placed: list[tuple[Network, str, str, Path]] = []
    for index, item in enumerate(items):
        path: Path = ("zones", index)
        subnets = []
        for number, text in enumerate(item.get("subnets") or []):
            subnet = network(ctx, text, (*path, "subnets", number))
            if subnet is not None:
                subnets.append(subnet)
                placed.append(
                    (subnet, item.get("segment") or "default", item["id"], (*path, "subnets", number))
                )
        zones.append(
            Zone(
                id=item["id"],
                name=item.get("name") or item["id"],
                purdue_level=float(item["purdue_level"]),
                subnets=tuple(subnets),
                assets=tuple(item.get("assets") or ()),
                security_level=security_level(item["security_level"]),
                essential_functions=tuple(item.get("essential_functions") or ()),
                segment=item.get("segment") or "default",
                description=item.get("description") or "",
            )
        )
    _check_overlaps(ctx, placed)
    return tuple(zones)


def _check_overlaps(ctx: SiteContext, placed: list[tuple[Network, str, str, Path]]) -> None:
    """Subnets of one segment must not overlap: one address, one zone."""
    ordered = sorted(placed, key=lambda p: (p[1], p[0].version, int(p[0].network_address), -p[0].prefixlen))
    widest: tuple[Network, str, str, Path] | None = None
    for entry in ordered:
        subnet, segment, zone, path = entry
        same_space = widest is not None and widest[1] == segment and widest[0].version == subnet.version
        if (
            same_space
            and widest is not None
            and int(subnet.network_address) <= int(widest[0].broadcast_address)
        ):
            ctx.problem(path, f"subnet {subnet} of zone {zone!r} overlaps {widest[0]} of zone {widest[2]!r}")
            continue
        if (
            widest is None
            or widest[1] != segment
            or widest[0].version != subnet.version
            or (int(subnet.broadcast_address) > int(widest[0].broadcast_address))
        ):
            widest = entry


def _windows(ctx: SiteContext) -> dict[str, Window]:
    windows = {}
    for name, item in (ctx.data.get("windows") or {}).items():
        start, end = _minutes(item["start"]), _minutes(item["end"])
        if start >= 1440:
            ctx.problem(("windows", name, "start"), "a window cannot open at 24:00; write 00:00")
        elif start == end:
            ctx.problem(("windows", name, "end"), f"window {name!r} opens and closes at the same time")
        days = tuple(DAYS.index(day) for day in item["days"])
        windows[name] = Window(name, days, start, end)
    return windows


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _rights(ctx: SiteContext, assets: Iterable[Any]) -> tuple[Right, ...]:
    zone_of = {asset.id: asset.zone for asset in assets}
    rights = []
    for index, item in enumerate(ctx.data.get("rights") or []):
        path: Path = ("rights", index)
        for number, zone in enumerate(item["zones"]):
            ctx.known(zone, ctx.zone_ids, (*path, "zones", number), "zone")
        for number, operation in enumerate(item["operations"]):
            text = f"plant:{operation}"
            if not (is_action(text) or is_pattern(text)):
                ctx.problem(
                    (*path, "operations", number),
                    f"{operation!r} is not a plant operation: write protocol.operation (modbus.write),"
                    " with * for any protocol or operation (*.read)",
                )
            elif not plant_actions([operation]):
                ctx.problem(
                    (*path, "operations", number),
                    f"{operation!r} names no known operation (protocols: {', '.join(PROTOCOLS)};"
                    " operations: read, write, program, control, diagnostic, identify)",
                )
        for number, asset_id in enumerate(item.get("assets") or []):
            where = (*path, "assets", number)
            if ctx.known(asset_id, ctx.asset_ids, where, "asset") and zone_of[asset_id] not in item["zones"]:
                ctx.problem(
                    where, f"asset {asset_id!r} is in zone {zone_of[asset_id]!r}, not in this right's zones"
                )
        rights.append(
            Right(
                role=item["role"],
                zones=tuple(item["zones"]),
                operations=tuple(item["operations"]),
                assets=tuple(item.get("assets") or ()),
                ranges=_ranges(ctx, item.get("registers") or [], (*path, "registers")),
                requires_training=bool(item.get("requires_training", False)),
                requires_approval=bool(item.get("requires_approval", False)),
            )
        )
    return tuple(rights)


def _ranges(ctx: SiteContext, items: list[int | str], path: Path) -> tuple[tuple[int, int], ...]:
    ranges = []
    for number, item in enumerate(items):
        match = _RANGE.fullmatch(str(item))
        if match is None:
            ctx.problem((*path, number), f"{item!r} is not an address or a range such as 0-99")
            continue
        first, last = int(match["first"]), int(match["last"] or match["first"])
        if last < first or last > 65535:
            ctx.problem((*path, number), f"{item!r} is not a range of addresses 0-65535 with first <= last")
            continue
        ranges.append((first, last))
    return tuple(ranges)


_RANGE = re.compile(r"\s*(?P<first>[0-9]+)\s*(?:-\s*(?P<last>[0-9]+)\s*)?", re.ASCII)


def _bindings(ctx: SiteContext) -> tuple[Binding, ...]:
    bindings: list[Binding] = []
    seen: dict[Address, int] = {}
    for index, item in enumerate(ctx.data.get("bindings") or []):
        path: Path = ("bindings", index)
        ctx.known(item["role"], ctx.roles, (*path, "role"), "role")
        zone = item.get("zone")
        if zone is not None:
            ctx.known(zone, ctx.zone_ids, (*path, "zone"), "zone")
        parsed = address(ctx, item["address"], (*path, "address"))
        if parsed is None:
            continue
        if (parsed, zone) in {(a, z) for a, z in ((b.address, b.zone) for b in bindings)}:
            ctx.problem(
                (*path, "address"), f"{parsed} is bound twice in the same zone (first at #{seen[parsed] + 1})"
            )
        seen.setdefault(parsed, index)
        bindings.append(Binding(parsed, item["role"], zone, item.get("description") or ""))
    return tuple(bindings)
