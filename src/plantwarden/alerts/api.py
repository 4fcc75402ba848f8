"""Alert routes of the JSON API. Lists are filtered to the sites where the caller may read
alerts; one alert of another site is answered as not found (its existence is not revealed)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from plantwarden.alerts import services, suppressions
from plantwarden.alerts.errors import NOTE_LENGTH, AlertNotFound, EvidenceNotKept, InvalidAlert
from plantwarden.alerts.evidence import cut_slice, ring_pointers
from plantwarden.alerts.models import Alert, AlertStatus, Severity, Verdict
from plantwarden.alerts.queries import AlertFilter, count_suppressed, list_alerts
from plantwarden.alerts.schemas import AlertList, AlertOut, SuppressionOut
from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import SystemClock, UtcDatetime
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.settings import Settings

router = APIRouter(prefix="/alerts", tags=["alerts"])

SeverityName = Literal["info", "low", "medium", "high", "critical"]
PCAP_MEDIA_TYPE = "application/vnd.tcpdump.pcap"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("", response_model=AlertList)
def list_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))],
    site: str | None = None,
    status: AlertStatus | None = None,
    severity: SeverityName | None = None,
    min_severity: SeverityName | None = None,
    rule_id: str | None = None,
    technique: str | None = None,
    asset: str | None = None,
    assignee: str | None = None,
    verdict: Verdict | None = None,
    suppressed: bool = False,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertList:
    """Alerts, most recently seen first, filtered; suppressed ones only with `suppressed=true`
    (the list counts those it leaves out)."""
    query = AlertFilter(
        site=site,
        status=status,
        severity=Severity[severity.upper()] if severity else None,
        min_severity=Severity[min_severity.upper()] if min_severity else None,
        rule_id=rule_id,
        technique=technique,
        asset=asset,
        assignee=assignee,
        verdict=verdict.value if verdict else None,
        suppressed=suppressed,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    with _store(request).transaction() as session:
        alerts = [AlertOut.of(a) for a in list_alerts(session, query, places=actor.places)]
        hidden = 0 if suppressed else count_suppressed(session, query, places=actor.places)
    return AlertList(alerts=alerts, count=len(alerts), suppressed=hidden)


@router.get("/suppressions", response_model=list[SuppressionOut])
def suppressions_route(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))]
) -> list[SuppressionOut]:
    """Suppressions in force, of the caller's sites and of every site."""
    with _store(request).transaction() as session:
        found = suppressions.active_suppressions(session, SystemClock().now())
        return [SuppressionOut.of(s) for s in found if s.site is None or s.site in actor.sites]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule_id: str = Field(min_length=1, max_length=120)
    site: str = Field(min_length=1, max_length=63)
    asset: str | None = Field(default=None, max_length=63)
    duration: str = Field(description="For example 30m, 8h, 2d.", max_length=20)
    reason: str = Field(min_length=1, max_length=NOTE_LENGTH)


@router.post("/suppressions", response_model=SuppressionOut, status_code=201)
def suppress_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.suppress"))],
    body: SuppressionIn,
) -> SuppressionOut:
    """Suppress alerts of a rule at a site (about one asset, if given) for a time."""
    if not actor.may_see(body.site):
        raise InvalidAlert(f"you may not suppress alerts at site {body.site}")
    duration = suppressions.parse_duration(body.duration)
    with _store(request).transaction() as session:
        made = suppressions.suppress(
            session, _context(actor), body.rule_id, duration, body.reason, site=body.site, asset=body.asset
        )
        return SuppressionOut.of(made)


@router.get("/{alert_id}", response_model=AlertOut)
def get_route(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))], alert_id: uuid.UUID
) -> AlertOut:
    """One alert with its evidence."""
    with _store(request).transaction() as session:
        return AlertOut.of(_visible(session, actor, alert_id))


@router.get("/{alert_id}/evidence.pcap", response_class=Response)
def evidence_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))],
    alert_id: uuid.UUID,
    item: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> Response:
    """The packets the alert's `item`-th pcap evidence names, cut from the sensor's evidence ring;
    404 `evidence_not_kept` with the reason when the ring no longer holds them."""
    with _store(request).transaction() as session:
        pointers = ring_pointers(_visible(session, actor, alert_id).evidence)
    if item >= len(pointers):
        raise EvidenceNotKept(f"alert {alert_id} has {len(pointers)} pcap evidence item(s), not {item + 1}")
    settings: Settings = request.app.state.settings
    data = cut_slice(settings[CoreSettings].data_path, pointers[item])
    name = f"alert-{alert_id}-{item}.pcap"
    return Response(
        data, media_type=PCAP_MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=NOTE_LENGTH)


class Closing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    reason: str = Field(default="", max_length=NOTE_LENGTH)


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(max_length=120, description="A username, or null to unassign.")


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.acknowledge"))],
    alert_id: uuid.UUID,
    body: Acknowledgement,
) -> AlertOut:
    """Acknowledge a new alert."""
    with _store(request).transaction() as session:
        alert = _visible(session, actor, alert_id)
        return AlertOut.of(services.acknowledge(session, _context(actor), alert.id, body.note))


@router.post("/{alert_id}/close", response_model=AlertOut)
def close_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.close"))],
    alert_id: uuid.UUID,
    body: Closing,
) -> AlertOut:
    """Close an alert with a verdict (and a reason)."""
    with _store(request).transaction() as session:
        alert = _visible(session, actor, alert_id)
        closed = services.close(session, _context(actor), alert.id, body.reason, verdict=body.verdict)
        return AlertOut.of(closed)


@router.post("/{alert_id}/assign", response_model=AlertOut)
def assign_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.assign"))],
    alert_id: uuid.UUID,
    body: Assignment,
) -> AlertOut:
    """Give an alert to someone, or take it back (`assignee` null)."""
    with _store(request).transaction() as session:
        alert = _visible(session, actor, alert_id)
        return AlertOut.of(services.assign(session, _context(actor), alert.id, body.assignee))


def _visible(session: Session, actor: Actor, alert_id: uuid.UUID) -> Alert:
    alert = services.get_alert(session, alert_id)
    if not actor.may_see(alert.site, alert.zone):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


def _context(actor: Actor) -> Context:
    return Context(source="server", actor=actor.username)
