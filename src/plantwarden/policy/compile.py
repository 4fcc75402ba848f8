"""Compile a `PolicyModel` into an immutable `PolicySnapshot` that decides in microseconds.

Compiling validates the model (`InvalidPolicy` and its subclasses name what is wrong), puts the
grants in a canonical order, hashes a canonical serialisation into `PolicySnapshot.version`, and
precomputes what a decision reads:

- a table per (role, site, grant zone), shared by every grant with that key: action -> the
  role's rules for it, with action patterns expanded over the actions the snapshot knows, rule
  limits that the grant already settles (another site, another zone) dropped, register/object
  ranges merged into sorted arrays searched with `bisect`, and each rule's "allowed" `Decision`
  built in advance;
- a place per (subject, site), a read-only dict: (zone or None, action) -> the candidate rules
  in canonical order (whole-site grants first), cut after the first that allows
  unconditionally, and that `Decision` itself when it is the first; and (zone or None, a
  marker) -> the start of the default denial's reason.

A decision is then a lookup of the place, one or two lookups in it, and a few comparisons; the
slow path (an action the snapshot does not know, matched against the patterns on the spot) walks
the grant entries instead. See docs/policy.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NamedTuple

from plantwarden.policy.errors import InvalidAction, InvalidPolicy, InvalidRange, UnknownRole
from plantwarden.policy.model import (
    SUBJECT_KINDS,
    Grant,
    PolicyModel,
    Range,
    Role,
    Rule,
    Scope,
    ScopePattern,
    Subject,
    is_action,
    merge_ranges,
    parse_pattern,
    segments_match,
)
from plantwarden.policy.overlay import DenyOverlay
from plantwarden.policy.roles import KNOWN_ACTIONS

FORMAT = "plantwarden-policy/1"
"""Names the canonical serialisation hashed into `PolicySnapshot.version`."""

DEFAULT_DENY = "default-deny"
QUARANTINE_SUBJECT = "deny:quarantine:subject"
QUARANTINE_ASSET = "deny:quarantine:asset"
_PLANT_PREFIX = "plant:"
_new = tuple.__new__  # builds a Decision without the named tuple's Python-level __new__ (twice as fast)


class Request(NamedTuple):
    """One question: may `subject` do `action` at `site` (in `zone`, on `asset`, at `address`)?

    `zone` None asks about something of the site as a whole (only a grant for the whole site
    covers it). `address` and `quantity` name the registers or objects touched, address ..
    address + quantity - 1. `now` (timezone-aware) is checked against valid-until limits; a
    request without it is refused by any time-limited grant or rule. `training_current` and
    `approval_given` are facts the caller has established (training records; a change ticket).

    An immutable named tuple rather than a frozen dataclass: the caller builds one per decision,
    and a tuple is built three times faster (derive another with `_replace`).
    """

    subject: Subject
    action: str
    site: str
    zone: str | None = None
    asset: str | None = None
    address: int | None = None
    now: datetime | None = None
    training_current: bool = True
    approval_given: bool = False
    quantity: int = 1

    @property
    def scope(self) -> Scope:
        """The scope the request touches."""
        ranges = () if self.address is None else ((self.address, self.address + self.quantity - 1),)
        return Scope(self.site, self.zone, self.asset, ranges)


class Decision(NamedTuple):
    """The answer: `allowed`, the `rule` that decided, and the `reason` as a sentence for people.

    `rule` is one of: "role:<role>/<rule id>" (the rule that allowed, or whose condition was not
    met), "grant:<role>@<site>[/<zone>]" (a grant that expired), "deny:quarantine:subject",
    "deny:quarantine:asset", or "default-deny" (nothing allowed it). A Decision is deliberately
    not a truth value: read `.allowed` (`if decision:` raises TypeError instead of always passing).
    An immutable named tuple, like `Request`, because a denial builds one on every call.
    """

    allowed: bool
    rule: str
    reason: str

    def __bool__(self) -> bool:
        raise TypeError("a Decision is not a truth value: read decision.allowed")


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One rule of a role for one action, under the grants of one (role, site, zone)."""

    scoped: bool  # a zone, asset or range limit is left to check
    zone: str | None
    asset: str | None
    starts: tuple[int, ...] | None
    ends: tuple[int, ...]
    conditional: bool  # a valid-until, training or approval condition is left to check
    valid_until: datetime | None
    training: bool
    approval: bool
    name: str  # "role:operator/plant-write"
    allow: Decision
    unmet: tuple[str, str, str, str]  # the reasons: expired, no time stated, no training, no approval


