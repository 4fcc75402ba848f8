"""Facts: every value an attribute of an asset has had, each with its source, confidence and time.

An attribute (vendor, firmware, hostname, ...) keeps one `Fact` per distinct value reported. The
same value reported again widens that fact's first and last time; the most confident report
names its source and confidence (ties: the earlier report, then the smaller source name, so the
result does not depend on the order reports arrive in).

Which value is current: the one with the highest confidence; among equals the most recently seen
(a firmware upgrade reported by the same dissector replaces the old revision); among those the
greater text (an arbitrary but fixed order). Every other value is history. The rule is the same
when two assets merge, so a merge never depends on which side absorbs the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One value of one attribute: what said it, how sure, first and last time it was reported."""

    value: str
    source: str
    confidence: float
    first_ns: int
    last_ns: int

    def joined(self, other: Fact) -> Fact:
        """This value reported again (`other` carries the same value)."""
        best = min(self, other, key=lambda fact: (-fact.confidence, fact.first_ns, fact.source))
        return Fact(
            self.value,
            best.source,
            best.confidence,
            min(self.first_ns, other.first_ns),
            max(self.last_ns, other.last_ns),
        )


def _rank(fact: Fact) -> tuple[float, int, str]:
    return (fact.confidence, fact.last_ns, fact.value)


class FactTable:
    """The facts of one asset, by attribute name and value (mutable; the asset book owns it)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Fact]] = {}

    def record(self, name: str, fact: Fact) -> None:
        """Add one report of attribute `name`."""
        values = self._values.setdefault(name, {})
        known = values.get(fact.value)
        values[fact.value] = fact if known is None else known.joined(fact)

    def absorb(self, other: FactTable) -> None:
        """Add every fact of `other` (the table of an asset merged into this one)."""
        for name, fact in other.all_facts():
            self.record(name, fact)

    def all_facts(self) -> Iterator[tuple[str, Fact]]:
        for name, values in self._values.items():
            for fact in values.values():
                yield name, fact

    def current_value(self, name: str) -> str:
        """The current value of attribute `name`, or "" if it has none."""
        values = self._values.get(name)
        return max(values.values(), key=_rank).value if values else ""

    def current(self) -> dict[str, Fact]:
        """The current fact of every attribute, by name in alphabetical order."""
        return {name: max(self._values[name].values(), key=_rank) for name in sorted(self._values)}

    def history(self) -> dict[str, tuple[Fact, ...]]:
        """The other facts of every attribute that has some, oldest first."""
        history = {}
        for name in sorted(self._values):
            current = max(self._values[name].values(), key=_rank)
            past = sorted(
                (fact for fact in self._values[name].values() if fact is not current),
                key=lambda fact: (fact.first_ns, fact.value),
            )
            if past:
                history[name] = tuple(past)
        return history
