"""The reference for the rule engine: one record at a time, in plain Python.

Records are dictionaries (as `RecordBatch.rows()` gives them, plus the derived fields); addresses
are tested with `ipaddress`, values with Python comparisons, the condition by walking its tree.
Count rules keep a dict of (site, segment, group values, window) to a list or set, like a reader
of the format would write them. Slow on purpose: it is what the compiled masks are checked
against. `out_of_range` is the derived field's reference: one record against the plant model's
register maps, with `struct` for the float words.
"""

from __future__ import annotations

import ipaddress
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from plantwarden.detection.rules.condition import And, Expression, Name, Not
from plantwarden.detection.rules.fields import ROLES, FieldType
from plantwarden.detection.rules.model import Match, Rule
from plantwarden.zones.plant.model import Register, SiteModel


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


def _register(record: Mapping[str, Any], sites: Sequence[SiteModel]) -> Register | None:
    host = _address(record["dst_addr"])
    for site in sites:
        if site.id != record["site"]:
            continue
        for asset in site.assets:
            if host in asset.addresses:
                return next((r for r in asset.registers if r.address == record["address"]), None)
    return None


def _bounds(register: Register, word: int) -> tuple[float, float] | None:
    """The least and greatest raw value the register can hold with `word` as its first register."""
    signed = word - 0x10000 if word >= 0x8000 else word
    if register.type in ("uint16", "int16"):
        raw = word if register.type == "uint16" else signed
        return float(raw), float(raw)
    if register.word_order != "big" or register.type not in ("uint32", "int32", "float32"):
        return None
    if register.type != "float32":
        high = word if register.type == "uint32" else signed
        return float(high * 65536), float(high * 65536 + 65535)
    low_word, high_word = (struct.unpack(">f", struct.pack(">HH", word, w))[0] for w in (0, 0xFFFF))
    return min(low_word, high_word), max(low_word, high_word)


def out_of_range(record: Mapping[str, Any], sites: Sequence[SiteModel]) -> bool:
    """Whether a protocol record writes a declared holding register outside its safe range."""
    value = record["value"]
    if record["protocol"] != 1 or record["function"] not in (6, 16) or math.isnan(value):
        return False
    if not (0 <= value <= 0xFFFF and value == int(value)) or record["address"] < 0:
        return False
    register = _register(record, sites)
    if register is None or register.kind != "holding" or register.safe_range is None or not register.scale:
        return False
    bounds = _bounds(register, int(value))
    if bounds is None:
        return False
    if not all(math.isfinite(b) for b in bounds):
        return True
    first, last = bounds[0] / register.scale, bounds[1] / register.scale
    return max(first, last) < register.safe_range[0] or min(first, last) > register.safe_range[1]
