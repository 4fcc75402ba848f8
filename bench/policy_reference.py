"""A slow, obviously correct reference for policy decisions, written from docs/policy.md.

It reads the `PolicyModel` as given: no compiled tables, no expansion of patterns, no merged
ranges. Actions are matched with a regular expression built from each pattern, a register span
is checked address by address, and the grants of the subject are filtered and sorted on every
call. The benchmark and the property test compare `PolicySnapshot.decide` with it on
(allowed, rule).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from plantwarden.policy.compile import Request
from plantwarden.policy.model import Grant, PolicyModel, Rule, Subject

_SEGMENT = r"[a-z][a-z0-9_-]*"
_ACTION = re.compile(rf"(platform|plant):{_SEGMENT}(\.{_SEGMENT})+")


def action_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression for an exact action or a pattern (`*` one segment; last `*` one or more)."""
    namespace, _, name = pattern.partition(":")
    parts = name.split(".")
    pieces = []
    for index, part in enumerate(parts):
        if part != "*":
            pieces.append(re.escape(part))
        elif index == len(parts) - 1:
            pieces.append(rf"{_SEGMENT}(\.{_SEGMENT})*")
        else:
            pieces.append(_SEGMENT)
    return re.compile(re.escape(namespace) + ":" + r"\.".join(pieces))


def names(pattern: str, action: str) -> bool:
    """Whether `pattern` names `action`."""
    return _ACTION.fullmatch(action) is not None and action_regex(pattern).fullmatch(action) is not None


def _within(rule: Rule, request: Request) -> bool:
    limits = rule.scope
    if limits.site is not None and limits.site != request.site:
        return False
    if limits.zone is not None and limits.zone != request.zone:
        return False
    if limits.asset is not None and limits.asset != request.asset:
        return False
    if not limits.ranges:
        return True
    if request.address is None:
        return False
    return all(
        any(low <= address <= high for low, high in limits.ranges)
        for address in range(request.address, request.address + request.quantity)
    )


def _on_time(valid_until: datetime | None, now: datetime | None) -> bool:
    return valid_until is None or (now is not None and now <= valid_until)


def _order(grant: Grant) -> tuple[object, ...]:
    """Whole-site grants first, then by zone, role, and valid-until (none first, then earliest)."""
    until = grant.valid_until
    return (
        grant.zone is not None,
        grant.zone or "",
        grant.role,
        until is not None,
        until.astimezone(UTC) if until else datetime.min.replace(tzinfo=UTC),
    )


class ReferencePolicy:
    """The decision procedure of docs/policy.md, done the slow way."""

    def __init__(self, model: PolicyModel) -> None:
        self.model = model
        self.by_subject: dict[Subject, list[Grant]] = {}
        for grant in model.grants:
            self.by_subject.setdefault(grant.subject, []).append(grant)

    def decide(
        self,
        request: Request,
        quarantined_subjects: Collection[Subject] = (),
        quarantined_assets: Collection[tuple[str, str]] | Mapping[tuple[str, str], str] = (),
    ) -> tuple[bool, str]:
        """(allowed, deciding rule) for `request` with the given quarantines."""
        if request.subject in quarantined_subjects:
            return False, "deny:quarantine:subject"
        if (
            request.action.startswith("plant:")
            and request.asset is not None
            and (request.site, request.asset) in quarantined_assets
        ):
            return False, "deny:quarantine:asset"
        if (
            request.quantity < 1
            or (request.address is not None and request.address < 0)
            or (request.now is not None and request.now.tzinfo is None)
        ):
            return False, "default-deny"
        grants = sorted(
            {g for g in self.by_subject.get(request.subject, []) if g.site == request.site}, key=_order
        )
        candidates: list[tuple[Grant, Rule]] = []
        for grant in grants:
            if grant.zone is not None and grant.zone != request.zone:
                continue
            for rule in self.model.roles[grant.role].rules:
                if any(names(pattern, request.action) for pattern in rule.actions) and _within(rule, request):
                    candidates.append((grant, rule))
        for grant, rule in candidates:
            if (
                _on_time(grant.valid_until, request.now)
                and _on_time(rule.conditions.valid_until, request.now)
                and (request.training_current or not rule.conditions.requires_training)
                and (request.approval_given or not rule.conditions.requires_approval)
            ):
                return True, f"role:{grant.role}/{rule.id}"
        if not candidates:
            return False, "default-deny"
        grant, rule = candidates[0]
        if not _on_time(grant.valid_until, request.now):
            return False, f"grant:{grant.role}@{grant.site}" + (f"/{grant.zone}" if grant.zone else "")
        return False, f"role:{grant.role}/{rule.id}"
