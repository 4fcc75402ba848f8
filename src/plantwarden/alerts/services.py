"""Raising alerts (grouped, suppressed, rate-limited) and moving them through their lifecycle
(new -> acknowledged -> closed with a verdict), with an assignee."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plantwarden.alerts.attack import MATRIX_VERSION, is_active
from plantwarden.alerts.errors import AlertNotFound, AlertTransitionRefused, InvalidAlert, check_note
from plantwarden.alerts.events import (
    AlertAcknowledged,
    AlertAssigned,
    AlertClosed,
    AlertRaised,
    AlertRepeated,
)
from plantwarden.alerts.evidence import check_evidence
from plantwarden.alerts.models import Alert, AlertStatus, Confidence, Severity, Suppression, Verdict
from plantwarden.alerts.suppressions import matching_suppression
from plantwarden.core import eventlog
from plantwarden.core.context import Context
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id

MAX_EVIDENCE = 50  # evidence items kept per alert; repeats beyond this only count
RATE_LIMIT_PER_MINUTE = 30
"""New alerts one rule may open at one site in a minute; past it they fold into one alert."""
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,119}$")


@dataclass(frozen=True)
class AlertDraft:
    """What a detector knows when it raises an alert.

    `evidence` items are plain JSON objects pointing at records (for example
    `{"kind": "protocol", "ts": ..., "src": "10.0.0.5", "dst": "10.0.1.2", ...}`) or at the
    packets a sensor kept (`{"kind": "pcap", "site", "segment", "hosts", "since", "until"}`).
    `dedup_key`: while an alert with the same key is open, raising again counts an occurrence
    instead of opening a second alert.
    `severity_in_maintenance`, `in_maintenance`: the severity when the operation happened inside
    an approved maintenance window, and whether it did (the detector decides); the alert keeps
    the severity that applies and says why.
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
    confidence: Confidence = Confidence.MEDIUM
    severity_in_maintenance: Severity | None = None
    in_maintenance: bool = False


def effective_severity(draft: AlertDraft) -> tuple[Severity, str]:
    """The severity that applies to `draft`, and why (empty when no maintenance window matters)."""
    inside = draft.severity_in_maintenance
    if inside is None:
        return draft.severity, ""
    outside_name, inside_name = draft.severity.name.lower(), Severity(inside).name.lower()
    if draft.in_maintenance:
        return Severity(
            inside
        ), f"inside an approved maintenance window: {inside_name} ({outside_name} outside one)"
    return (
        draft.severity,
        f"outside any approved maintenance window: {outside_name} ({inside_name} inside one)",
    )


def raise_alert(
    session: Session, ctx: Context, draft: AlertDraft, *, rate_limit: int = RATE_LIMIT_PER_MINUTE
) -> Alert:
    """Open an alert, or count another occurrence of the open alert with the same `dedup_key`.

    An alert a suppression in force covers is stored suppressed. Past `rate_limit` new alerts of
    the rule at the site in the last minute, the alert is folded into one rate-limited alert
    (its count and evidence grow: nothing is lost)."""
    _check(draft)
    now = ctx.clock.now()
    seen = draft.seen_at or now
    suppression = matching_suppression(session, now, draft.rule_id, draft.site, draft.assets)
    if draft.dedup_key is not None:
        existing = _open_with_key(session, draft.dedup_key, suppressed=suppression is not None)
        if existing is not None:
            return _repeat(session, ctx, existing, draft, seen)
    if suppression is None and _opened_last_minute(session, draft, now) >= rate_limit:
        return _fold(session, ctx, draft, seen, rate_limit)
    return _open(session, ctx, draft, seen, suppression)


def _open_with_key(session: Session, key: str, *, suppressed: bool) -> Alert | None:
    statement = select(Alert).where(
        Alert.dedup_key == key, Alert.status != AlertStatus.CLOSED, Alert.suppressed == suppressed
    )
    return session.scalars(statement.order_by(Alert.created_at)).first()


def _opened_last_minute(session: Session, draft: AlertDraft, now: datetime) -> int:
    statement = select(func.count(Alert.id)).where(
        Alert.site == draft.site,
        Alert.rule_id == draft.rule_id,
        Alert.suppressed.is_(False),
        Alert.rate_limited.is_(False),
        Alert.created_at > now - timedelta(minutes=1),
    )
    return session.scalar(statement) or 0


