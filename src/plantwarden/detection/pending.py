"""Violations kept until they are reported, with a bound on how many distinct ones are kept.

The zone check keeps one violation per (rule, site, segment, source, destination, operation,
window), and each becomes an alert. A sweep of an unzoned /16 or a scan from spoofed sources
makes one per pair: memory grows without bound and the store gets one alert per pair. So at most
`limit` distinct violations are kept one by one; past that, a new one is folded into one violation
per (rule, site, segment, destination, operation, window) from "many sources", and once `limit`
of those are kept too, into one from many sources to many destinations. Counts, first and last
times stay exact; the folded violation counts how many it took in (`Violation.folded`), keeps the
first sample records, and names a zone or an asset only when all it took in share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.violations import Violation

PENDING_LIMIT = 5000
"""Distinct violations kept one by one per report (and as many folded ones) by default."""
MANY_SOURCES = "many sources"
MANY_DESTINATIONS = "many destinations"
FOLDED_ENDPOINTS = frozenset({MANY_SOURCES, MANY_DESTINATIONS})
"""What stands for the endpoints of a folded violation, in place of an address."""

Key = tuple[str, str, str, str, str, str, int]


class PendingViolations:
    """Violations by key, at most `limit` distinct ones and `limit` folded ones (see the module)."""

    def __init__(self, samples: int, limit: int = PENDING_LIMIT) -> None:
        if limit < 1:
            raise InvalidInput(f"the limit of distinct violations kept must be at least 1, not {limit}")
        self.samples = samples
        self.limit = limit
        self.kept: dict[Key, Violation] = {}
        self.folds = 0
        self.folded = 0
        """Violations folded into others since this was made (the summaries report it)."""

    def __len__(self) -> int:
        return len(self.kept)

    def values(self) -> list[Violation]:
        """The violations kept, in the order their keys were first seen."""
        return list(self.kept.values())

    def add(self, found: Iterable[Violation]) -> None:
        """Add violations: to the one of the same key, else as a new one, else folded."""
        for violation in found:
            kept = self.kept.get(violation.key)
            if kept is not None:
                self.kept[violation.key] = kept.merged(violation, self.samples)
            elif len(self.kept) - self.folds < self.limit:
                self.kept[violation.key] = violation
            else:
                self._fold(violation)

    def take(self) -> list[Violation]:
        """The violations kept, forgotten (the folded count stays)."""
        found = self.values()
        self.kept.clear()
        self.folds = 0
        return found

    def _fold(self, violation: Violation) -> None:
        self.folded += 1
        dst = violation.dst
        if _key(violation, dst) not in self.kept and self.folds >= self.limit:
            dst = MANY_DESTINATIONS
        key = _key(violation, dst)
        kept = self.kept.get(key)
        if kept is None:
            self.folds += 1
            self.kept[key] = fold(violation, MANY_SOURCES, dst)
        else:
            self.kept[key] = kept.merged(fold(violation, MANY_SOURCES, dst), self.samples)


def _key(violation: Violation, dst: str) -> Key:
    """The key of the violation folded from many sources to `dst`."""
    v = violation
    return (v.rule, v.site, v.segment, MANY_SOURCES, dst, v.operation, v.window_start_ns)


def fold(violation: Violation, src: str, dst: str) -> Violation:
    """The violation standing for many: `src` and `dst` in place of its endpoints (an address, or
    `MANY_SOURCES` / `MANY_DESTINATIONS`), its sentence saying so."""
    sources = "many sources" if src == MANY_SOURCES else violation.src
    destinations = "many destinations" if dst == MANY_DESTINATIONS else violation.dst
    reason = (
        f"The same from {sources} to {destinations}, more distinct violations than are kept one by one,"
        f" counted together; the first: {violation.reason}"
    )
    return dataclasses.replace(
        violation,
        src=src,
        dst=dst,
        src_asset=violation.src_asset if src == violation.src else None,
        dst_asset=violation.dst_asset if dst == violation.dst else None,
        reason=reason,
        folded=violation.folded + 1,
    )
