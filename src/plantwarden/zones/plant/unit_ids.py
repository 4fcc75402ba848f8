"""Checks of plant.yaml's Modbus unit ids: each in range, and the gateway able to route them all.

A unit id names one unit: 1-247 (Modbus's unit addresses), or 255, what a Modbus/TCP device that
takes no unit id is asked for. 0 is the broadcast address and 248-254 are reserved, so neither
names an asset.

The gateway of a site routes requests by unit id to the site's `gateway_only` assets
(`gateway.state.routes_of`): a single one may do without a unit id (it answers 1 and 255), but
among several each needs its own. That holds behind one gateway: a site that lists several
`gateways` may put each PLC behind its own (named with `--upstream`), so the model cannot say
which unit ids meet at one gateway, and the gateway's own check at start is the one left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plantwarden.zones.plant.context import SiteContext
from plantwarden.zones.plant.model import Asset

NO_UNIT = 255
"""Modbus/TCP's unit id of a device addressed by its IP address alone."""
_USE = "use 1-247, or 255 for a Modbus/TCP device that takes no unit id"


def check_unit_id(ctx: SiteContext, item: dict[str, Any], index: int) -> None:
    """A problem when the asset's unit id is the broadcast address or a reserved one."""
    unit_id = item.get("unit_id")
    if unit_id is None or 1 <= unit_id <= 247 or unit_id == NO_UNIT:
        return
    reason = (
        "is the broadcast address (every unit on a serial line, none answers)"
        if unit_id == 0
        else "is reserved (248-254)"
    )
    ctx.problem(("assets", index, "unit_id"), f"unit id {unit_id} {reason}: {_USE}")


def check_gateway_routes(ctx: SiteContext, assets: Sequence[Asset]) -> None:
    """Problems when the gateway of a site with one gateway could not route to each of its
    `gateway_only` assets: two on one unit id, or one of several without a unit id."""
    if len(ctx.data.get("gateways") or ()) > 1:
        return
    routed = [(index, asset) for index, asset in enumerate(assets) if asset.gateway_only]
    owners: dict[int, str] = {}
    for index, asset in routed:
        if asset.unit_id is None:
            if len(routed) > 1:
                ctx.problem(
                    ("assets", index),
                    f"gateway_only asset {asset.id!r} has no unit_id: the gateway routes requests by"
                    f" unit id, and with {len(routed)} gateway_only assets it could route none to this"
                    " one; give it the unit id it answers",
                )
            continue
        if asset.unit_id in owners:
            ctx.problem(
                ("assets", index, "unit_id"),
                f"unit id {asset.unit_id} is also the unit id of gateway_only asset"
                f" {owners[asset.unit_id]!r}: the gateway routes requests by unit id, so the"
                " gateway_only assets behind one gateway need distinct unit ids",
            )
        owners.setdefault(asset.unit_id, asset.id)
