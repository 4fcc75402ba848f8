"""What the checks of one site share (`SiteContext`), and the parsers of plant.yaml's values."""

from __future__ import annotations

import ipaddress
from typing import Any, cast

from plantwarden.policy.roles import BUILTIN_ROLES
from plantwarden.zones.plant.model import Address, Network, SecurityLevel
from plantwarden.zones.plant.source import Path, Problem, Source


class SiteContext:
    """What the checks of one site share: the source, the site's path, and the problems found."""

    def __init__(self, source: Source, path: Path, data: dict[str, Any], problems: list[Problem]) -> None:
        self.source = source
        self.path = path
        self.data = data
        self.problems = problems
        self.zone_ids: set[str] = set()
        self.asset_ids: set[str] = set()
        self.window_ids: set[str] = set(data.get("windows") or {})
        self.roles: set[str] = set(BUILTIN_ROLES) | {r["role"] for r in data.get("rights") or []}

    def problem(self, path: Path, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.problem((*self.path, *path), message, key=key))

    def unique(self, items: list[dict[str, Any]], section: str, kind: str) -> set[str]:
        """The ids of `items`, with a problem for each id used twice."""
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            item_id = item["id"]
            if item_id in seen:
                self.problem(
                    (section, index, "id"),
                    f"{kind} id {item_id!r} is used twice (first at #{seen[item_id] + 1})",
                )
            seen.setdefault(item_id, index)
        return set(seen)

    def known(self, value: str, known: set[str], path: Path, kind: str) -> bool:
        if value in known:
            return True
        hint = f"; known: {', '.join(sorted(known))}" if known and len(known) <= 12 else ""
        self.problem(path, f"unknown {kind} {value!r}{hint}")
        return False


def security_level(value: int | list[int]) -> SecurityLevel:
    """A security level from its plant.yaml form (the schema has checked the shape)."""
    if isinstance(value, int):
        return SecurityLevel.uniform(value)
    return SecurityLevel(cast(Any, tuple(value)))


def address(ctx: SiteContext, text: Any, path: Path) -> Address | None:
    """An IP address, or None with a problem."""
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        ctx.problem(path, f"{text!r} is not an IP address")
        return None


def network(ctx: SiteContext, text: Any, path: Path) -> Network | None:
    """A network in CIDR form (host bits zero), or None with a problem."""
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError as error:
        reason = (
            "host bits are set (write the network address)" if "host bits" in str(error) else "not a network"
        )
        ctx.problem(path, f"{text!r} is not a subnet: {reason}; write it as 10.1.2.0/24")
        return None
