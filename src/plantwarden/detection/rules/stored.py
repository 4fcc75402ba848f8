"""The rules over stored records: the records plane read an hour at a time, in time order."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.detection import Detection
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.model import Rule

HOUR_NS = 3_600_000_000_000


@dataclass
class StoredCheck:
    """What a check of stored records found, and how many records of each kind it read."""

    detections: list[Detection] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)


def check_stored(
    backend: PartitionBackend,
    rules: list[Rule] | tuple[Rule, ...],
    start_ns: int,
    end_ns: int,
    *,
    site: str | None = None,
    providers: Providers | None = None,
) -> StoredCheck:
    """Run the rules over the stored records of their kinds in [start_ns, end_ns)."""
    engine = RuleEngine(rules, providers)
    found = StoredCheck()
    for kind in sorted({rule.kind.name for rule in rules}):
        found.records[kind] = 0
        for low, high in _steps(backend, kind, start_ns, end_ns):
            batch = query(backend, RecordQuery(kind, low, high, site=site))
            found.records[kind] += len(batch)
            found.detections += engine.check(batch)
    return found


def _steps(backend: PartitionBackend, kind: str, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """The hours of [start_ns, end_ns) that a stored partition of the kind overlaps."""
    hours: set[int] = set()
    for ref in backend.partitions(kind):
        low, high = max(ref.start_ns, start_ns), min(ref.end_ns, end_ns)
        if low < high:
            hours.update(range(low - low % HOUR_NS, high, HOUR_NS))
    return [(max(t, start_ns), min(t + HOUR_NS, end_ns)) for t in sorted(hours)]
