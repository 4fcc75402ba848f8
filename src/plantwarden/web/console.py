"""The server-rendered console."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from plantwarden.alerts import services as alert_services
from plantwarden.alerts.errors import AlertNotFound
from plantwarden.alerts.evidence import ring_pointers
from plantwarden.alerts.models import Alert, AlertStatus, Severity, Verdict
from plantwarden.alerts.queries import AlertFilter, count_suppressed, list_alerts
from plantwarden.core import migrate
from plantwarden.core.access import Actor, Requires
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store, describe_url
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import Settings
from plantwarden.web import dashboard_views as overview
from plantwarden.web.auth import places_of
from plantwarden.web.baseline_pages import may_accept
from plantwarden.zones import services as zones

router = APIRouter(include_in_schema=False)
ALERTS_READ = "platform:alerts.read"
RECORDS_READ = "platform:records.read"
Choice = TypeVar("Choice", bound=enum.StrEnum)


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:sites.read"))]
) -> HTMLResponse:
    """The overview: assets per zone, alerts over the last day and open ones by severity, the
    latest telemetry; store, schema, sites and their network segments. Each panel counts only
    where the caller holds its own action (alerts.read, records.read) besides sites.read."""
    store: Store = request.app.state.store
    alert_places = places_of(request, actor, ALERTS_READ)
    telemetry_sites = sorted(site for site, zone in places_of(request, actor, RECORDS_READ) if zone is None)
    now = datetime.now(UTC)
    with store.transaction() as session:
        sites = [
            {"id": s.id, "name": s.name, "segments": [g.name for g in s.segments]}
            for s in zones.list_sites(session)
            if s.id in actor.sites
        ]
        panels: dict[str, object] = {
            "assets": overview.assets_panel(session, actor.places),
            "open_alerts": overview.open_alerts_panel(session, alert_places) if alert_places else None,
            "alerts_over_time": (
                overview.alerts_over_time_panel(session, alert_places, now) if alert_places else None
            ),
            "telemetry": [],
        }
    settings: Settings = request.app.state.settings
    if telemetry_sites:
        backend = open_backend(settings[CoreSettings], settings[RecordsSettings], store)
        panels["telemetry"] = overview.telemetry_panel(backend, telemetry_sites, now)
    context = {
        "store": describe_url(store.engine.url),
        "revision": migrate.current_revision(store),
        "sites": sites,
        "telemetry_shown": bool(telemetry_sites),
        **panels,
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "dashboard.html", context)
    return page


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))],
    status: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    technique: str | None = None,
    asset: str | None = None,
    assignee: str | None = None,
    verdict: str | None = None,
    since: str | None = None,
    until: str | None = None,
    suppressed: str | None = None,
) -> HTMLResponse:
    """Alerts, most recently seen first, filtered by a GET form (empty fields do not filter)."""
    form = {
        "status": status, "severity": severity, "rule": rule, "technique": technique, "asset": asset,
        "assignee": assignee, "verdict": verdict, "since": since, "until": until, "suppressed": suppressed,
    }  # fmt: skip
    fields = {key: (value or "").strip() for key, value in form.items()}
    query = _alert_filter(fields)
    store: Store = request.app.state.store
    with store.transaction() as session:
        alerts = [_alert_row(a) for a in list_alerts(session, query, places=actor.places)]
        hidden = 0 if query.suppressed else count_suppressed(session, query, places=actor.places)
    context = {
        "alerts": alerts,
        "form": fields,
        "hidden": hidden,
        "statuses": [s.value for s in AlertStatus],
        "severities": [s.name.lower() for s in Severity],
        "verdicts": [v.value for v in Verdict],
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "alerts.html", context)
    return page


def _alert_filter(form: dict[str, str]) -> AlertFilter:
    return AlertFilter(
        status=_choice(AlertStatus, form["status"], "status"),
        severity=_severity(form["severity"]),
        rule_id=form["rule"] or None,
        technique=form["technique"] or None,
        asset=form["asset"] or None,
        assignee=form["assignee"] or None,
        verdict=_choice(Verdict, form["verdict"], "verdict"),
        since=_moment(form["since"], "since"),
        until=_moment(form["until"], "until"),
        suppressed=form["suppressed"] in {"1", "on", "true", "yes"},
        limit=200,
    )


def _severity(value: str) -> Severity | None:
    if not value:
        return None
    if value.upper() not in Severity.__members__:
        raise InvalidInput(f"{value!r} is not a severity: {', '.join(s.name.lower() for s in Severity)}")
    return Severity[value.upper()]


def _choice(kind: type[Choice], value: str, name: str) -> Choice | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{value!r} is not a {name}: {allowed}") from None


def _moment(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: past the calendar's end once in UTC
        raise InvalidInput(f"{name} {value!r} is not a date or time (YYYY-MM-DD, YYYY-MM-DDTHH:MM)") from None


def _alert_row(alert: Alert) -> dict[str, object]:
    return {
        "id": str(alert.id),
        "last_seen": alert.last_seen.strftime("%Y-%m-%d %H:%M:%S"),
        "severity": alert.severity_name,
        "confidence": alert.confidence,
        "status": alert.status.value,
        "verdict": alert.verdict or "",
        "assignee": alert.assignee or "",
        "occurrences": alert.occurrences,
        "title": alert.title,
        "site": alert.site,
        "rule": alert.rule_id,
        "techniques": list(alert.techniques),
        "suppressed": alert.suppressed,
    }


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))], alert_id: uuid.UUID
) -> HTMLResponse:
    """One alert: what fired and why, its state, its evidence, and how to get its packets."""
    store: Store = request.app.state.store
    with store.transaction() as session:
        alert = alert_services.get_alert(session, alert_id)
        if not actor.may_see(alert.site, alert.zone):
            raise AlertNotFound(f"no alert {alert_id}")
        context = {
            "alert": {**_alert_row(alert), **_alert_details(alert)},
            "evidence": [json.dumps(item, indent=1, sort_keys=True) for item in alert.evidence],
            "accept_baseline": may_accept(request, actor, alert),
            "pcaps": [
                {"command": pointer.command(f"alert-{alert.id}-{number}.pcap"), "number": number}
                for number, pointer in enumerate(ring_pointers(alert.evidence))
            ],
        }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "alert.html", context)
    return page


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.acknowledge"))],
    alert_id: uuid.UUID,
    note: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """The alert page's Acknowledge button: a new alert is acknowledged (with the note), then back
    to its page."""
    store: Store = request.app.state.store
    with store.transaction() as session:
        alert = alert_services.get_alert(session, alert_id)
        if not actor.may_see(alert.site, alert.zone):
            raise AlertNotFound(f"no alert {alert_id}")
        alert_services.acknowledge(session, Context(source="console", actor=actor.username), alert.id, note)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


def _alert_details(alert: Alert) -> dict[str, object]:
    return {
        "description": alert.description,
        "zone": alert.zone or "",
        "rule_name": alert.rule_name,
        "detector": alert.detector,
        "assets": list(alert.assets),
        "first_seen": alert.first_seen.strftime("%Y-%m-%d %H:%M:%S"),
        "severity_reason": alert.severity_reason,
        "status_note": alert.status_note,
        "status_by": alert.status_by or "",
        "rate_limited": alert.rate_limited,
    }
