"""Raising alerts and moving them through their lifecycle (new -> acknowledged -> closed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.alerts.errors import AlertNotFound, AlertTransitionRefused, InvalidAlert
from plantwarden.alerts.events import AlertAcknowledged, AlertClosed, AlertRaised, AlertRepeated
from plantwarden.alerts.models import Alert, AlertStatus, Severity
from plantwarden.core import eventlog
from plantwarden.core.context import Context
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id

MAX_EVIDENCE = 50  # evidence items kept per alert; repeats beyond this only count


@dataclass(frozen=True)
class AlertDraft:
    """What a detector knows when it raises an alert.

    `evidence` items are plain JSON objects pointing at records (for example
    `{"kind": "protocol", "ts": ..., "src": "10.0.0.5", "dst": "10.0.1.2", ...}`).
    `dedup_key`: while an alert with the same key is open, raising again counts an occurrence
    instead of opening a second alert.
    """

    site: str
    title: str
    severity: Severity
    detector: str
    rule_id: str
    rule_name: str
    description: str = ""
    techniques: Sequence[str] = ()
    assets: Sequence[str] = ()
    evidence: Sequence[dict[str, Any]] = ()
    dedup_key: str | None = None
    seen_at: datetime | None = None
    zone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def raise_alert(session: Session, ctx: Context, draft: AlertDraft) -> Alert:
    """Open an alert, or count another occurrence of the open alert with the same `dedup_key`."""
    _check(draft)
    now = ctx.clock.now()
    seen = draft.seen_at or now
    if draft.dedup_key is not None:
        existing = session.scalars(
            select(Alert).where(Alert.dedup_key == draft.dedup_key, Alert.status != AlertStatus.CLOSED)
        ).first()
        if existing is not None:
            return _repeat(session, ctx, existing, draft, seen)
    alert = Alert(
        id=new_id(),
        site=draft.site,
        zone=draft.zone,
        title=draft.title,
        description=draft.description,
        severity=int(draft.severity),
        status=AlertStatus.NEW,
        detector=draft.detector,
        rule_id=draft.rule_id,
        rule_name=draft.rule_name,
        techniques=list(draft.techniques),
        assets=sorted(set(draft.assets)),
        evidence=list(draft.evidence)[:MAX_EVIDENCE],
        dedup_key=draft.dedup_key,
        occurrences=1,
        first_seen=seen,
        last_seen=seen,
        created_at=now,
        updated_at=now,
        status_note="",
    )
    session.add(alert)
    session.flush()
    raised = AlertRaised(str(alert.id), alert.title, alert.severity_name, alert.rule_id, alert.detector)
    eventlog.record(session, envelope(raised, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _repeat(session: Session, ctx: Context, alert: Alert, draft: AlertDraft, seen: datetime) -> Alert:
    alert.occurrences += 1
    alert.last_seen = max(alert.last_seen, seen)
    alert.first_seen = min(alert.first_seen, seen)
    alert.severity = max(alert.severity, int(draft.severity))
    alert.assets = sorted(set(alert.assets) | set(draft.assets))
    room = MAX_EVIDENCE - len(alert.evidence)
    if room > 0 and draft.evidence:
        alert.evidence = [*alert.evidence, *list(draft.evidence)[:room]]
    alert.updated_at = ctx.clock.now()
    session.flush()
    repeated = AlertRepeated(str(alert.id), alert.occurrences)
    eventlog.record(session, envelope(repeated, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _check(draft: AlertDraft) -> None:
    if not draft.title.strip():
        raise InvalidAlert("an alert needs a title")
    if not draft.site or not draft.rule_id or not draft.detector:
        raise InvalidAlert("an alert needs a site, a rule id and a detector")
    try:
        json.dumps(list(draft.evidence))
    except (TypeError, ValueError) as error:
        raise InvalidAlert(f"evidence must be plain JSON: {error}") from error


def get_alert(session: Session, alert_id: uuid.UUID | str) -> Alert:
    """The alert with this id, or `AlertNotFound`."""
    try:
        key = alert_id if isinstance(alert_id, uuid.UUID) else uuid.UUID(str(alert_id))
    except ValueError:
        raise AlertNotFound(f"no alert {alert_id!r} (not a UUID)") from None
    alert = session.get(Alert, key)
    if alert is None:
        raise AlertNotFound(f"no alert {key}")
    return alert


def acknowledge(session: Session, ctx: Context, alert_id: uuid.UUID | str, note: str = "") -> Alert:
    """Take ownership of a new alert."""
    alert = get_alert(session, alert_id)
    if alert.status != AlertStatus.NEW:
        raise AlertTransitionRefused(
            f"alert {alert.id} is {alert.status.value}; only a new alert can be acknowledged"
        )
    _transition(alert, ctx, AlertStatus.ACKNOWLEDGED, note)
    event = AlertAcknowledged(str(alert.id), ctx.actor, note)
    eventlog.record(session, envelope(event, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def close(session: Session, ctx: Context, alert_id: uuid.UUID | str, reason: str) -> Alert:
    """Close an alert (new or acknowledged); the reason is kept."""
    if not reason.strip():
        raise InvalidAlert("closing an alert needs a reason")
    alert = get_alert(session, alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise AlertTransitionRefused(f"alert {alert.id} is already closed")
    _transition(alert, ctx, AlertStatus.CLOSED, reason)
    event = AlertClosed(str(alert.id), ctx.actor, reason)
    eventlog.record(session, envelope(event, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _transition(alert: Alert, ctx: Context, status: AlertStatus, note: str) -> None:
    alert.status = status
    alert.status_note = note
    alert.status_by = ctx.actor
    alert.updated_at = ctx.clock.now()