@dataclass(frozen=True, slots=True)
class _Table:
    """The rules of one role under grants of one (site, zone): action -> compiled rules."""

    role: str
    site: str
    zone: str | None
    holder: str
    by_action: Mapping[str, tuple[_Compiled, ...]] = field(repr=False)
    patterns: tuple[tuple[Rule, tuple[tuple[str, tuple[str, ...]], ...]], ...] = field(repr=False)

    def rules_for(self, action: str) -> tuple[_Compiled, ...]:
        """The compiled rules for an action not precomputed (matched against the patterns now)."""
        if not is_action(action):
            return ()
        namespace, _, name = action.partition(":")
        segments = tuple(name.split("."))
        found = []
        for rule, patterns in self.patterns:
            if any(ns == namespace and segments_match(p, segments) for ns, p in patterns):
                compiled = _compile_rule(rule, self.role, self.site, self.zone, self.holder, action)
                if compiled is not None:
                    found.append(compiled)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One grant of a subject at a site, pointing at its (role, site, zone) table."""

    zone: str | None
    valid_until: datetime | None
    name: str  # "grant:operator@plant-a/cell-1"
    table: _Table = field(repr=False)
    expired: str  # the reason when the grant has expired
    untimed: str  # the reason when the grant is time-limited and the request states no time


_Candidate = tuple[
    bool,  # scoped
    str | None,  # zone limit
    str | None,  # asset limit
    tuple[int, ...] | None,  # range starts
    tuple[int, ...],  # range ends
    datetime | None,  # the grant's valid-until
    bool,  # conditional
    datetime | None,  # the rule's valid-until
    bool,  # requires training
    bool,  # requires approval
    Decision,  # allowed
    _Compiled,
    _Entry,
]
"""A rule under one grant, flat: a decision reads one tuple (the rule and grant only to refuse)."""
_Answer = Decision | tuple[_Candidate, ...]


class _ReadOnlyDict(dict[Any, Any]):
    """A dict whose mutating methods raise: a place's lookups without a proxy's extra hop."""

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a compiled policy is immutable")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]


_REFUSAL = object()
"""In a place, (zone or None, _REFUSAL) -> the start of a default denial's reason (no action collides)."""

