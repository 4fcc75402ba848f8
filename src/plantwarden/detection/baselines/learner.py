"""A site's baselines in memory: scopes (learning or protecting) and their facts.

`Baseline.observe(observations)` learns what the scopes of each observation are still learning
and returns the deviations of those that protect. Scopes (`scoping.Scoper`): an asset fact
belongs to the site's `site` scope, so a new asset is a deviation once the site scope protects;
every other fact to the asset scope of its server (`asset:<address>`) and, when the plant model
puts its two ends in zones that a conduit joins, to that conduit's scope (`conduit:<id>`). A
fact is learned while none of its scopes protects; once one does, a fact never seen is a
deviation (except a new polling key or a new setpoint register: their writes and reads are
judged by the edge, service and written-range facts; they are learned quietly), and a known
fact whose value the observation breaks (`checker.compare`) is one.

A scope learns for `learning_ns` (7 days) from its first fact, measured on the records' own
time, so a capture replayed years later learns and protects as it did live; `promote(now_ns)`
turns due scopes to protecting, `protect(scope)` does it by hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from plantwarden.detection.baselines.checker import (
    POLL_WINDOW,
    Deviation,
    compare,
    merge_value,
    new_fact_reason,
)
from plantwarden.detection.baselines.facts import FactKey, FactKind, Observation, Observations, Plain

DAY_NS = 86_400 * 1_000_000_000
LEARNING_NS = 7 * DAY_NS
LEARNING, PROTECTING = "learning", "protecting"
SITE_SCOPE = "site"
QUIET_NEW = frozenset({FactKind.POLLING, FactKind.SETPOINT})
PLAIN = frozenset({FactKind.ASSET, FactKind.EDGE, FactKind.SERVICE})
"""Kinds without a value: once known, a sighting only counts."""
KEYS_KEPT = 1 << 20
"""At most this many plain keys are kept by the bytes of their fields (then forgotten at once)."""


@dataclass(slots=True)
class Fact:
    """A learned (or accepted) fact; `unsaved` counts the sightings not yet in the store, `delta`
    is what was learnt of its value since the last save (the save merges only that into the
    stored value, which already holds the rest)."""

    key: FactKey
    value: dict[str, Any]
    first_ns: int
    last_ns: int
    count: int
    scope: str
    conduit: str | None
    source: str = "learned"
    dirty: bool = True
    unsaved: int = 0
    delta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Scope:
    """One baseline: a site's asset, conduit or the site itself, learning or protecting."""

    site: str
    name: str
    state: str
    started_ns: int
    ends_ns: int
    generation: int = 0
    dirty: bool = True


@dataclass(slots=True)
class ScopeOf:
    """The scopes an observation belongs to, and the safe range of a written register if any."""

    scope: str
    conduit: str | None
    safe: tuple[float, float] | None = None


