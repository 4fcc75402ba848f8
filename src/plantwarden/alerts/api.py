"""Alert routes of the JSON API. Lists are filtered to the sites where the caller may read
alerts; one alert of another site is answered as not found (its existence is not revealed)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from plantwarden.alerts import services
from plantwarden.alerts.errors import AlertNotFound
from plantwarden.alerts.models import Alert, AlertStatus, Severity
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.alerts.schemas import AlertList, AlertOut
from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import UtcDatetime
from plantwarden.core.context import Context
from plantwarden.core.db import Store

router = APIRouter(prefix="/alerts", tags=["alerts"])

SeverityName = Literal["info", "low", "medium", "high", "critical"]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("", response_model=AlertList)
def list_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))],
    site: str | None = None,
    status: AlertStatus | None = None,
    min_severity: SeverityName | None = None,
    rule_id: str | None = None,
    asset: str | None = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertList:
    """Alerts, most recently seen first, filtered."""
    query = AlertFilter(
        site=site,
        status=status,
        min_severity=Severity[min_severity.upper()] if min_severity else None,
        rule_id=rule_id,
        asset=asset,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    with _store(request).transaction() as session:
        alerts = [AlertOut.of(a) for a in list_alerts(session, query, places=actor.places)]
    return AlertList(alerts=alerts, count=len(alerts))


@router.get("/{alert_id}", response_model=AlertOut)
def get_route(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))], alert_id: uuid.UUID
) -> AlertOut:
    """One alert with its evidence."""
    with _store(request).transaction() as session:
        return AlertOut.of(_visible(session, actor, alert_id))


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class Closing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


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
    """Close an alert, with the reason."""
    with _store(request).transaction() as session:
        alert = _visible(session, actor, alert_id)
        return AlertOut.of(services.close(session, _context(actor), alert.id, body.reason))


def _visible(session: Session, actor: Actor, alert_id: uuid.UUID) -> Alert:
    alert = services.get_alert(session, alert_id)
    if not actor.may_see(alert.site, alert.zone):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


def _context(actor: Actor) -> Context:
    return Context(source="server", actor=actor.username)