_Place = Mapping[tuple[str | None, object], "_Answer | str"]
"""One subject at one site: (zone or None, action) -> candidates; (zone or None, _REFUSAL) -> text."""


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """A compiled, immutable policy: `decide` answers; `version` names the model's content.

    Equal models (the same roles and the same set of grants, in any order) give equal versions.
    """

    version: str
    roles: Mapping[str, Role]
    grants: tuple[Grant, ...]
    actions: frozenset[str]
    _entries: Mapping[tuple[str, str], Mapping[str, tuple[_Entry, ...]]] = field(repr=False, compare=False)
    _places: Mapping[tuple[str, str, str], _Place] = field(repr=False, compare=False)

    def decide(self, request: Request, overlay: DenyOverlay | None = None) -> Decision:
        """Decide `request`: the overlay first (a quarantine wins), then the grants; default deny.

        Among the grants of the subject at the site that cover the request's zone (canonical
        order: whole-site grants first, then by zone, role, valid-until) and their role's rules
        for the action (in the role's order) whose limits contain the request, the first whose
        grant and conditions hold allows. If none holds, the first of them decides the denial and
        the reason names the unmet condition; with none at all, "default-deny".
        """
        subject, action, site, zone, asset, address, now, training, approval, quantity = request
        kind = subject.kind
        ident = subject.id
        if overlay is not None:
            state = overlay._state  # one atomic read of the published state
            if state.subject_keys and (kind, ident) in state.subject_keys:
                return Decision(
                    False, QUARANTINE_SUBJECT, f"{subject} is quarantined: {state.subjects[(kind, ident)]}"
                )
            if (
                state.asset_keys
                and asset is not None
                and (site, asset) in state.asset_keys
                and action.startswith(_PLANT_PREFIX)
            ):
                return Decision(
                    False,
                    QUARANTINE_ASSET,
                    f"asset {asset} of site {site} is quarantined, no plant operation"
                    f" reaches it: {state.assets[(site, asset)]}",
                )
        if quantity < 1 or (address is not None and address < 0) or (now is not None and now.tzinfo is None):
            return _malformed(request)
        place = self._places.get((kind, ident, site))
        if place is None:
            return self._refuse(request, None)
        found = None if zone is None else place.get((zone, action))
        if found is None:
            found = place.get((None, action))
            if found is None:
                if action in self.actions:
                    return self._refuse(request, place)  # a known action and no candidate
                return self._decide_slowly(request)  # matched against the patterns now
        if type(found) is Decision:
            return found  # the first candidate allows whatever the rest of the request says
        candidates: tuple[_Candidate, ...] = found  # type: ignore[assignment]  # not a Decision
        failed: tuple[_Entry, _Compiled | None] | None = None
        for (
            scoped,
            rule_zone,
            rule_asset,
            starts,
            ends,
            until,
            conditional,
            rule_until,
            needs_training,
            needs_approval,
            allow,
            rule,
            entry,
        ) in candidates:
            if scoped:
                if rule_zone is not None and rule_zone != zone:
                    continue
                if rule_asset is not None and rule_asset != asset:
                    continue
                if starts is not None:
                    if address is None:
                        continue
                    index = bisect_right(starts, address) - 1
                    if index < 0 or address + quantity - 1 > ends[index]:
                        continue
            if until is not None and (now is None or now > until):
                if failed is None:
                    failed = (entry, None)
                continue
            if conditional and (
                (rule_until is not None and (now is None or now > rule_until))
                or (needs_training and not training)
                or (needs_approval and not approval)
            ):
                if failed is None:
                    failed = (entry, rule)
                continue
            return allow
        if failed is not None:
            return _unmet(failed[0], failed[1], request)
        return self._refuse(request, place, outside=True)

    def _refuse(self, request: Request, place: _Place | None, outside: bool = False) -> Decision:
        """The default denial, with its reason: no grant, none covering, or no rule for the request.

        `outside`: rules name the action, but the request lies outside their limits (the reason
        then names the asset and addresses asked for).
        """
        subject = request.subject
        if place is not None:
            prefix = None if request.zone is None else place.get((request.zone, _REFUSAL))
            if prefix is None:
                prefix = place.get((None, _REFUSAL))
            if prefix is not None:
                name = request.action.partition(":")[2] or request.action
                reason = f"{prefix}{name}{_target(request)}" if outside else f"{prefix}{name}"
                return _new(Decision, (False, DEFAULT_DENY, reason))
        sites = self._entries.get((subject.kind, subject.id))
        if sites is None:
            reason = f"{subject} holds no grant"
        elif request.site not in sites:
            reason = f"{subject} holds no grant at site {request.site}"
        elif request.zone is None:
            reason = (
                f"{subject} holds grants only for zones of site {request.site}, none for the site as a whole"
            )
        else:
            reason = f"{subject} holds no grant covering zone {request.zone} of site {request.site}"
        return _new(Decision, (False, DEFAULT_DENY, reason))

    def _decide_slowly(self, request: Request) -> Decision:
        """The same procedure over the grant entries, for an action the snapshot does not know.

        (The overlay and the form of the request are checked already.)
        """
        subject = request.subject
        sites = self._entries.get((subject.kind, subject.id))
        entries = None if sites is None else sites.get(request.site)
        if entries is None:
            return self._refuse(request, None)
        now = request.now
        failed: tuple[_Entry, _Compiled | None] | None = None
        named = False
        for entry in entries:
            if entry.zone is not None and entry.zone != request.zone:
                continue
            for rule in entry.table.rules_for(request.action):
                named = True
                if rule.scoped and not _within(rule, request):
                    continue
                until = entry.valid_until
                if until is not None and (now is None or now > until):
                    if failed is None:
                        failed = (entry, None)
                    break  # the grant fails every rule it holds
                if rule.conditional and not _conditions_hold(rule, request):
                    if failed is None:
                        failed = (entry, rule)
                    continue
                return rule.allow
        if failed is not None:
            return _unmet(failed[0], failed[1], request)
        place = self._places.get((subject.kind, subject.id, request.site))
        return self._refuse(request, place, outside=named)


def _within(rule: _Compiled, request: Request) -> bool:
    if rule.zone is not None and rule.zone != request.zone:
        return False
    if rule.asset is not None and rule.asset != request.asset:
        return False
    if rule.starts is None:
        return True
    address = request.address
    if address is None:
        return False
    index = bisect_right(rule.starts, address) - 1
    return index >= 0 and address + request.quantity - 1 <= rule.ends[index]


