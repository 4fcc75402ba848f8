"""The zone check as use cases: stored records over a time range, and violations raised as alerts.

`check_stored` reads the protocol records, the read aggregates and the flows of a site from the
records plane, slice by slice, and checks them (`detection.segmentation`); `raise_alerts` turns
violations into alerts: one per (rule, site, segment, source, destination, operation, window),
so that checking the same records again counts another occurrence of the open alert instead of
opening a second one. Evidence: a summary (records counted, first and last time, zones, channel)
and the sample records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, RaisedCounts
from plantwarden.alerts.services import raise_alerts as raise_drafts
from plantwarden.core.clock import from_nanoseconds, iso_time
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.detection.pending import FOLDED_ENDPOINTS, PENDING_LIMIT, PendingViolations
from plantwarden.detection.segmentation import CHECKED_KINDS, SegmentationCheck
from plantwarden.detection.violations import HOUR_NS, RULES_BY_ID, Violation, sample_records
from plantwarden.zones.plant.model import SiteModel

DETECTOR = "detection.segmentation"
SEVERITY: dict[str, Severity] = {
    "zone.unzoned-asset": Severity.MEDIUM,
    "zone.no-conduit": Severity.HIGH,
    "zone.channel-not-allowed": Severity.HIGH,
    "zone.cleartext": Severity.MEDIUM,
    "zone.operation-not-allowed": Severity.HIGH,
    "zone.outside-window": Severity.MEDIUM,
}
TECHNIQUES: dict[str, tuple[str, ...]] = {
    "zone.operation-not-allowed": ("T0855",),  # ATT&CK for ICS: Unauthorized Command Message
}
_TITLES = {
    "zone.unzoned-asset": "Address in no zone",
    "zone.no-conduit": "Traffic between zones without a conduit",
    "zone.channel-not-allowed": "Traffic no channel allows",
    "zone.cleartext": "Cleartext where encryption is required",
    "zone.operation-not-allowed": "Operation the channel does not allow",
    "zone.outside-window": "Traffic outside the channel's window",
}


@dataclass
class CheckReport:
    """What a check found: the violations, how many records of each kind it read, and how many
    violations were folded into many-source ones (past the limit of distinct violations)."""

    violations: list[Violation]
    records: dict[str, int]
    folded: int = 0


def check_stored(
    backend: PartitionBackend,
    site: SiteModel,
    start_ns: int,
    end_ns: int,
    *,
    window_ns: int = HOUR_NS,
    samples: int = 5,
    limit: int = PENDING_LIMIT,
) -> CheckReport:
    """Check the site's stored protocol records, read aggregates and flows in [start_ns, end_ns),
    read an hour at a time (or a window, when windows are shorter). Past `limit` distinct
    violations, new ones are folded (`detection.pending`), as in the live check."""
    checker = SegmentationCheck(site, window_ns=window_ns, samples=samples)
    found = PendingViolations(samples, limit)
    records = dict.fromkeys(CHECKED_KINDS, 0)
    step = min(window_ns, HOUR_NS)
    for kind in CHECKED_KINDS:
        for low, high in _steps(backend, kind, start_ns, end_ns, step):
            batch = query(backend, RecordQuery(kind, low, high, site=site.id))
            records[kind] += len(batch)
            if len(batch):
                found.add(checker.check(batch))
    ordered = sorted(found.values(), key=lambda v: (v.window_start_ns, v.rule, v.src, v.dst, v.operation))
    return CheckReport(ordered, records, found.folded)


def _steps(
    backend: PartitionBackend, kind: str, start_ns: int, end_ns: int, step: int
) -> list[tuple[int, int]]:
    """The steps of [start_ns, end_ns) that some partition of the kind overlaps: a long interval
    (a year, "since 2020") costs what its stored partitions hold, not one query per empty hour."""
    steps: set[int] = set()
    for ref in backend.partitions(kind):
        low, high = max(ref.start_ns, start_ns), min(ref.end_ns, end_ns)
        if low < high:
            steps.update(range(low - low % step, high, step))
    return [(max(t, start_ns), min(t + step, end_ns)) for t in sorted(steps)]


AlertCounts = RaisedCounts


def raise_alerts(session: Session, ctx: Context, violations: Sequence[Violation]) -> AlertCounts:
    """One alert per violation key; an open alert with the same key counts another occurrence."""
    return raise_drafts(session, ctx, [draft(violation) for violation in violations])


def alert_reporter(store: Store, ctx: Context) -> Callable[[Sequence[Violation]], AlertCounts]:
    """A function that raises violations as alerts in a transaction of their own (for the sensor)."""

    def report(violations: Sequence[Violation]) -> AlertCounts:
        with store.transaction() as session:
            return raise_alerts(session, ctx, violations)

    return report


def draft(violation: Violation) -> AlertDraft:
    """The alert a violation raises."""
    rule = RULES_BY_ID[violation.rule]
    ends = ((violation.src_asset, violation.src), (violation.dst_asset, violation.dst))
    assets = [asset or address for asset, address in ends if asset or address not in FOLDED_ENDPOINTS]
    return AlertDraft(
        site=violation.site,
        title=f"{_TITLES[rule.id]}: {violation.src} -> {violation.dst} ({violation.operation})",
        severity=SEVERITY[rule.id],
        detector=DETECTOR,
        rule_id=rule.id,
        rule_name=rule.name,
        description=violation.reason,
        techniques=TECHNIQUES.get(rule.id, ()),
        assets=assets,
        evidence=[summary(violation), *_samples(violation)],
        dedup_key=violation.dedup_key,
        seen_at=from_nanoseconds(violation.last_ns),
        zone=violation.dst_zone or violation.src_zone,
    )


def summary(violation: Violation) -> dict[str, Any]:
    """The evidence item that counts a violation's records."""
    return {
        "kind": "zone-check",
        "rule": violation.rule,
        "records": violation.count,
        "record_kind": violation.kind,
        "first": iso_time(violation.first_ns),
        "last": iso_time(violation.last_ns),
        "window": iso_time(violation.window_start_ns),
        "window_seconds": violation.window_ns // 1_000_000_000,
        "segment": violation.segment,
        "src": violation.src,
        "dst": violation.dst,
        "operation": violation.operation,
        "src_zone": violation.src_zone,
        "dst_zone": violation.dst_zone,
        "protocol": violation.protocol,
        "transport": violation.transport,
        "port": violation.port,
        "conduit": violation.conduit,
        "channel": violation.channel,
        "folded": violation.folded,
    }


def _samples(violation: Violation) -> list[dict[str, Any]]:
    shown = violation.samples
    return sample_records(shown, violation.rows) if shown is not None else []
