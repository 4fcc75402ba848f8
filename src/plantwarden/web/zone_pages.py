"""Console pages of the plant model in force: the zone and conduit map of a site with its zones'
assets and open violations, and one conduit with its channels and its traffic.

Every page needs `platform:sites.read` and shows only the sites (and zones) where the caller may
read them. Violations are alerts: they are shown only where the caller may also read alerts
(an administrator, who reads sites but not alerts, sees the counts' place but no violation).
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from plantwarden.core.access import Actor, Requires
from plantwarden.core.db import Store
from plantwarden.inventory.queries import Places
from plantwarden.web.auth import places_of
from plantwarden.web.conduit_views import Traffic, channel_rows, conduit_traffic
from plantwarden.web.pagination import page_of
from plantwarden.web.zone_views import (
    ZoneViolation,
    conduit_links,
    open_violations,
    seen_per_zone,
    stray_links,
    visible_zones,
    zone_boxes,
)
from plantwarden.zones.applied import current_model
from plantwarden.zones.errors import ConduitNotFound, SiteNotFound
from plantwarden.zones.plant.model import Conduit, PlantModel, SiteModel
from plantwarden.zones.zonemap import ZoneBox, render_zone_map

router = APIRouter(include_in_schema=False)
READ = Requires("platform:sites.read")
ALERTS_READ = "platform:alerts.read"
TIME = "%Y-%m-%d %H:%M:%S"
APPLY_HINT = "plantwarden plant apply plant.yaml"
TRAFFIC_SHOWN = ("client", "server", "client_zone", "server_zone", "protocol", "ports", "operations",
                 "requests", "coverage")  # fmt: skip
VIOLATIONS_SHOWN = 50
"""Open violations listed on a conduit's page, the most recently seen; the page counts them all."""


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, context)
    return page


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def alert_places(request: Request, actor: Actor) -> Places:
    """Where the caller may also read alerts (the page leaves other violations out)."""
    return places_of(request, actor, ALERTS_READ)


def _sites(model: PlantModel | None, actor: Actor) -> list[SiteModel]:
    return [site for site in model.sites if site.id in actor.sites] if model is not None else []


def _chosen(sites: list[SiteModel], site: str | None) -> SiteModel | None:
    if not site:
        return sites[0] if sites else None
    return next((found for found in sites if found.id == site), None)


@router.get("/zones", response_class=HTMLResponse)
def zones_page(
    request: Request, actor: Annotated[Actor, Depends(READ)], site: str | None = None
) -> HTMLResponse:
    """The zones and conduits of a site (`?site=`, else the first the caller may read) drawn as a
    map, with a table of its zones and one of its open zone violations."""
    readable = alert_places(request, actor)
    with _store(request).transaction() as session:
        model = current_model(session)
        sites = _sites(model, actor)
        chosen = _chosen(sites, site)
        context: dict[str, Any] = {
            "applied": model is not None,
            "apply_hint": APPLY_HINT,
            "site": chosen.id if chosen else (site or ""),
            "sites": [found.id for found in sites],
            "version": model.version[:12] if model else "",
            "found": chosen is not None,
            "alerts_shown": bool(readable),
        }
        if chosen is not None:
            context.update(_site_context(session, chosen, actor.places, readable))
    return _render(request, "zones.html", context)


def _site_context(session: Session, site: SiteModel, places: Places, readable: Places) -> dict[str, Any]:
    shown = visible_zones(site, places)
    violations = open_violations(session, site.id, readable)
    boxes = zone_boxes(site, shown, seen_per_zone(session, site, places), violations)
    links = conduit_links(site, shown, violations)
    svg = render_zone_map(site.id, boxes, links, stray_links(site, violations))
    return {
        "name": site.name,
        "svg": Markup(svg),  # noqa: S704 (zonemap escapes every text it writes)
        "zones": [_zone_row(site, box) for box in boxes],
        "conduits": links,
        "violations": [_violation_row(v) for v in violations],
    }