def _conditions_hold(rule: _Compiled, request: Request) -> bool:
    if rule.valid_until is not None and (request.now is None or request.now > rule.valid_until):
        return False
    if rule.training and not request.training_current:
        return False
    return not (rule.approval and not request.approval_given)


def _malformed(request: Request) -> Decision:
    if request.quantity < 1:
        problem = f"quantity {request.quantity} (at least 1)"
    elif request.address is not None and request.address < 0:
        problem = f"address {request.address} (not negative)"
    else:
        problem = "a time without a time zone"
    return Decision(False, DEFAULT_DENY, f"the request is malformed: {problem}")


def _unmet(entry: _Entry, rule: _Compiled | None, request: Request) -> Decision:
    if rule is None:
        return _new(Decision, (False, entry.name, entry.untimed if request.now is None else entry.expired))
    now = request.now
    if rule.valid_until is not None and now is None:
        reason = rule.unmet[1]
    elif rule.valid_until is not None and now is not None and now > rule.valid_until:
        reason = rule.unmet[0]
    elif rule.training and not request.training_current:
        reason = rule.unmet[2]
    else:
        reason = rule.unmet[3]
    return _new(Decision, (False, rule.name, reason))


def _target(request: Request) -> str:
    asset = request.asset
    address = request.address
    if address is None:
        return "" if asset is None else f" on asset {asset}"
    on = "" if asset is None else f" on asset {asset}"
    if request.quantity == 1:
        return f"{on} at address {address}"
    return f"{on} at address {address}-{address + request.quantity - 1}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _where(site: str, zone: str | None) -> str:
    return f"site {site}" if zone is None else f"zone {zone} of site {site}"


def _describe_limits(zone: str | None, asset: str | None, ranges: tuple[Range, ...]) -> str:
    parts = []
    if zone is not None:
        parts.append(f"in zone {zone}")
    if asset is not None:
        parts.append(f"on asset {asset}")
    if ranges:
        spans = ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)
        parts.append(f"at addresses {spans}")
    return "".join(f" {part}" for part in parts)


def _describe_conditions(rule: Rule) -> str:
    needs = []
    if rule.conditions.requires_training:
        needs.append("current training")
    if rule.conditions.requires_approval:
        needs.append("an approval")
    text = f" with {' and '.join(needs)}" if needs else ""
    if rule.conditions.valid_until is not None:
        text += f" until {_iso(rule.conditions.valid_until)}"
    return text


@functools.lru_cache(maxsize=4096)
def _bounds(ranges: tuple[Range, ...]) -> tuple[tuple[Range, ...], tuple[int, ...] | None, tuple[int, ...]]:
    """Merged ranges and their sorted starts and ends; one object per distinct value, shared."""
    merged = merge_ranges(ranges)
    if not merged:
        return (), None, ()
    return merged, tuple(low for low, _ in merged), tuple(high for _, high in merged)


def _compile_rule(
    rule: Rule, role: str, site: str, grant_zone: str | None, holder: str, action: str
) -> _Compiled | None:
    """The rule for `action` under a grant of `role` at (site, grant_zone); None if it never applies."""
    limits = rule.scope
    if limits.site is not None and limits.site != site:
        return None
    zone = limits.zone
    if zone is not None and grant_zone is not None:
        if zone != grant_zone:
            return None
        zone = None  # the grant already confines the request to that zone
    ranges, starts, ends = _bounds(limits.ranges)
    scoped = zone is not None or limits.asset is not None or bool(ranges)
    conditions = rule.conditions
    name = f"role:{role}/{rule.id}"
    action_name = action.partition(":")[2]
    limits_text = _describe_limits(zone, limits.asset, ranges)
    reason = f"{holder} may {action_name}{limits_text}{_describe_conditions(rule)}"
    return _Compiled(
        scoped=scoped,
        zone=zone,
        asset=limits.asset,
        starts=starts,
        ends=ends,
        conditional=not conditions.unconditional,
        valid_until=conditions.valid_until,
        training=conditions.requires_training,
        approval=conditions.requires_approval,
        name=name,
        allow=Decision(True, name, reason),
        unmet=_unmet_reasons(rule, holder, action_name),
    )