@dataclass
class Baseline:
    """The facts and scopes of one site (or several), with the learning rules above."""

    learning_ns: int = LEARNING_NS
    facts: dict[FactKey, Fact] = field(default_factory=dict)
    scopes: dict[tuple[str, str], Scope] = field(default_factory=dict)
    recent: dict[FactKey, deque[int]] = field(default_factory=dict)
    last_read: dict[FactKey, int] = field(default_factory=dict)
    latest_ns: int = 0
    """The newest record time `promote` has been given (the baseline's "now")."""
    keys: dict[tuple[FactKind, str, bytes], FactKey] = field(default_factory=dict, repr=False, compare=False)
    """Keys of plain facts by the bytes of their fields (`facts.Plain`): built once, not per batch."""

    def scope(self, site: str, name: str, first_ns: int) -> Scope:
        """The scope, created learning from `first_ns` if new."""
        found = self.scopes.get((site, name))
        if found is None:
            found = Scope(site, name, LEARNING, first_ns, first_ns + self.learning_ns)
            self.scopes[(site, name)] = found
        return found

    def promote(self, now_ns: int) -> list[Scope]:
        """Turn the learning scopes whose window is over to protecting; those turned."""
        self.latest_ns = max(self.latest_ns, now_ns)
        due = [s for s in self.scopes.values() if s.state == LEARNING and s.ends_ns <= now_ns]
        for scope in due:
            scope.state, scope.dirty = PROTECTING, True
        return due

    def protect(self, site: str, name: str | None = None) -> list[Scope]:
        """Protect one scope (or every learning scope of the site) now; those turned."""
        chosen = [
            s
            for s in self.scopes.values()
            if s.site == site and s.state == LEARNING and (name is None or s.name == name)
        ]
        for scope in chosen:  # learning ends at the newest record seen (at its start if none was)
            scope.state, scope.dirty = PROTECTING, True
            scope.ends_ns = min(scope.ends_ns, max(scope.started_ns, self.latest_ns))
        return chosen

    def observe(self, observations: Iterable[Observation], scoper: Scoping) -> list[Deviation]:
        """Learn or check each observation; the deviations found.

        The scopes of an observation (`scoper.of`) depend only on its kind, site, server, client
        and segment (and, for a setpoint, its register), so they are asked once per batch for
        each of those (setpoints every time)."""
        found: list[Deviation] = []
        facts = self.facts
        asked: dict[tuple[bool, str, str, str | None, str], ScopeOf] = {}
        scoped: dict[tuple[str, str, str | None], list[Scope]] = {}
        for seen in self._needed(observations):
            key = seen.key
            kind = key.kind
            known = facts.get(key)
            if known is not None and kind in PLAIN:  # nothing to learn or check: count it
                if seen.last_ns > known.last_ns:
                    known.last_ns = seen.last_ns
                known.count += seen.count
                known.unsaved += seen.count
                known.dirty = True
                continue
            if kind is FactKind.SETPOINT:
                where = scoper.of(seen)
            else:
                question = (kind is FactKind.ASSET, key.site, seen.server, seen.client, seen.segment)
                where = asked.get(question) or asked.setdefault(question, scoper.of(seen))
            first_ns, site = seen.first_ns, key.site
            named = (site, where.scope, where.conduit)
            scopes = scoped.get(named)
            if scopes is None:
                names = (where.scope,) if where.conduit is None else (where.scope, where.conduit)
                scopes = scoped[named] = [self.scope(site, name, first_ns) for name in names]
            # a fact whose first record predates the end of a scope's learning (a long flow,
            # reported when it ends) belongs to what the scope learned
            protecting = [s.name for s in scopes if s.state == PROTECTING and first_ns >= s.ends_ns]
            if kind is FactKind.SETPOINT and where.safe is not None:
                seen.value["safe"] = [where.safe[0], where.safe[1]]
            elif kind is FactKind.POLLING:
                self._with_gap(seen)
            if not protecting:
                self._learn(seen, where, known)
                continue
            deviation = self._one(seen, where, tuple(protecting), known)
            if deviation is not None:
                found.append(deviation)
        return found

    def _needed(self, observations: Iterable[Observation]) -> Iterator[Observation]:
        """The observations to learn or check, in order; of a batch's `facts.Observations`, the
        plain groups whose fact is known are counted here without building their observation."""
        if not isinstance(observations, Observations) or not observations.pending:
            yield from observations
            return
        facts, keys = self.facts, self.keys
        for part in observations.parts:
            if not isinstance(part, Plain):
                yield from part
                continue
            kind, site, highs, counts = part.kind, part.site, part.highs, part.counts
            for g, raw in enumerate(part.raws):
                key = keys.get((kind, site, raw))
                if key is None:
                    if len(keys) >= KEYS_KEPT:
                        keys.clear()
                    key = keys[(kind, site, raw)] = part.key(g)
                known = facts.get(key)
                if known is None:
                    yield part.make(g, key)
                    continue
                if highs[g] > known.last_ns:
                    known.last_ns = highs[g]
                known.count += counts[g]
                known.unsaved += counts[g]
                known.dirty = True

    def _with_gap(self, seen: Observation) -> None:
        """The interval from the previous batch's last read of the key to this batch's first: the
        batch's only interval when it holds one read, else kept aside (`gap_ns`) for the window
        of recent intervals (a pause between batches does not skew the batch's median)."""
        previous = self.last_read.get(seen.key)
        self.last_read[seen.key] = max(seen.last_ns, previous or seen.last_ns)
        if previous is None or seen.first_ns <= previous:
            return
        if int(seen.value.get("intervals", 0)) == 0:
            seen.value = {"median_ns": seen.first_ns - previous, "intervals": 1}
        else:
            seen.value["gap_ns"] = seen.first_ns - previous

    def _one(
        self, seen: Observation, where: ScopeOf, scopes: tuple[str, ...], fact: Fact | None
    ) -> Deviation | None:
        kind = seen.key.kind
        if fact is None:
            if kind in QUIET_NEW:
                if kind is FactKind.SETPOINT and where.safe is not None:
                    reason = compare(kind, {"safe": list(where.safe)}, seen.value)
                    if reason is not None:
                        return _deviation(seen, {"safe": list(where.safe)}, reason, scopes)
                self._learn(seen, where, None)
                return None
            return _deviation(seen, None, new_fact_reason(seen.key), scopes)
        observed = seen.value
        if kind is FactKind.POLLING:
            observed = self._recent_period(seen)
        if kind is FactKind.SETPOINT and where.safe is not None:
            fact.value["safe"] = list(where.safe)
        reason = compare(kind, fact.value, observed)
        if reason is None:
            fact.last_ns = max(fact.last_ns, seen.last_ns)
            fact.count += seen.count
            fact.unsaved += seen.count
            fact.dirty = True
            return None
        if kind is FactKind.POLLING:
            self.recent.pop(seen.key, None)
        return _deviation(seen, dict(fact.value), reason, scopes, observed)

    def _recent_period(self, seen: Observation) -> dict[str, Any]:
        """The median of the last `POLL_WINDOW` intervals seen of a polling key."""
        window = self.recent.get(seen.key)
        if window is None:
            window = self.recent[seen.key] = deque(maxlen=POLL_WINDOW)
        value = seen.value
        intervals = int(value.get("intervals", 0))
        if "gap_ns" in value:
            window.append(int(value["gap_ns"]))
        if intervals:
            window.extend([int(value.get("median_ns", 0))] * min(intervals, POLL_WINDOW))
        ordered = sorted(window)
        median = ordered[(len(ordered) - 1) // 2] if ordered else 0
        return {"median_ns": median, "intervals": len(window)}

    def _learn(self, seen: Observation, where: ScopeOf, fact: Fact | None) -> None:
        if fact is None:
            value = merge_value(seen.key.kind, {}, seen.value) if seen.value else {}
            self.facts[seen.key] = Fact(
                seen.key,
                value,
                seen.first_ns,
                seen.last_ns,
                seen.count,
                where.scope,
                where.conduit,
                unsaved=seen.count,
                delta=dict(value),
            )
            return
        fact.value = merge_value(seen.key.kind, fact.value, seen.value)
        fact.delta = merge_value(seen.key.kind, fact.delta, seen.value)
        fact.first_ns, fact.last_ns = min(fact.first_ns, seen.first_ns), max(fact.last_ns, seen.last_ns)
        fact.count += seen.count
        fact.unsaved += seen.count
        fact.dirty = True

    def counts(self) -> dict[tuple[str, str], int]:
        """Facts per (site, scope): a fact counts in its asset scope and in its conduit scope."""
        counted: dict[tuple[str, str], int] = {}
        for fact in self.facts.values():
            for name in (fact.scope, fact.conduit):
                if name is not None:
                    counted[(fact.key.site, name)] = counted.get((fact.key.site, name), 0) + 1
        return counted


class Scoping:
    """What `Baseline.observe` asks of a scoper (`scoping.Scoper`, or a plain one in tests)."""

    def of(self, seen: Observation) -> ScopeOf:
        """The asset scope of the observation (the site scope for an asset fact), no conduit."""
        if seen.key.kind is FactKind.ASSET:
            return ScopeOf(SITE_SCOPE, None)
        return ScopeOf(f"asset:{seen.server}", None)


def _deviation(
    seen: Observation,
    learned: dict[str, Any] | None,
    reason: str,
    scopes: Sequence[str],
    observed: dict[str, Any] | None = None,
) -> Deviation:
    return Deviation(
        seen.key,
        learned,
        dict(observed if observed is not None else seen.value),
        seen.first_ns,
        seen.last_ns,
        seen.count,
        reason,
        tuple(scopes),
        seen.row,
        list(seen.samples),
    )
