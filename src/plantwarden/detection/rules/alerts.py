"""Detections as alerts: the draft of each, raised through `alerts.services.raise_alert`.

The dedup key is the rule, the site, the values of the rule's `dedup` fields and the hour (the
count window when longer): while that alert is open, the same rule firing again for the same
values in the same hour counts another occurrence instead of opening an alert. Evidence: a
summary of the detection, its sample records, and a pointer to the packets (`kind: pcap`: site,
segment, hosts and times) that `plantwarden sensor evidence` turns into a capture slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from plantwarden.alerts.services import AlertDraft, RaisedCounts, raise_alerts
from plantwarden.core.clock import from_nanoseconds, iso_time
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.detection.rules.detection import Detection

DETECTOR = "detection.rules"
HOUR_NS = 3_600_000_000_000
EVIDENCE_MARGIN_NS = 1_000_000_000
"""The packet slice starts this much before the first record and ends this much after the last."""


def dedup_period(detection: Detection) -> int:
    """The period one alert gathers repeats over: an hour, or the count window when longer."""
    count = detection.rule.count
    return max(HOUR_NS, count.window_ns) if count is not None else HOUR_NS


def dedup_key(detection: Detection) -> str:
    """`rules:<rule>:<site>:<field=value,...>:<period start>`."""
    values = ",".join(f"{name}={value}" for name, value in _dedup_values(detection))
    period = dedup_period(detection)
    bucket = detection.first_ns - detection.first_ns % period
    return f"rules:{detection.rule.id}:{detection.site}:{values}:{bucket}"


def _dedup_values(detection: Detection) -> list[tuple[str, Any]]:
    wanted = [f.name for f in detection.rule.dedup]
    known = dict(detection.group)
    sample = detection.samples[0] if detection.samples else {}
    return [(name, known.get(name, sample.get(name, ""))) for name in wanted]


def pcap_pointer(detection: Detection) -> dict[str, Any]:
    """Where the detection's packets are: arguments of `plantwarden sensor evidence`."""
    since = max(detection.first_ns - EVIDENCE_MARGIN_NS, 0)
    until = detection.last_ns + EVIDENCE_MARGIN_NS
    return {
        "kind": "pcap",
        "site": detection.site,
        "segment": detection.segment,
        "hosts": list(detection.hosts),
        "since": iso_time(since),
        "until": iso_time(until),
        "since_ns": since,
        "until_ns": until,
    }


def summary(detection: Detection) -> dict[str, Any]:
    """The evidence item that says what fired and how often."""
    rule = detection.rule
    item: dict[str, Any] = {
        "kind": "rule",
        "rule": rule.id,
        "file": rule.where,
        "record_kind": rule.kind.name,
        "records": detection.records,
        "count": detection.count,
        "first": iso_time(detection.first_ns),
        "last": iso_time(detection.last_ns),
        "group": dict(detection.group),
        "in_maintenance": detection.in_maintenance,
        "confidence": rule.confidence,
    }
    if rule.count is not None:
        item["window_seconds"] = rule.count.window_ns // 1_000_000_000
        item["window"] = iso_time(detection.window_start_ns or 0)
        item["min"] = rule.count.min
        item["distinct"] = rule.count.distinct.name if rule.count.distinct else None
    return item


def draft(detection: Detection) -> AlertDraft:
    """The alert a detection raises."""
    rule = detection.rule
    group = ", ".join(f"{name} {value}" for name, value in detection.group)
    return AlertDraft(
        site=detection.site,
        title=f"{rule.title}" + (f" ({group})" if group else ""),
        severity=detection.severity,
        detector=DETECTOR,
        rule_id=rule.id,
        rule_name=rule.title,
        description=_description(detection),
        techniques=rule.techniques,
        assets=list(detection.hosts),
        evidence=[summary(detection), *detection.samples, pcap_pointer(detection)],
        dedup_key=dedup_key(detection),
        seen_at=from_nanoseconds(detection.last_ns),
        extra={"confidence": rule.confidence, "segment": detection.segment},
    )


def _description(detection: Detection) -> str:
    rule = detection.rule
    text = rule.description or rule.title
    if rule.count is not None:
        counted = f"distinct {rule.count.distinct.name}" if rule.count.distinct else "records"
        seconds = rule.count.window_ns // 1_000_000_000
        text += f" {detection.count} {counted} within {seconds} s (at least {rule.count.min})."
    else:
        text += f" {detection.records} matching records."
    if rule.severity_in_maintenance is not None:
        text += (
            " Inside a maintenance window."
            if detection.in_maintenance
            else " Outside any maintenance window."
        )
    return text


def raise_detections(session: Session, ctx: Context, detections: Sequence[Detection]) -> RaisedCounts:
    """Raise every detection as an alert (one transaction: the caller's session)."""
    return raise_alerts(session, ctx, [draft(detection) for detection in detections])


def detection_reporter(store: Store, ctx: Context) -> Callable[[Sequence[Detection]], RaisedCounts]:
    """A function that raises detections as alerts in a transaction of their own (for the sensor)."""

    def report(detections: Sequence[Detection]) -> RaisedCounts:
        with store.transaction() as session:
            return raise_detections(session, ctx, detections)

    return report