def _unmet_reasons(rule: Rule, holder: str, name: str) -> tuple[str, str, str, str]:
    """The reasons a rule's conditions give when unmet, written once (shared when unconditional)."""
    conditions = rule.conditions
    if conditions.unconditional:
        return _NO_REASONS
    until = "" if conditions.valid_until is None else _iso(conditions.valid_until)
    return (
        f"{holder} could {name} only until {until}" if until else "",
        f"{holder} may {name} only until {until}, and the request states no time" if until else "",
        f"{holder} may {name} only with current training, and the training is not current"
        if conditions.requires_training
        else "",
        f"{holder} may {name} only with an approval, and none was given"
        if conditions.requires_approval
        else "",
    )


_NO_REASONS = ("", "", "", "")


_Expanded = tuple[tuple[Rule, tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]], ...]


def _expand_role(role: Role, universe: frozenset[str]) -> _Expanded:
    """Each rule of `role` with the known actions it names (sorted) and its parsed patterns."""
    expanded = []
    for rule in role.rules:
        patterns = tuple(parse_pattern(a) for a in sorted(rule.actions) if "*" in a)
        actions = {a for a in rule.actions if "*" not in a}
        for candidate in universe:
            namespace, _, name = candidate.partition(":")
            segments = tuple(name.split("."))
            if any(ns == namespace and segments_match(p, segments) for ns, p in patterns):
                actions.add(candidate)
        expanded.append((rule, tuple(sorted(actions)), patterns))
    return tuple(expanded)


def _build_table(role: Role, expanded: _Expanded, site: str, zone: str | None) -> _Table:
    holder = f"{role.name} of {_where(site, zone)}"
    by_action: dict[str, list[_Compiled]] = {}
    for rule, actions, _ in expanded:
        for action in actions:
            compiled = _compile_rule(rule, role.name, site, zone, holder, action)
            if compiled is not None:
                by_action.setdefault(action, []).append(compiled)
    return _Table(
        role=role.name,
        site=site,
        zone=zone,
        holder=holder,
        by_action=MappingProxyType({action: tuple(rules) for action, rules in by_action.items()}),
        patterns=tuple((rule, patterns) for rule, _, patterns in expanded if patterns),
    )


def _entry(grant: Grant, table: _Table) -> _Entry:
    where = _where(grant.site, grant.zone)
    until = "" if grant.valid_until is None else _iso(grant.valid_until)
    return _Entry(
        zone=grant.zone,
        valid_until=grant.valid_until,
        name=f"grant:{grant.role}@{grant.site}" + ("" if grant.zone is None else f"/{grant.zone}"),
        table=table,
        expired=f"the {grant.role} grant of {grant.subject} at {where} expired at {until}",
        untimed=f"the {grant.role} grant of {grant.subject} at {where} is valid until {until},"
        " and the request states no time",
    )


def compile_policy(model: PolicyModel) -> PolicySnapshot:
    """Validate `model` and compile it into a `PolicySnapshot`; `InvalidPolicy` names any fault."""
    roles = _validated_roles(model.roles)
    grants = _canonical_grants(model.grants, roles)
    named = {a for role in roles.values() for rule in role.rules for a in rule.actions if "*" not in a}
    universe = frozenset(KNOWN_ACTIONS | named)
    expanded = {name: _expand_role(role, universe) for name, role in roles.items()}
    tables: dict[tuple[str, str, str | None], _Table] = {}
    entries: dict[tuple[str, str], dict[str, list[_Entry]]] = {}
    for grant in grants:
        table_key = (grant.role, grant.site, grant.zone)
        table = tables.get(table_key)
        if table is None:
            table = tables[table_key] = _build_table(
                roles[grant.role], expanded[grant.role], grant.site, grant.zone
            )
        by_site = entries.setdefault((grant.subject.kind, grant.subject.id), {})
        by_site.setdefault(grant.site, []).append(_entry(grant, table))
    shared: dict[Any, Any] = {}  # one object per distinct key and text, so that they stay in the cache
    places = {
        (kind, ident, site): _place(site_entries, shared)
        for (kind, ident), sites in entries.items()
        for site, site_entries in sites.items()
    }
    return PolicySnapshot(
        version=policy_version(roles, grants),
        roles=MappingProxyType(dict(roles)),
        grants=grants,
        actions=universe,
        _entries=MappingProxyType(
            {
                key: MappingProxyType({site: tuple(listed) for site, listed in sites.items()})
                for key, sites in entries.items()
            }
        ),
        _places=MappingProxyType(places),
    )


