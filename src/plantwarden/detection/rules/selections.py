"""Reading a rule's `detection:`: its named selections (field tests) and its `count:`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plantwarden.detection.rules.fields import ORDERED, Field, FieldType
from plantwarden.detection.rules.model import MODIFIERS, Count, Match
from plantwarden.detection.rules.values import ValueProblem, network, rule_value
from plantwarden.zones.plant.source import Path, Problem, Source

SELECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = frozenset({"condition", "count", "and", "or", "not"})
_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
MAX_WINDOW_NS = 7 * 24 * _UNIT_NS["h"]
MAX_VALUES = 10_000


@dataclass
class RuleReader:
    """Reads parts of one rule, reporting problems at their position (paths relative to the rule)."""

    source: Source
    base: Path
    problems: list[Problem]

    def report(self, path: Path, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.problem((*self.base, *path), message, key=key))

    def text(self, data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.report((), f"a rule needs {key}:")
            return ""
        if not isinstance(value, str):
            self.report((key,), f"{key} must be text")
            return ""
        return value.strip()

    def text_list(self, data: Mapping[str, Any], key: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.report((key,), f"{key} must be a list of text values")
            return []
        return [v.strip() for v in value]

    def mapping(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            self.report((key,) if key in data else (), f"a rule needs {key}: as a mapping")
            return {}
        return value

    def field_list(self, data: Mapping[str, Any], path: Path, fields: Mapping[str, Field]) -> list[Field]:
        value = data.get(str(path[-1]), [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list):
            self.report(path, "expected a field name or a list of field names")
            return []
        return [f for i, name in enumerate(value) if (f := self.field((*path, i), name, fields))]

    def field(self, path: Path, name: Any, fields: Mapping[str, Field]) -> Field | None:
        if isinstance(name, str) and name in fields:
            return fields[name]
        self.report(path, f"unknown field {name!r} (fields: {', '.join(fields)})")
        return None


def read_selections(
    reader: RuleReader, detection: dict[str, Any], fields: Mapping[str, Field]
) -> dict[str, tuple[Match, ...]]:
    """The named selections of `detection:` (every key but condition and count)."""
    found: dict[str, tuple[Match, ...]] = {}
    for name, body in detection.items():
        if name in ("condition", "count"):
            continue
        path = ("detection", name)
        if not SELECTION_NAME.fullmatch(name) or name in RESERVED:
            reader.report(
                path, f"{name!r} cannot name a selection (letters, digits, _; not and/or/not)", key=True
            )
            continue
        if not isinstance(body, dict) or not body:
            reader.report(path, "a selection is a mapping of field: value(s), all of which must match")
            continue
        matches = [
            m for key, value in body.items() if (m := _match(reader, (*path, key), key, value, fields))
        ]
        if len(matches) == len(body):
            found[name] = tuple(matches)
    if not found and not reader.problems:
        reader.report(("detection",), "detection needs at least one selection")
    return found


def _match(reader: RuleReader, path: Path, key: str, value: Any, fields: Mapping[str, Field]) -> Match | None:
    name, _, modifier = key.partition("|")
    field = reader.field(path, name, fields)
    if field is None:
        return None
    if modifier and modifier not in MODIFIERS:
        reader.report(path, f"unknown modifier {modifier!r} (modifiers: {', '.join(MODIFIERS)})", key=True)
        return None
    try:
        return match(field, modifier, value)
    except ValueProblem as problem:
        reader.report(path, str(problem))
        return None


def match(field: Field, modifier: str, value: Any) -> Match:
    """The test `field|modifier: value`; `ValueProblem` when the value or modifier does not fit."""
    if modifier in ("gte", "gt", "lte", "lt", "range") and field.type not in ORDERED:
        raise ValueProblem(f"|{modifier} compares numbers; {field.name} is {field.type.value}")
    if modifier == "cidr" and field.type is not FieldType.ADDRESS:
        raise ValueProblem(f"|cidr is for addresses (src_addr, dst_addr), not {field.name}")
    if modifier == "range":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueProblem(f"{field.name}|range takes [low, high]")
        low, high = (rule_value(field, v) for v in value)
        if low > high:
            raise ValueProblem(f"{field.name}|range: {low} is above {high}")
        return Match(field, "range", (low, high))
    if modifier in ("gte", "gt", "lte", "lt"):
        if isinstance(value, list):
            raise ValueProblem(f"{field.name}|{modifier} takes one number")
        return Match(field, modifier, (rule_value(field, value),))
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES:
        raise ValueProblem(f"{field.name} needs 1 to {MAX_VALUES:,} values")
    parse = network if modifier == "cidr" else rule_value
    parsed = tuple(dict.fromkeys(parse(field, v) for v in values))
    return Match(field, "not" if modifier == "not" else "eq", parsed)


def read_count(reader: RuleReader, detection: dict[str, Any], fields: Mapping[str, Field]) -> Count | None:
    """`count:` (window, by, distinct, min), or None when the rule fires on every record."""
    if "count" not in detection:
        return None
    body = detection["count"]
    path: Path = ("detection", "count")
    if not isinstance(body, dict):
        reader.report(path, "count: is a mapping (window:, by:, distinct:, min:)")
        return None
    for key in sorted(set(body) - {"window", "by", "distinct", "min"}):
        reader.report((*path, key), f"unknown key {key!r} in count (window, by, distinct, min)", key=True)
    window = _duration(reader, (*path, "window"), body.get("window"))
    by = reader.field_list(body, (*path, "by"), fields)
    distinct = reader.field((*path, "distinct"), body["distinct"], fields) if "distinct" in body else None
    least = body.get("min")
    if isinstance(least, bool) or not isinstance(least, int) or least < 1:
        reader.report((*path, "min"), "count needs min: a whole number of 1 or more")
        return None
    return Count(window, tuple(by), distinct, least) if window else None


def _duration(reader: RuleReader, path: Path, value: Any) -> int:
    found = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None or int(found.group(1)) == 0:
        reader.report(path, f"window is a duration such as 30s, 5m or 1h, not {value!r}")
        return 0
    window = int(found.group(1)) * _UNIT_NS[found.group(2)]
    if window > MAX_WINDOW_NS:
        reader.report(path, "a count window is at most a week (168h)")
        return 0
    return window
