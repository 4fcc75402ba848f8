"""The reference for the rule engine: one record at a time, in plain Python.

Records are dictionaries (as `RecordBatch.rows()` gives them, plus the derived fields); addresses
are tested with `ipaddress`, values with Python comparisons, the condition by walking its tree.
Count rules keep a dict of (site, segment, group values, window) to a list or set, like a reader
of the format would write them. Slow on purpose: it is what the compiled masks are checked
against.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from typing import Any

from plantwarden.detection.rules.condition import And, Expression, Name, Not
from plantwarden.detection.rules.fields import ROLES, FieldType
from plantwarden.detection.rules.model import Match, Rule


def _address(value: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    parsed = ipaddress.IPv6Address(value.ljust(16, b"\0"))  # tolist() drops trailing NULs
    return parsed.ipv4_mapped or parsed


def _equal(match: Match, value: Any, wanted: Any) -> bool:
    if match.field.type is FieldType.ADDRESS:
        host = _address(value)
        return bool(host.version == wanted.version and host in wanted)
    if match.field.type is FieldType.ROLE:
        return bool(ROLES[value] == wanted)
    return bool(value == wanted)


def test(match: Match, record: Mapping[str, Any]) -> bool:
    """One field test on one record."""
    value = record[match.field.name]
    if match.test == "eq":
        return any(_equal(match, value, wanted) for wanted in match.values)
    if match.test == "not":
        return not any(_equal(match, value, wanted) for wanted in match.values)
    if isinstance(value, float) and math.isnan(value):
        return False
    if match.test == "range":
        return bool(match.values[0] <= value <= match.values[1])
    bound = match.values[0]
    return bool(
        {"gte": value >= bound, "gt": value > bound, "lte": value <= bound, "lt": value < bound}[match.test]
    )


def holds(rule: Rule, expression: Expression, record: Mapping[str, Any]) -> bool:
    """Whether the condition holds for one record."""
    if isinstance(expression, Name):
        return all(test(m, record) for m in rule.selections[expression.name])
    if isinstance(expression, Not):
        return not holds(rule, expression.operand, record)
    if isinstance(expression, And):
        return holds(rule, expression.left, record) and holds(rule, expression.right, record)
    return holds(rule, expression.left, record) or holds(rule, expression.right, record)


def matches(rule: Rule, record: Mapping[str, Any]) -> bool:
    """Whether the rule's condition selects the record."""
    return holds(rule, rule.condition, record)


class ReferenceCounts:
    """A count rule's groups, one record at a time; `fired` lists (group, window) as they fire."""

    def __init__(self, rule: Rule) -> None:
        assert rule.count is not None
        self.rule = rule
        self.seen: dict[tuple[Any, ...], set[Any] | list[Any]] = {}
        self.fired: list[tuple[Any, ...]] = []
        self.done: set[tuple[Any, ...]] = set()

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        count = self.rule.count
        assert count is not None
        for record in records:
            if not matches(self.rule, record):
                continue
            key = (record["site"], record["segment"], *(record[f.name] for f in count.by))
            key = (*key, record["ts"] // count.window_ns)
            if count.distinct is not None:
                found = self.seen.setdefault(key, set())
                assert isinstance(found, set)
                found.add(record[count.distinct.name])
            else:
                listed = self.seen.setdefault(key, [])
                assert isinstance(listed, list)
                listed.append(record)
            if len(self.seen[key]) >= count.min and key not in self.done:
                self.done.add(key)
                self.fired.append(key)
