"""`RuleEngine`: rules compiled once, every batch checked against all of them.

Each rule's condition is evaluated as masks over the batch (`compile`); the tests shared between
rules are computed once per batch. A rule without `count` reports its matching records grouped
by its `dedup` fields (one `Detection` per group and batch: the live tee merges them before
raising alerts); a count rule keeps its groups' counts across batches (`counting`). The engine
is pure: roles, maintenance windows and registers' safe ranges come from `Providers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.detection.rules.compile import BatchView, CompiledRule, Providers
from plantwarden.detection.rules.counting import CountTracker
from plantwarden.detection.rules.detection import Detection, severity_of
from plantwarden.detection.rules.grouping import display, group
from plantwarden.detection.rules.model import Rule
from plantwarden.detection.rules.samples import hosts_of, sample_rows

Array = npt.NDArray[Any]


class RuleEngine:
    """Rules over record batches; keeps the state of count rules between `check` calls."""

    def __init__(
        self, rules: Sequence[Rule], providers: Providers | None = None, *, samples: int = 5
    ) -> None:
        self.rules = tuple(rules)
        self.providers = providers or Providers()
        self.samples = samples
        self.compiled = [CompiledRule(rule) for rule in self.rules]
        self.trackers = {r.id: CountTracker(r, samples=samples) for r in self.rules if r.count is not None}
        self.by_kind: dict[str, list[CompiledRule]] = {}
        for compiled in self.compiled:
            self.by_kind.setdefault(compiled.rule.kind.name, []).append(compiled)
        self.checked = 0

    def check(self, batch: RecordBatch, derived: Mapping[str, Array] | None = None) -> list[Detection]:
        """The detections of one batch. `derived` may give derived fields outright (`src_role` as
        role codes, `maintenance` and `out_of_range` as booleans), instead of asking the providers."""
        rules = self.by_kind.get(batch.kind.name, [])
        if not rules or not len(batch):
            return []
        self.checked += len(batch)
        view = BatchView(batch, self.providers, derived)
        found: list[Detection] = []
        for compiled in rules:
            rows = np.flatnonzero(compiled.mask(view))
            if not len(rows):
                continue
            outside = _outside(view, compiled, rows)
            tracker = self.trackers.get(compiled.rule.id)
            if tracker is not None:
                found += tracker.update(view, rows, outside)
            else:
                found += self._matches(view, compiled.rule, rows, outside)
        return found

    def _matches(self, view: BatchView, rule: Rule, rows: Array, outside: Array) -> list[Detection]:
        """One detection per dedup group of a plain rule's matching records."""
        names = ("site", "segment", *(f.name for f in rule.dedup))
        groups = group(view, names, rows)
        ts = view.column("ts")[rows]
        outsides = np.bincount(groups.number, weights=outside, minlength=len(groups)).astype(np.int64)
        order = np.argsort(groups.number, kind="stable")
        found = []
        for g, members in enumerate(np.split(order, np.cumsum(groups.count)[:-1])):
            first_row = int(rows[groups.first[g]])
            values = [display(view, name, first_row) for name in names]
            samples = sample_rows(view, rows[members[: self.samples]])
            times = ts[members]
            found.append(
                Detection(
                    rule=rule,
                    site=str(values[0]),
                    segment=str(values[1]),
                    group=tuple(zip(names[2:], values[2:], strict=True)),
                    count=len(members),
                    records=len(members),
                    first_ns=int(times.min()),
                    last_ns=int(times.max()),
                    samples=tuple(samples),
                    severity=severity_of(rule, int(outsides[g])),
                    outside=int(outsides[g]),
                    hosts=hosts_of(samples),
                )
            )
        return found

    def by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def dropped(self) -> int:
        """Records of count rules not counted because a rule held too many groups."""
        return sum(t.dropped for t in self.trackers.values())


def _outside(view: BatchView, compiled: CompiledRule, rows: Array) -> Array:
    """Per matching row, 1 when it lies outside every maintenance window (0 inside)."""
    if not compiled.needs_maintenance:
        return np.ones(len(rows), dtype=np.int64)
    return (~view.column("maintenance")[rows]).astype(np.int64)
