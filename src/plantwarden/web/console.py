"""The server-rendered console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from plantwarden.alerts.models import AlertStatus
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.core import migrate
from plantwarden.core.access import Actor, Requires
from plantwarden.core.db import Store, describe_url
from plantwarden.zones import services as zones

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:sites.read"))]
) -> HTMLResponse:
    """The overview: store, schema, sites and their network segments."""
    store: Store = request.app.state.store
    with store.transaction() as session:
        sites = [
            {"id": s.id, "name": s.name, "segments": [g.name for g in s.segments]}
            for s in zones.list_sites(session)
            if s.id in actor.sites
        ]
    context = {
        "store": describe_url(store.engine.url),
        "revision": migrate.current_revision(store),
        "sites": sites,
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "dashboard.html", context)
    return page


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))],
    status: AlertStatus | None = None,
) -> HTMLResponse:
    """Alerts, most recently seen first; `?status=new|acknowledged|closed` filters."""
    store: Store = request.app.state.store
    with store.transaction() as session:
        alerts = [
            {
                "id": str(a.id),
                "last_seen": a.last_seen.strftime("%Y-%m-%d %H:%M:%S"),
                "severity": a.severity_name,
                "status": a.status.value,
                "occurrences": a.occurrences,
                "title": a.title,
                "site": a.site,
                "rule": a.rule_id,
            }
            for a in list_alerts(session, AlertFilter(status=status, limit=200), places=actor.places)
        ]
    context = {
        "alerts": alerts,
        "status": status.value if status else "",
        "statuses": [s.value for s in AlertStatus],
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "alerts.html", context)
    return page
