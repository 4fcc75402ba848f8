"""What changes between two plant models, entity by entity, in words a reviewer reads.

`diff_models(old, new)` lists `Change`s: `+` added, `-` removed, `~` changed (with each changed
field, old and new). Entities are matched by id (channels within their conduit); rights and
bindings have no id and are compared as whole entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from plantwarden.zones.plant.model import Conduit, PlantModel, SiteModel


@dataclass(frozen=True)
class Change:
    """One difference: `kind` is "+", "-" or "~"; `what` names the entity (`site riverside: zone
    cell-a`); `fields` are (field, old, new) for a change."""

    kind: str
    what: str
    fields: tuple[tuple[str, str, str], ...] = ()

    def __str__(self) -> str:
        text = f"{self.kind} {self.what}"
        for name, old, new in self.fields:
            text += f"\n    {name}: {old} -> {new}"
        return text


def diff_models(old: PlantModel, new: PlantModel) -> list[Change]:
    """Every difference from `old` to `new`, site by site, in the order of the file's sections."""
    changes = _keyed(old.sites, new.sites, "site", lambda s: s.id, _site_fields)
    old_sites = {site.id: site for site in old.sites}
    for site in new.sites:
        if site.id in old_sites:
            changes.extend(_site_changes(old_sites[site.id], site))
    return changes


def _site_fields(old: SiteModel, new: SiteModel) -> list[tuple[str, str, str]]:
    return _fields(old, new, ("name", "timezone", "gateways"))


def _site_changes(old: SiteModel, new: SiteModel) -> list[Change]:
    where = f"site {new.id}: "
    changes = _keyed(old.zones, new.zones, where + "zone", lambda z: z.id)
    changes += _keyed(old.conduits, new.conduits, where + "conduit", lambda c: c.id, _conduit_fields)
    for conduit in new.conduits:
        before = [c for c in old.conduits if c.id == conduit.id]
        if before:
            label = f"{where}conduit {conduit.id}: channel"
            changes += _keyed(before[0].channels, conduit.channels, label, lambda c: c.id)
    changes += _keyed(old.assets, new.assets, where + "asset", lambda a: a.id)
    changes += _keyed(
        tuple(old.windows.values()), tuple(new.windows.values()), where + "window", lambda w: w.name
    )
    changes += _entries(old.rights, new.rights, where + "right")
    changes += _entries(old.bindings, new.bindings, where + "binding")
    return changes


def _conduit_fields(old: Conduit, new: Conduit) -> list[tuple[str, str, str]]:
    return _fields(old, new, ("name", "zones", "security_level", "description"))


def _keyed(old: Sequence[Any], new: Sequence[Any], label: str, key: Any, compare: Any = None) -> list[Change]:
    before = {key(item): item for item in old}
    after = {key(item): item for item in new}
    changes = [Change("-", f"{label} {name}") for name in before if name not in after]
    for name, item in after.items():
        if name not in before:
            changes.append(Change("+", f"{label} {name}"))
            continue
        fields = compare(before[name], item) if compare else _fields(before[name], item)
        if fields:
            changes.append(Change("~", f"{label} {name}", tuple(fields)))
    return changes


def _fields(old: Any, new: Any, names: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    chosen = names or [f.name for f in dataclasses.fields(old)]
    return [
        (name, _text(getattr(old, name)), _text(getattr(new, name)))
        for name in chosen
        if getattr(old, name) != getattr(new, name)
    ]


def _entries(old: Sequence[Any], new: Sequence[Any], label: str) -> list[Change]:
    removed = [Change("-", f"{label} {_entry(item)}") for item in old if item not in new]
    return removed + [Change("+", f"{label} {_entry(item)}") for item in new if item not in old]


def _entry(item: Any) -> str:
    values = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return ", ".join(
        f"{name} {_text(value)}" for name, value in values.items() if value not in ((), None, False, "")
    )


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value, key=str) if isinstance(value, (frozenset, set)) else value
        return "[" + ", ".join(_text(v) for v in items) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return str(value) if type(value).__str__ is not object.__str__ else _entry(value)
    if isinstance(value, str) and not value.isprintable():  # a description in lines, a tab: quoted,
        return repr(value)  # so that each change stays on its line
    return str(value)
