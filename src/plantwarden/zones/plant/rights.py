"""plant.yaml's rights and bindings as input of the policy model.

A role named in a site's `rights` gets exactly the plant rights plant.yaml gives it at that site
(its built-in plant rules no longer apply there; its platform rules stay); at the sites whose
rights do not name it, it keeps its built-in plant rights; a new role name becomes a role with
plant rights only. Bindings become grants of address subjects
(legacy clients at the gateway).

Writes are narrowed by the register maps: in a zone that declares assets, a role may write only
declared assets, and on an asset with a register map only the registers that list the role among
their writers (within the right's own ranges). A zone without declared assets cannot be narrowed,
so a write right there covers the zone. Ranges name addresses without the register kind (a
request names an address, not a table): coil 200 and holding register 200 share one range until
the decision carries the kind (the gateway, a later capability).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from plantwarden.policy.model import (
    Conditions,
    Grant,
    PolicyModel,
    Role,
    Rule,
    ScopePattern,
    Subject,
    action_matches,
    merge_ranges,
)
from plantwarden.policy.roles import PLANT_OPERATIONS
from plantwarden.zones.plant.model import Asset, PlantModel, Right, SiteModel

Ranges = tuple[tuple[int, int], ...]
_WRITABLE_KINDS = ("holding", "coil")


@dataclass(frozen=True)
class PlantPolicy:
    """The policy input of an applied plant model: plant rules per role, and address grants."""

    rules: Mapping[str, tuple[Rule, ...]]
    grants: tuple[Grant, ...]
    version: str
    named: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """The sites whose rights name each role."""


def plant_policy(model: PlantModel) -> PlantPolicy:
    """The rules and grants every site of `model` gives."""
    rules: dict[str, list[Rule]] = {}
    grants: list[Grant] = []
    named: dict[str, set[str]] = {}
    for site in model.sites:
        for index, right in enumerate(site.rights):
            rules.setdefault(right.role, []).extend(_right_rules(site, right, f"plant-{site.id}-{index + 1}"))
            named.setdefault(right.role, set()).add(site.id)
        grants.extend(
            Grant(Subject("address", str(binding.address)), binding.role, site.id, binding.zone)
            for binding in site.bindings
        )
    return PlantPolicy(
        {role: tuple(found) for role, found in rules.items()},
        tuple(grants),
        model.version,
        {role: frozenset(sites) for role, sites in named.items()},
    )


def with_plant(base: PolicyModel, plant: PlantPolicy | None) -> PolicyModel:
    """`base` (built-in roles and user grants) with the plant's rights and bindings applied."""
    if plant is None:
        return base
    roles = dict(base.roles)
    grants = (*base.grants, *plant.grants)
    for name, rules in plant.rules.items():
        if name not in roles:
            roles[name] = Role(name, "a role defined by plant.yaml", rules)
            continue
        others = sorted({g.site for g in grants if g.role == name} - plant.named.get(name, frozenset()))
        kept = tuple(rule for rule in roles[name].rules if not _is_plant_rule(rule))
        elsewhere = tuple(
            _at(rule, site) for rule in roles[name].rules if _is_plant_rule(rule) for site in others
        )
        roles[name] = Role(name, roles[name].description, kept + elsewhere + rules)
    return PolicyModel(roles=roles, grants=grants)


def _at(rule: Rule, site: str) -> Rule:
    """A built-in plant rule kept at a site whose rights do not name its role."""
    return replace(rule, id=f"{rule.id}-at-{site}", scope=replace(rule.scope, site=site))


def _is_plant_rule(rule: Rule) -> bool:
    return all(action.startswith("plant:") for action in rule.actions)


def _right_rules(site: SiteModel, right: Right, prefix: str) -> list[Rule]:
    actions = plant_actions(right.operations)
    writes = frozenset(a for a in actions if a.endswith(".write"))
    others = actions - writes
    conditions = Conditions(
        requires_training=right.requires_training, requires_approval=right.requires_approval
    )
    rules = []
    for zone in right.zones:
        targets: Iterable[str | None] = right.assets or (None,)
        for asset in targets:
            if others:
                scope = ScopePattern(site.id, zone, asset, right.ranges)
                rules.append(Rule(f"{prefix}-{zone}-{asset or 'any'}", others, scope, conditions))
        if writes:
            rules.extend(_write_rules(site, right, zone, writes, conditions, prefix))
    return rules


def _write_rules(
    site: SiteModel, right: Right, zone: str, writes: frozenset[str], conditions: Conditions, prefix: str
) -> list[Rule]:
    declared = [a for a in site.assets if a.zone == zone and (not right.assets or a.id in right.assets)]
    if not declared and not right.assets:
        return [
            Rule(
                f"{prefix}-{zone}-write", writes, ScopePattern(site.id, zone, None, right.ranges), conditions
            )
        ]
    rules = []
    for asset in declared:
        ranges = _writable(asset, right)
        if ranges is None:
            continue
        scope = ScopePattern(site.id, zone, asset.id, ranges)
        rules.append(Rule(f"{prefix}-{zone}-{asset.id}-write", writes, scope, conditions))
    return rules


def _writable(asset: Asset, right: Right) -> Ranges | None:
    """The ranges the role may write on the asset (empty: any address); None when nothing."""
    if not asset.registers:
        return right.ranges
    mine = merge_ranges(
        [
            (register.address, register.last)
            for register in asset.registers
            if right.role in register.writers and register.kind in _WRITABLE_KINDS
        ]
    )
    if right.ranges:
        mine = _intersection(mine, merge_ranges(right.ranges))
    return mine or None


def _intersection(first: Ranges, second: Ranges) -> Ranges:
    return tuple((max(a, c), min(b, d)) for a, b in first for c, d in second if max(a, c) <= min(b, d))


def plant_actions(operations: Iterable[str]) -> frozenset[str]:
    """The exact plant actions the operations (`modbus.write`, `*.read`) name, among the known ones."""
    patterns = [f"plant:{operation}" for operation in operations]
    return frozenset(
        action for action in PLANT_OPERATIONS if any(action_matches(pattern, action) for pattern in patterns)
    )