def _open(
    session: Session, ctx: Context, draft: AlertDraft, seen: datetime, suppression: Suppression | None
) -> Alert:
    now = ctx.clock.now()
    severity, reason = effective_severity(draft)
    alert = Alert(
        id=new_id(),
        site=draft.site,
        zone=draft.zone,
        title=draft.title,
        description=draft.description,
        severity=int(severity),
        severity_reason=reason,
        confidence=Confidence(draft.confidence).value,
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
        suppressed=suppression is not None,
        suppression_id=suppression.id if suppression is not None else None,
        rate_limited=False,
    )
    session.add(alert)
    session.flush()
    raised = AlertRaised(str(alert.id), alert.title, alert.severity_name, alert.rule_id, alert.detector)
    eventlog.record(session, envelope(raised, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _fold(session: Session, ctx: Context, draft: AlertDraft, seen: datetime, limit: int) -> Alert:
    """Count `draft` in the open rate-limited alert of its rule and site (opened if need be)."""
    key = f"rate-limited:{draft.site}:{draft.rule_id}"
    folded = {
        "kind": "folded",
        "title": draft.title,
        "seen": seen.isoformat(),
        "assets": sorted(draft.assets),
    }
    holder = _open_with_key(session, key, suppressed=False)
    if holder is not None:
        return _repeat(session, ctx, holder, draft, seen, evidence=[folded])
    summary = AlertDraft(
        site=draft.site,
        title=f"Rate limit: more than {limit} new alerts a minute from rule {draft.rule_id}",
        severity=draft.severity,
        detector=draft.detector,
        rule_id=draft.rule_id,
        rule_name=draft.rule_name,
        description=f"Alerts of {draft.rule_id} at {draft.site} past the limit of {limit} a minute are "
        "counted here; each one's title, time and assets are in the evidence (the first "
        f"{MAX_EVIDENCE}).",
        techniques=draft.techniques,
        assets=draft.assets,
        evidence=[folded],
        dedup_key=key,
        zone=draft.zone,
        confidence=draft.confidence,
        severity_in_maintenance=draft.severity_in_maintenance,
        in_maintenance=draft.in_maintenance,
    )
    alert = _open(session, ctx, summary, seen, None)
    alert.rate_limited = True
    session.flush()
    return alert


def _repeat(
    session: Session,
    ctx: Context,
    alert: Alert,
    draft: AlertDraft,
    seen: datetime,
    *,
    evidence: Sequence[dict[str, Any]] | None = None,
) -> Alert:
    alert.occurrences += 1
    alert.last_seen = max(alert.last_seen, seen)
    alert.first_seen = min(alert.first_seen, seen)
    severity, reason = effective_severity(draft)
    if int(severity) >= alert.severity and reason:
        alert.severity_reason = reason
    alert.severity = max(alert.severity, int(severity))
    alert.assets = sorted(set(alert.assets) | set(draft.assets))
    alert.techniques = sorted(set(alert.techniques) | set(draft.techniques))
    added = list(draft.evidence if evidence is None else evidence)
    room = MAX_EVIDENCE - len(alert.evidence)
    if room > 0 and added:
        alert.evidence = [*alert.evidence, *added[:room]]
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
    if draft.confidence not in set(Confidence):
        raise InvalidAlert(f"confidence must be low, medium or high, not {draft.confidence!r}")
    inactive = [t for t in draft.techniques if not is_active(t)]
    if inactive:
        raise InvalidAlert(
            f"techniques {', '.join(inactive)} are not active in ATT&CK for ICS {MATRIX_VERSION}"
            " (nor in the Enterprise techniques the product uses)"
        )
    try:
        json.dumps(list(draft.evidence))
    except (TypeError, ValueError) as error:
        raise InvalidAlert(f"evidence must be plain JSON: {error}") from error
    check_evidence(draft.evidence)


@dataclass
class RaisedCounts:
    """Of drafts raised together: alerts opened, and open alerts that counted another occurrence."""

    opened: int = 0
    repeated: int = 0


def raise_alerts(session: Session, ctx: Context, drafts: Sequence[AlertDraft]) -> RaisedCounts:
    """Raise every draft (in the caller's transaction); how many opened and how many repeated."""
    counts = RaisedCounts()
    for item in drafts:
        if raise_alert(session, ctx, item).occurrences > 1:
            counts.repeated += 1
        else:
            counts.opened += 1
    return counts


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


def close(
    session: Session,
    ctx: Context,
    alert_id: uuid.UUID | str,
    reason: str = "",
    *,
    verdict: Verdict | str | None = None,
) -> Alert:
    """Close an alert (new or acknowledged) with a verdict: true_positive, false_positive or benign;
    the reason, if any, is kept."""
    chosen = _verdict(verdict)
    alert = get_alert(session, alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise AlertTransitionRefused(f"alert {alert.id} is already closed")
    _transition(alert, ctx, AlertStatus.CLOSED, reason)
    alert.verdict = chosen.value
    event = AlertClosed(str(alert.id), ctx.actor, reason, chosen.value)
    eventlog.record(session, envelope(event, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _verdict(verdict: Verdict | str | None) -> Verdict:
    choices = ", ".join(v.value for v in Verdict)
    if verdict is None or verdict == "":
        raise InvalidAlert(f"closing an alert needs a verdict: {choices}")
    try:
        return Verdict(verdict)
    except ValueError:
        raise InvalidAlert(f"{verdict!r} is not a verdict: {choices}") from None


def assign(session: Session, ctx: Context, alert_id: uuid.UUID | str, assignee: str | None) -> Alert:
    """Give an open alert to `assignee` (a username), or take it back (None)."""
    if assignee is not None and not USERNAME.fullmatch(assignee):
        raise InvalidAlert(f"{assignee!r} is not a username")
    alert = get_alert(session, alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise AlertTransitionRefused(f"alert {alert.id} is closed; a closed alert is not assigned")
    previous = alert.assignee
    if previous == assignee:
        return alert
    alert.assignee = assignee
    alert.updated_at = ctx.clock.now()
    event = AlertAssigned(str(alert.id), assignee, previous, ctx.actor)
    eventlog.record(session, envelope(event, clock=ctx.clock, source=ctx.source, site=alert.site))
    return alert


def _transition(alert: Alert, ctx: Context, status: AlertStatus, note: str) -> None:
    check_note(note, "the reason" if status is AlertStatus.CLOSED else "the note")
    alert.status = status
    alert.status_note = note
    alert.status_by = ctx.actor
    alert.updated_at = ctx.clock.now()