def _place(entries: list[_Entry], shared: dict[Any, Any]) -> _Place:
    """The candidates of one subject at one site, per (zone or None, action), in canonical order.

    A zone's list is the whole-site grants' candidates followed by that zone's; a list stops at
    the first candidate that allows unconditionally, and is that candidate's Decision when it is
    the first.
    """
    whole_site = [entry for entry in entries if entry.zone is None]
    by_zone: dict[str, list[_Entry]] = {}
    for entry in entries:
        if entry.zone is not None:
            by_zone.setdefault(entry.zone, []).append(entry)
    place: dict[tuple[str | None, object], _Answer | str] = {}
    groups: list[tuple[str | None, list[_Entry]]] = [(None, whole_site)] if whole_site else []
    groups += [(zone, whole_site + zone_entries) for zone, zone_entries in by_zone.items()]
    for zone, covering in groups:
        refusal = _refusal(covering)
        place[shared.setdefault((zone, _REFUSAL), (zone, _REFUSAL))] = shared.setdefault(refusal, refusal)
        for action in sorted({action for entry in covering for action in entry.table.by_action}):
            answer = _answer(covering, action)
            if answer is not None:
                place[shared.setdefault((zone, action), (zone, action))] = answer
    return _ReadOnlyDict(place)


def _refusal(entries: list[_Entry]) -> str:
    """The start of a default denial's reason for the grants covering a request."""
    texts = list(dict.fromkeys(entry.table.holder for entry in entries))
    return f"{texts[0]} may not " if len(texts) == 1 else f"none of {', '.join(texts)} may "


def _answer(entries: list[_Entry], action: str) -> _Answer | None:
    candidates: list[_Candidate] = []
    for entry in entries:
        for rule in entry.table.by_action.get(action, ()):
            candidates.append(
                (
                    rule.scoped,
                    rule.zone,
                    rule.asset,
                    rule.starts,
                    rule.ends,
                    entry.valid_until,
                    rule.conditional,
                    rule.valid_until,
                    rule.training,
                    rule.approval,
                    rule.allow,
                    rule,
                    entry,
                )
            )
            if not rule.scoped and not rule.conditional and entry.valid_until is None:
                return rule.allow if len(candidates) == 1 else tuple(candidates)
    return tuple(candidates) if candidates else None


def policy_version(roles: Mapping[str, Role], grants: Iterable[Grant]) -> str:
    """SHA-256 (hex) of the canonical serialisation of roles and grants (see `FORMAT`)."""
    document = {
        "format": FORMAT,
        "roles": [_role_document(roles[name]) for name in sorted(roles)],
        "grants": sorted(
            {
                (
                    grant.subject.kind,
                    grant.subject.id,
                    grant.role,
                    grant.site,
                    grant.zone,
                    None if grant.valid_until is None else _iso(grant.valid_until),
                )
                for grant in grants
            },
            key=json.dumps,
        ),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_no_json)
    return hashlib.sha256(text.encode()).hexdigest()


def _no_json(value: object) -> Any:
    raise TypeError(f"not serialisable: {value!r}")


def _role_document(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "description": role.description,
        "rules": [
            {
                "id": rule.id,
                "actions": sorted(rule.actions),
                "scope": {
                    "site": rule.scope.site,
                    "zone": rule.scope.zone,
                    "asset": rule.scope.asset,
                    "ranges": [list(r) for r in merge_ranges(rule.scope.ranges)],
                },
                "conditions": {
                    "valid_until": None
                    if rule.conditions.valid_until is None
                    else _iso(rule.conditions.valid_until),
                    "requires_training": rule.conditions.requires_training,
                    "requires_approval": rule.conditions.requires_approval,
                },
            }
            for rule in role.rules
        ],
    }


# --- validation -------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _grant_order(grant: Grant) -> tuple[Any, ...]:
    """Canonical order: by subject and site, whole-site grants first, then zone, role, valid-until."""
    return (
        grant.subject.kind,
        grant.subject.id,
        grant.site,
        grant.zone is not None,
        grant.zone or "",
        grant.role,
        grant.valid_until is not None,
        grant.valid_until or _EPOCH,
    )


