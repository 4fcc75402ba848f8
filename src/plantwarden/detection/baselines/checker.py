"""Comparing what a batch shows with what was learned, and folding one into the other.

Pure functions over plain values (`facts.Observation` values and stored fact values):

- `merge_value` widens a learned value with an observed one (intervals joined, ranges widened,
  polling periods averaged by their interval counts): learning, and accepting a deviation
  (`accepted_value`: an accepted polling period replaces the learnt one);
- `compare` says how an observation breaks a learned fact, or None when it does not.

Tolerances: a polling period is changed when the median of the last `POLL_WINDOW` (5) intervals
seen is more than `POLL_TOLERANCE` (50 %) away from the learned median, and the learned median
rests on at least `POLL_WINDOW` intervals. The learnt period counts at most `POLL_INTERVALS_KEPT`
(100,000) intervals: past that, what is learnt moves it as a moving average would, and the count
stays a small number in the store. A setpoint breaks its fact when a written value lies
outside the learned [min, max] (no margin: a write outside what was ever written is what an
analyst wants to see), or, when the plant model gives the register a safe range, outside that
range (the safe range replaces the learned one; judged per record on the raw word as the rule
engine's `out_of_range` does, `rules.setpoints`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plantwarden.detection.baselines.facts import FactKey, FactKind
from plantwarden.detection.baselines.grouping import merge_intervals
from plantwarden.detection.baselines.keys import TABLES

POLL_WINDOW = 5
POLL_TOLERANCE = 0.5
POLL_INTERVALS_KEPT = 100_000


@dataclass(slots=True)
class Deviation:
    """A fact broken: its key, what was learned (None: the fact is new), what was seen, when, how
    often, the batch row of its first record, and sample records (filled by the caller)."""

    key: FactKey
    learned: dict[str, Any] | None
    observed: dict[str, Any]
    first_ns: int
    last_ns: int
    count: int
    reason: str
    scopes: tuple[str, ...]
    row: int = -1
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def new(self) -> bool:
        return self.learned is None


def merge_value(kind: FactKind, learned: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The learned value widened by what was seen (nothing seen: the learned value, a polling
    period's count of intervals bounded)."""
    if not seen and kind is not FactKind.POLLING:
        return dict(learned)
    if kind is FactKind.WRITTEN_RANGE:
        both = [*learned.get("ranges", []), *seen.get("ranges", [])]
        starts = np.array([r[0] for r in both], dtype=np.int64)
        return {"ranges": merge_intervals(starts, np.array([r[1] for r in both], dtype=np.int64))}
    if kind is FactKind.SETPOINT:
        merged = dict(learned)
        merged["min"] = min(float(learned.get("min", seen["min"])), float(seen["min"]))
        merged["max"] = max(float(learned.get("max", seen["max"])), float(seen["max"]))
        merged.pop("outside_safe", None)
        return merged
    if kind is FactKind.POLLING:
        old = min(int(learned.get("intervals", 0)), POLL_INTERVALS_KEPT)
        new = min(int(seen.get("intervals", 0)), POLL_INTERVALS_KEPT)
        if new == 0:
            return {**learned, "intervals": old} if "intervals" in learned else dict(learned)
        if old == 0:
            return {"median_ns": int(seen["median_ns"]), "intervals": new}
        mean = (int(learned["median_ns"]) * old + int(seen["median_ns"]) * new) // (old + new)
        return {"median_ns": mean, "intervals": min(old + new, POLL_INTERVALS_KEPT)}
    if kind is FactKind.SERVICE:
        return {**learned, **seen}
    return dict(learned)


def accepted_value(kind: FactKind, learned: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The value of a fact once an analyst accepts what was seen: a polling period replaces the
    learnt one (weighed against the intervals learnt, the few seen would not move it); any
    other value is widened by what was seen (`merge_value`)."""
    if kind is FactKind.POLLING and int(seen.get("median_ns", 0)) > 0:
        return {
            "median_ns": int(seen["median_ns"]),
            "intervals": max(int(seen.get("intervals", 0)), POLL_WINDOW),
        }
    return merge_value(kind, learned, seen)


def compare(kind: FactKind, learned: dict[str, Any], seen: dict[str, Any]) -> str | None:
    """Why `seen` breaks the learned fact, or None when it does not."""
    if kind is FactKind.WRITTEN_RANGE:
        outside = [r for r in seen.get("ranges", []) if not _covered(r, learned.get("ranges", []))]
        if outside:
            known = _ranges(learned.get("ranges", []))
            return f"registers written outside the learned ranges {known}: {_ranges(outside)}"
        return None
    if kind is FactKind.SETPOINT:
        safe = learned.get("safe")
        if safe is not None:
            if int(seen.get("outside_safe", 0)) > 0:
                return (
                    f"{seen['outside_safe']} writes (raw values {_span(seen)}) outside the register "
                    f"map's safe range [{safe[0]:g}, {safe[1]:g}] (engineering units)"
                )
            return None
        if seen["min"] < learned["min"] or seen["max"] > learned["max"]:
            low, high = learned["min"], learned["max"]
            return f"value written {_span(seen)} outside the learned range [{low:g}, {high:g}]"
        return None
    if kind is FactKind.POLLING:
        period, base = int(seen.get("median_ns", 0)), int(learned.get("median_ns", 0))
        if (
            int(seen.get("intervals", 0)) < POLL_WINDOW
            or int(learned.get("intervals", 0)) < POLL_WINDOW
            or base <= 0
        ):
            return None
        if abs(period - base) > POLL_TOLERANCE * base:
            return (
                f"polling period {period / 1e9:.3g} s over the last {POLL_WINDOW} reads, learned "
                f"{base / 1e9:.3g} s (more than {POLL_TOLERANCE:.0%} off)"
            )
        return None
    return None


def _covered(interval: list[int], ranges: list[list[int]]) -> bool:
    return any(low <= interval[0] and interval[1] <= high for low, high in ranges)


def _ranges(ranges: list[list[int]]) -> str:
    shown = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges[:10])
    return f"[{shown}{', ...' if len(ranges) > 10 else ''}]"


def _span(seen: dict[str, Any]) -> str:
    low, high = float(seen["min"]), float(seen["max"])
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def new_fact_reason(key: FactKey) -> str:
    """Why a fact never learned is a deviation, in words."""
    n = key.named()
    if key.kind is FactKind.ASSET:
        return f"new asset {n['address']}: never seen at site {key.site} while learning"
    edge = (
        f"{n.get('client')} -> {n.get('server')} (transport {n.get('transport')}, "
        f"port {n.get('port')}, protocol {n.get('protocol')})"
    )
    if key.kind is FactKind.EDGE:
        return f"new communication edge {edge}"
    if key.kind is FactKind.SERVICE:
        return f"new function code {n['function']} on {edge}"
    if key.kind is FactKind.WRITTEN_RANGE:
        space = TABLES[str(n["table"])][1]
        return f"first write to server {n['server']} unit {n['unit']} {space} (protocol {n['protocol']})"
    if key.kind is FactKind.POLLING:
        return (
            f"new polling of {n['server']} unit {n['unit']} address {n['address']} "
            f"(function {n['function']}) by {n['client']}"
        )
    return f"first write of {n['server']} unit {n['unit']} {TABLES[str(n['table'])][0]} {n['address']}"
