"""Alert routes of the JSON API (read side; changes arrive with access control)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from plantwarden.alerts import services
from plantwarden.alerts.models import AlertStatus, Severity
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.alerts.schemas import AlertList, AlertOut
from plantwarden.core.db import Store

router = APIRouter(prefix="/alerts", tags=["alerts"])

SeverityName = Literal["info", "low", "medium", "high", "critical"]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("", response_model=AlertList)
def list_route(
    request: Request,
    site: str | None = None,
    status: AlertStatus | None = None,
    min_severity: SeverityName | None = None,
    rule_id: str | None = None,
    asset: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
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
        alerts = [AlertOut.of(a) for a in list_alerts(session, query)]
    return AlertList(alerts=alerts, count=len(alerts))


@router.get("/{alert_id}", response_model=AlertOut)
def get_route(request: Request, alert_id: uuid.UUID) -> AlertOut:
    """One alert with its evidence."""
    with _store(request).transaction() as session:
        return AlertOut.of(services.get_alert(session, alert_id))
