"""The server-rendered console."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from plantwarden.core import migrate
from plantwarden.core.db import Store, describe_url
from plantwarden.zones import services as zones

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    """The overview: store, schema, sites and their network segments."""
    store: Store = request.app.state.store
    with store.transaction() as session:
        sites = [
            {"id": s.id, "name": s.name, "segments": [g.name for g in s.segments]}
            for s in zones.list_sites(session)
        ]
    context = {
        "store": describe_url(store.engine.url),
        "revision": migrate.current_revision(store),
        "sites": sites,
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "dashboard.html", context)
    return page