def _zone_row(site: SiteModel, box: ZoneBox) -> dict[str, Any]:
    zone = site.zone(box.id)
    return {
        "box": box,
        "security_level": str(zone.security_level),
        "segment": zone.segment,
        "description": zone.description,
        "essential_functions": list(zone.essential_functions),
        "conduits": [c.id for c in site.conduits if zone.id in c.zones],
    }


def _violation_row(violation: ZoneViolation) -> dict[str, Any]:
    return {
        "id": violation.id,
        "rule": violation.rule,
        "title": violation.title,
        "src": violation.src,
        "dst": violation.dst,
        "src_zone": violation.src_zone or "no zone",
        "dst_zone": violation.dst_zone or "no zone",
        "operation": violation.operation,
        "protocol": violation.protocol,
        "occurrences": violation.occurrences,
        "records": violation.records,
        "last_seen": violation.last_seen.strftime(TIME),
        "conduit": violation.conduit or "",
    }


@router.get("/zones.svg")
def zones_svg(request: Request, actor: Annotated[Actor, Depends(READ)], site: str | None = None) -> Response:
    """The same map alone, to open at full size or save."""
    readable = alert_places(request, actor)
    with _store(request).transaction() as session:
        model = current_model(session)
        if model is None:
            raise SiteNotFound(f"no plant model is applied; apply one with `{APPLY_HINT}`")
        chosen = _chosen(_sites(model, actor), site)
        if chosen is None:
            raise SiteNotFound(
                f"no site {site} in the plant model in force"
                if site
                else "the plant model names no site you may read"
            )
        svg = _site_context(session, chosen, actor.places, readable)["svg"]
    return Response(str(svg), media_type="image/svg+xml")


@router.get("/conduits/{conduit_id}", response_class=HTMLResponse)
def conduit_page(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    conduit_id: str,
    site: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """One conduit: its zones and security level, its channels, the traffic between hosts of its
    zones (covered by a channel or not; a page of it, the counts over all) and its open
    violations."""
    readable = alert_places(request, actor)
    with _store(request).transaction() as session:
        found, conduit = _conduit(current_model(session), actor, conduit_id, site)
        shown = visible_zones(found, actor.places)
        traffic, more = conduit_traffic(session, found, conduit, shown)
        violations = [v for v in open_violations(session, found.id, readable) if v.concerns(conduit)]
    path = f"/conduits/{urllib.parse.quote(conduit_id, safe='')}"
    rows = page_of(page, len(traffic), path, {"site": site or ""})
    shown_traffic = traffic[rows.offset : rows.offset + rows.size] if rows.valid else []
    context = {
        "site": found.id,
        "conduit": conduit,
        "security_level": str(conduit.security_level),
        "zones": [found.zone(zone_id) for zone_id in conduit.zones],
        "channels": channel_rows(found, conduit),
        "traffic": [_traffic_row(t) for t in shown_traffic],
        "page": rows,
        "uncovered": sum(not t.coverage.covered for t in traffic),
        "more": more,
        "violations": [_violation_row(v) for v in violations[:VIOLATIONS_SHOWN]],
        "violation_count": len(violations),
        "alerts_shown": bool(readable),
    }
    return _render(request, "conduit.html", context)


def _traffic_row(traffic: Traffic) -> dict[str, Any]:
    row = {name: getattr(traffic, name) for name in TRAFFIC_SHOWN}
    return {**row, "last_seen": traffic.last_seen.strftime(TIME)}


def _conduit(
    model: PlantModel | None, actor: Actor, conduit_id: str, site: str | None
) -> tuple[SiteModel, Conduit]:
    """The site and conduit asked for, if the caller may see one of the conduit's zones."""
    for candidate in _sites(model, actor):
        if site and candidate.id != site:
            continue
        shown = set(visible_zones(candidate, actor.places))
        conduit = next((c for c in candidate.conduits if c.id == conduit_id and shown & set(c.zones)), None)
        if conduit is not None:
            return candidate, conduit
    where = f" in site {site}" if site else ""
    hint = "" if model is not None else f"; no plant model is applied ({APPLY_HINT})"
    raise ConduitNotFound(f"no conduit {conduit_id}{where}{hint}")
