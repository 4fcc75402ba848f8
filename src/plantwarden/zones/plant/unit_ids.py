"""Checks of plant.yaml's Modbus unit ids: each in range.

A unit id names one unit: 1-247 (Modbus's unit addresses), or 255, what a Modbus/TCP device that
takes no unit id is asked for. 0 is the broadcast address and 248-254 are reserved, so neither
names an asset.
"""

from __future__ import annotations

from typing import Any

from plantwarden.zones.plant.context import SiteContext

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
