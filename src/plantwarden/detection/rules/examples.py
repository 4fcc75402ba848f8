"""Running a rule's examples: each one a fresh engine over a batch built from its records.

A record gives any subset of the kind's fields; the others take the kind's defaults (0, -1 for
unit, address and response time, NaN for the value, empty text and address). Derived fields
given in a record stand in for the providers (roles as names, maintenance as true/false).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import ADDRESS_DTYPE, TEXT, RecordKind
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.fields import DERIVED, ROLE_CODES, UNKNOWN_ROLE
from plantwarden.detection.rules.model import Rule

Array = npt.NDArray[Any]
MINUS_ONE = frozenset({"unit", "address", "response_ns"})


@dataclass(frozen=True)
class ExampleResult:
    """One example of a rule: whether it should fire, and whether it did."""

    rule: Rule
    positive: bool
    index: int
    fired: bool

    @property
    def passed(self) -> bool:
        return self.fired == self.positive

    def __str__(self) -> str:
        which = "positive" if self.positive else "negative"
        verdict = "pass" if self.passed else "FAIL"
        did = "fired" if self.fired else "did not fire"
        return f"{verdict}  {self.rule.id} {which}[{self.index}]: {did} ({self.rule.where})"


def default_of(kind: RecordKind, name: str) -> Any:
    """The value a record of `kind` has in a field an example leaves out."""
    dtype = kind.dtype_of(name)
    if dtype == TEXT:
        return ""
    if dtype == ADDRESS_DTYPE:
        return bytes(16)
    if dtype.kind == "f":
        return math.nan
    return -1 if name in MINUS_ONE else 0


def example_batch(
    kind: RecordKind, records: Sequence[Mapping[str, Any]]
) -> tuple[RecordBatch, dict[str, Array]]:
    """The batch of an example's records, and the derived fields they give."""
    columns = {name: [r.get(name, default_of(kind, name)) for r in records] for name in kind.names}
    batch = RecordBatch.build(kind, columns)
    derived: dict[str, Array] = {}
    for name in DERIVED:
        if any(name in r for r in records):
            derived[name] = _derived(name, [r.get(name) for r in records])
    return batch, derived


def _derived(name: str, values: list[Any]) -> Array:
    if name in ("src_role", "dst_role"):
        return np.array([ROLE_CODES[v] if v else UNKNOWN_ROLE for v in values], dtype=np.uint8)
    return np.array([bool(v) for v in values], dtype=bool)


def fires(rule: Rule, records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rule, on a fresh engine, fires over these records (in one batch, time order)."""
    batch, derived = example_batch(rule.kind, records)
    order = np.argsort(batch["ts"], kind="stable")
    batch = batch.take(order)
    derived = {name: column[order] for name, column in derived.items()}
    return bool(RuleEngine([rule]).check(batch, derived))


def run_examples(rule: Rule) -> list[ExampleResult]:
    """Every example of the rule, positive first."""
    results = []
    for positive, examples in ((True, rule.examples.positive), (False, rule.examples.negative)):
        for index, records in enumerate(examples):
            results.append(ExampleResult(rule, positive, index, fires(rule, records)))
    return results
