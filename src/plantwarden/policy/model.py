"""The policy model as data: subjects, scopes, actions, conditions, rules, roles and grants.

Everything here is an immutable value. A `PolicyModel` is what an administrator writes (today the
built-in roles of `policy.roles` and grants; later also the rights of plant.yaml);
`policy.compile.compile_policy` validates it and turns it into a `PolicySnapshot` that decides.

Actions live in two namespaces, so that a right in one never implies a right in the other:
`platform:<area>.<verb>` (the console and API: `platform:alerts.acknowledge`) and
`plant:<protocol>.<operation>` (what reaches a controller: `plant:modbus.write`). A rule names
exact actions or patterns within one namespace: `*` as a segment matches one segment, and as the
last segment one or more (`platform:alerts.*`, `plant:*.read`, `plant:*`). No pattern crosses a
namespace, so a platform administrator is never allowed to write a PLC by that fact.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from plantwarden.policy.errors import InvalidAction

SubjectKind = Literal["user", "cert_role", "address"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("user", "cert_role", "address")


class Namespace(enum.StrEnum):
    """The two namespaces of actions."""

    PLATFORM = "platform"
    PLANT = "plant"


_SEGMENT = r"[a-z][a-z0-9_-]*"
_NAMESPACES = "|".join(n.value for n in Namespace)
_ACTION = re.compile(rf"(?:{_NAMESPACES}):{_SEGMENT}(?:\.{_SEGMENT})+")
_PATTERN = re.compile(rf"(?:{_NAMESPACES}):(?:{_SEGMENT}|\*)(?:\.(?:{_SEGMENT}|\*))*")

Action = str
"""An action as a string, `namespace:name` (for example "platform:alerts.read", "plant:modbus.write")."""


def action(namespace: Namespace | str, name: str) -> Action:
    """The action `name` (for example "alerts.read") in `namespace`, checked for form."""
    text = f"{namespace}:{name}"
    if not _ACTION.fullmatch(text):
        raise InvalidAction(
            f"{text!r} is not an action: expected platform:<area>.<verb> or plant:<protocol>.<operation>"
            " (lower-case segments)",
            details={"action": text},
        )
    return text


def is_action(text: str) -> bool:
    """Whether `text` is a well-formed exact action."""
    return _ACTION.fullmatch(text) is not None


def is_pattern(text: str) -> bool:
    """Whether `text` is an action pattern (well-formed, with at least one `*` segment)."""
    return "*" in text and _PATTERN.fullmatch(text) is not None


def parse_pattern(text: str) -> tuple[str, tuple[str, ...]]:
    """The namespace and segments of an exact action or pattern; `InvalidAction` when malformed."""
    if not (is_action(text) or is_pattern(text)):
        raise InvalidAction(
            f"{text!r} is neither an action (namespace:area.verb) nor a pattern such as"
            " 'platform:alerts.*' or 'plant:*.read'",
            details={"action": text},
        )
    namespace, _, name = text.partition(":")
    return namespace, tuple(name.split("."))


def segments_match(pattern: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Whether the action name's segments match the pattern's (`*` one segment; last `*` one or more)."""
    last = len(pattern) - 1
    for index, wanted in enumerate(pattern):
        if index >= len(name):
            return False
        if wanted == "*":
            if index == last:
                return True
        elif wanted != name[index]:
            return False
    return len(name) == len(pattern)


def action_matches(pattern: str, candidate: str) -> bool:
    """Whether the exact action `candidate` is named by `pattern` (an action or a pattern)."""
    if pattern == candidate:
        return True
    if "*" not in pattern or not is_action(candidate):
        return False
    namespace, segments = parse_pattern(pattern)
    candidate_namespace, _, name = candidate.partition(":")
    return namespace == candidate_namespace and segments_match(segments, tuple(name.split(".")))


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks: a user (by id), a certificate role (from a client certificate), or a source address."""

    kind: SubjectKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


Range = tuple[int, int]
"""An inclusive range of register or object addresses, (first, last)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where something is: a site, and optionally a zone, an asset and register/object ranges.

    None means "any" (or "not narrowed"); empty `ranges` means any address.
    """

    site: str
    zone: str | None = None
    asset: str | None = None
    ranges: tuple[Range, ...] = ()


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """The scope limits of a rule: each field, when set, must equal the request's (None = any).

    `ranges` are inclusive register/object ranges; when given, a request must name an address
    and its whole span (address .. address + quantity - 1) must lie within them. A limit that a
    request does not state (a zone limit and a request without a zone) does not match.
    """

    site: str | None = None
    zone: str | None = None
    asset: str | None = None
    ranges: tuple[Range, ...] = ()

    def covers(self, scope: Scope) -> bool:
        """Whether everything in `scope` lies within this pattern (used for listings, not decisions)."""
        if self.site is not None and scope.site != self.site:
            return False
        if self.zone is not None and scope.zone != self.zone:
            return False
        if self.asset is not None and scope.asset != self.asset:
            return False
        if not self.ranges:
            return True
        if not scope.ranges:
            return False
        return all(
            any(low <= first and last <= high for low, high in merge_ranges(self.ranges))
            for first, last in scope.ranges
        )


def merge_ranges(ranges: Sequence[Range]) -> tuple[Range, ...]:
    """Sort ranges and join those that touch ((0, 9) and (10, 19) become (0, 19)); no validation."""
    merged: list[Range] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class Conditions:
    """What must hold when a rule is used, beyond its scope.

    `valid_until` (timezone-aware) is the last instant the rule applies; `requires_training`:
    the subject's training must be current; `requires_approval`: an approval must be given (a
    change ticket, a second person).
    """

    valid_until: datetime | None = None
    requires_training: bool = False
    requires_approval: bool = False

    @property
    def unconditional(self) -> bool:
        """Whether nothing beyond scope is required."""
        return self.valid_until is None and not self.requires_training and not self.requires_approval


@dataclass(frozen=True, slots=True)
class Rule:
    """One right of a role: these actions, within these scope limits, under these conditions."""

    id: str
    actions: frozenset[str]
    scope: ScopePattern = field(default_factory=ScopePattern)
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of rules; a grant gives a subject a role at a site or in one of its zones."""

    name: str
    description: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    """`subject` holds `role` at `site`: in the whole site (zone None) or in one zone of it only.

    `valid_until` (timezone-aware), when set, is the last instant the grant applies.
    """

    subject: Subject
    role: str
    site: str
    zone: str | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyModel:
    """Roles by name and the grants of subjects; compiled by `compile_policy`."""

    roles: Mapping[str, Role]
    grants: Sequence[Grant]
