"""A rule as values: what `format.read_rules` makes of a rule file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plantwarden.alerts.models import Severity
from plantwarden.core.records.schema import RecordKind
from plantwarden.detection.rules.condition import Expression
from plantwarden.detection.rules.fields import Field

MODIFIERS = ("in", "not", "gte", "gt", "lte", "lt", "cidr", "range")
"""Field modifiers (`field|modifier`); a plain field means equality, a list any of the values."""


@dataclass(frozen=True, slots=True)
class Match:
    """One field test of a selection: `eq` (any of `values`), `not` (none of them), `gte`, `gt`,
    `lte`, `lt` (one value), `range` (low and high, inclusive). Addresses hold networks."""

    field: Field
    test: str
    values: tuple[Any, ...]

    @property
    def key(self) -> tuple[str, str, tuple[Any, ...]]:
        """The same key for the same test in any rule (masks are shared per batch)."""
        return (self.field.name, self.test, self.values)


@dataclass(frozen=True, slots=True)
class Count:
    """Fire when, within a tumbling window of `window_ns` (aligned to the epoch), a group of
    `by` values counts at least `min` records (or distinct values of `distinct`)."""

    window_ns: int
    by: tuple[Field, ...]
    distinct: Field | None
    min: int


@dataclass(frozen=True, slots=True)
class Examples:
    """Records that must make the rule fire (each positive) or not (each negative); an example is
    the records of one run of a fresh engine, each a mapping of field to typed value."""

    positive: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    negative: tuple[tuple[Mapping[str, Any], ...], ...] = ()


@dataclass(frozen=True)
class Rule:
    """One detection rule."""

    id: str
    title: str
    kind: RecordKind
    severity: Severity
    selections: Mapping[str, tuple[Match, ...]]
    condition: Expression
    description: str = ""
    confidence: str = "medium"
    techniques: tuple[str, ...] = ()
    count: Count | None = None
    severity_in_maintenance: Severity | None = None
    dedup: tuple[Field, ...] = ()
    examples: Examples = field(default_factory=Examples)
    file: str = ""
    line: int = 1

    @property
    def fields(self) -> set[str]:
        """Every field the rule reads (selections, group-by, distinct, dedup)."""
        named = {m.field.name for matches in self.selections.values() for m in matches}
        if self.count is not None:
            named |= {f.name for f in self.count.by}
            named |= {self.count.distinct.name} if self.count.distinct else set()
        return named | {f.name for f in self.dedup}

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"
