"""Reachability answers as lines of text for a plant engineer (the `plantwarden reach` commands)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from plantwarden.zones.plant.model import OPERATIONS
from plantwarden.zones.reach.answers import Reach, Route
from plantwarden.zones.reach.search import Entry, Path, Target


def hops_text(hops: int) -> str:
    """'held' for a target of the attacker's own zone, else '1 hop', '2 hops' ..."""
    if hops == 0:
        return "held (same zone)"
    return f"{hops} hop" + ("" if hops == 1 else "s")


def operations_text(operations: Iterable[str]) -> str:
    """Operations in the model's order; none named means the service alone (DNS, NTP ...)."""
    chosen = set(operations)
    return ", ".join(op for op in OPERATIONS if op in chosen) or "the service only"


def entry_text(entry: Entry) -> str:
    """'conduit/channel tcp/502: read, write (only in night)'; no operations: no colon part."""
    text = f"{entry.label} {entry.service}"
    if entry.operations:
        text += f": {operations_text(entry.operations)}"
    return text + (f" (only in {', '.join(entry.schedule)})" if entry.schedule else "")


def path_text(path: Path) -> str:
    """'a -[label tcp/502: read]-> b -[...]-> c'."""
    if not path:
        return ""
    parts = [path[0].source.name]
    for hop in path:
        entries = " | ".join(entry_text(entry) for entry in hop.entries)
        parts.append(f"-[{entries}]-> {hop.target.name}")
    return " ".join(parts)


def target_lines(target: Target) -> list[str]:
    """A target: hops, operations at the last hop, the ways in, its shortest paths."""
    lines = [f"  {target.id}: {hops_text(target.hops)}"]
    if target.entries:
        lines.append(f"    operations at the last hop: {operations_text(target.operations)}")
        lines.append(f"    entered through: {', '.join(target.labels)}")
    lines.extend(f"    path: {path_text(path)}" for path in target.paths)
    return lines


def section(title: str, targets: Sequence[Target]) -> list[str]:
    """A titled list of targets, or a line saying there are none."""
    if not targets:
        return [f"{title}: none"]
    lines = [f"{title} ({len(targets)}):"]
    for target in targets:
        lines.extend(target_lines(target))
    return lines


def reach_lines(reach: Reach, view: str) -> list[str]:
    """Everything `plantwarden reach show` prints."""
    return [
        f"site {reach.site}, {view}: an attacker holding zone {reach.from_zone} reaches",
        *section("zones", reach.zones),
        *section("crown jewels", reach.crown_jewels),
        *section("hosts outside the model", reach.outside),
    ]


def route_lines(routes: Sequence[Route], site_id: str, view: str, to: str | None) -> list[str]:
    """Everything `plantwarden reach paths` prints."""
    aim = f"asset {to}" if to else "the crown jewels"
    if not routes:
        return [f"site {site_id}, {view}: no zone reaches {aim} from outside its own zone"]
    lines = [f"site {site_id}, {view}: paths to {aim}"]
    for route in routes:
        target = route.target
        lines.append(f"{target.id} from {route.from_zone}: {hops_text(target.hops)}")
        lines.append(f"  operations at the last hop: {operations_text(target.operations)}")
        lines.extend(f"  path: {path_text(path)}" for path in target.paths)
    return lines