def _canonical_grants(grants: Iterable[Grant], roles: Mapping[str, Role]) -> tuple[Grant, ...]:
    unique: dict[tuple[Any, ...], Grant] = {}
    moments: dict[datetime, datetime] = {}  # one object per instant, shared by the grants
    for grant in grants:
        _check_grant(grant, roles)
        until = None if grant.valid_until is None else grant.valid_until.astimezone(UTC)
        if until is not None:
            until = moments.setdefault(until, until)
        normal = Grant(grant.subject, grant.role, grant.site, grant.zone, until)
        unique.setdefault(_grant_order(normal), normal)
    return tuple(unique[key] for key in sorted(unique))


def _check_grant(grant: Grant, roles: Mapping[str, Role]) -> None:
    subject = grant.subject
    if not isinstance(subject, Subject) or subject.kind not in SUBJECT_KINDS or not _text(subject.id):
        raise InvalidPolicy(
            f"a grant of {grant.role!r} names {subject!r}: a subject is a user, cert_role or address"
            " with a non-empty id",
            details={"role": grant.role},
        )
    if grant.role not in roles:
        raise UnknownRole(
            f"the grant of {grant.role!r} to {subject} names a role the model does not define"
            f" (known: {', '.join(sorted(roles))})",
            details={"role": grant.role, "subject": str(subject)},
        )
    if not _text(grant.site) or (grant.zone is not None and not _text(grant.zone)):
        raise InvalidPolicy(
            f"the grant of {grant.role} to {subject} needs a site (and, when given, a zone) that is"
            " not empty",
            details={"role": grant.role, "subject": str(subject)},
        )
    _check_moment(grant.valid_until, f"the grant of {grant.role} to {subject}")


def _validated_roles(roles: Mapping[str, Role]) -> Mapping[str, Role]:
    for name, role in roles.items():
        if not isinstance(role, Role) or role.name != name:
            raise InvalidPolicy(
                f"the role under {name!r} must be a Role named {name!r}", details={"role": name}
            )
        if not _identifier(name):
            raise InvalidPolicy(
                f"role name {name!r} must be non-empty, without spaces, '/', '@' or ':'",
                details={"role": name},
            )
        seen: set[str] = set()
        for rule in role.rules:
            _check_rule(role, rule, seen)
    return roles


def _check_rule(role: Role, rule: Rule, seen: set[str]) -> None:
    where = f"rule {rule.id!r} of role {role.name}"
    if not _identifier(rule.id):
        raise InvalidPolicy(f"{where}: a rule id must be non-empty, without spaces, '/', '@' or ':'")
    if rule.id in seen:
        raise InvalidPolicy(f"{where}: the id is used twice in the role", details={"role": role.name})
    seen.add(rule.id)
    if not rule.actions:
        raise InvalidPolicy(f"{where} names no action", details={"role": role.name, "rule": rule.id})
    for name in sorted(rule.actions):
        try:
            parse_pattern(name)
        except InvalidAction as error:
            raise InvalidAction(
                f"{where}: {error.message}", details={**error.details, "rule": rule.id}
            ) from None
    limits = rule.scope
    if not isinstance(limits, ScopePattern):
        raise InvalidPolicy(f"{where}: its scope must be a ScopePattern")
    for label, value in (("site", limits.site), ("zone", limits.zone), ("asset", limits.asset)):
        if value is not None and not _text(value):
            raise InvalidPolicy(f"{where}: the {label} limit, when given, must not be empty")
    _check_ranges(where, limits.ranges)
    _check_moment(rule.conditions.valid_until, where)


def _check_ranges(where: str, ranges: tuple[Range, ...]) -> None:
    for item in ranges:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not all(isinstance(bound, int) and not isinstance(bound, bool) for bound in item)
            or item[0] < 0
            or item[0] > item[1]
        ):
            raise InvalidRange(
                f"{where}: range {item!r} is not (first, last) with 0 <= first <= last",
                details={"range": repr(item)},
            )
    ordered = sorted(ranges)
    for previous, item in pairwise(ordered):
        if item[0] <= previous[1]:
            raise InvalidRange(
                f"{where}: ranges {previous[0]}-{previous[1]} and {item[0]}-{item[1]} overlap",
                details={"ranges": [list(previous), list(item)]},
            )


def _check_moment(moment: datetime | None, where: str) -> None:
    if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
        raise InvalidPolicy(f"{where}: valid-until must be a timezone-aware datetime, not {moment!r}")


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value == value.strip()


def _identifier(value: object) -> bool:
    return _text(value) and not any(c in str(value) for c in " /@:\t\n")
