"""Console pages of the inventory: the asset list, one asset with its facts and communications,
and the drawn communication map. Every page shows only the places where the caller may read
sites (`platform:sites.read`); an asset of another place is answered as not found."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.db import Store
from plantwarden.inventory.asset_list import AssetLine, asset_lines, asset_order
from plantwarden.inventory.commmap import ROLE_LEGEND, layout, render_svg
from plantwarden.inventory.errors import AssetNotFound
from plantwarden.inventory.models import StoredAsset, StoredFunctionStatistics
from plantwarden.inventory.queries import (
    AssetFilter,
    EdgeFilter,
    EdgeWithStatistics,
    get_asset,
    list_edges,
)
from plantwarden.inventory.roles import Role
from plantwarden.web.inventory_views import asset_id, map_input
from plantwarden.web.map_cache import MapCache, inventory_version, map_key
from plantwarden.web.pagination import page_of

router = APIRouter(include_in_schema=False)
READ = Requires("platform:sites.read")
LIST_LIMIT = 5000
"""Communications on an asset's page at most."""
TIME = "%Y-%m-%d %H:%M:%S"


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, context)
    return page


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/assets", response_class=HTMLResponse)
def assets_page(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: str | None = None,
    role: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """Assets by site and address, a page at a time; `?site=` and `?role=` filter."""
    query = AssetFilter(site=site or None, role=role or None)
    with _store(request).transaction() as session:
        order = asset_order(session, query, actor.places)
        shown = page_of(page, len(order), "/assets", {"site": site or "", "role": role or ""})
        lines = asset_lines(session, order[shown.offset : shown.offset + shown.size]) if shown.valid else []
    context = {
        "assets": [_line_row(line) for line in lines],
        "page": shown,
        "site": site or "",
        "role": role or "",
        "sites": sorted(actor.sites),
        "roles": [r.value for r in Role],
    }
    return _render(request, "assets.html", context)


def _line_row(line: AssetLine) -> dict[str, Any]:
    facts = line.facts
    return {
        "id": str(line.id),
        "site": line.site,
        "place": line.zone or line.segment,
        "ips": line.ips,
        "macs": line.macs,
        "role": line.role,
        "vendor": facts.get("vendor") or facts.get("device_vendor", ""),
        "model": facts.get("product_name") or facts.get("model", ""),
        "firmware": facts.get("firmware", ""),
        "protocols": line.protocols,
        "last_seen": line.last_seen.strftime(TIME),
    }


def _row(asset: StoredAsset) -> dict[str, Any]:
    ips = [item["address"] for item in asset.ips]
    return {
        "id": str(asset.id),
        "site": asset.site,
        "place": asset.zone or asset.segment,
        "ips": ips,
        "macs": [item["address"] for item in asset.macs],
        "role": asset.role or "",
        "vendor": asset.current_value("vendor") or asset.current_value("device_vendor"),
        "model": asset.current_value("product_name") or asset.current_value("model"),
        "firmware": asset.current_value("firmware"),
        "protocols": sorted({*asset.client_protocols, *asset.server_protocols}),
        "last_seen": asset.last_seen.strftime(TIME),
    }


@router.get("/assets/{key}", response_class=HTMLResponse)
def asset_page(request: Request, actor: Annotated[Actor, Depends(READ)], key: str) -> HTMLResponse:
    """One asset: facts with their source, confidence and times; role and evidence; addresses;
    communications with the statistics of every function."""
    found_id = asset_id(key)
    if found_id is None:
        raise AssetNotFound(f"no asset {key}")
    with _store(request).transaction() as session:
        asset = get_asset(session, found_id)
        if not actor.may_see(asset.site, asset.zone):
            raise AssetNotFound(f"no asset {key}")
        edges = list_edges(session, EdgeFilter(asset=asset.id, limit=LIST_LIMIT), places=actor.places)
        context = {
            "asset": _row(asset),
            "segment": asset.segment,
            "zone": asset.zone,
            "first_seen": asset.first_seen.strftime(TIME),
            "role_confidence": asset.role_confidence,
            "role_evidence": list(asset.role_evidence),
            "sources": list(asset.sources),
            "facts": [_fact(name, item) for name, item in sorted(asset.facts.items())],
            "history": [_fact(name, item) for name, items in sorted(asset.history.items()) for item in items],
            "addresses": _addresses(asset),
            "communications": [_communication(asset, e) for e in edges],
        }
    return _render(request, "asset.html", context)


def _communication(asset: StoredAsset, found: EdgeWithStatistics) -> dict[str, Any]:
    edge = found.edge
    client = edge.client_asset_id == asset.id
    peer_id = edge.server_asset_id if client else edge.client_asset_id
    return {
        "direction": "client of" if client else "server to",
        "peer": edge.server if client else edge.client,
        "peer_id": str(peer_id) if peer_id is not None else "",
        "protocol": edge.protocol,
        "requests": edge.requests,
        "operations": sorted(edge.operations),
        "services": [f"{_transport(p)}/{port}" for p, port in edge.services],
        "first_seen": edge.first_seen.strftime(TIME),
        "last_seen": edge.last_seen.strftime(TIME),
        "functions": [_function(row) for row in found.functions],
    }


def _fact(name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "value": str(item["value"]),
        "source": str(item["source"]),
        "confidence": f"{float(item['confidence']):.2f}",
        "first_seen": from_nanoseconds(int(item["first_ns"])).strftime(TIME),
        "last_seen": from_nanoseconds(int(item["last_ns"])).strftime(TIME),
    }


def _addresses(asset: StoredAsset) -> list[dict[str, str]]:
    kinds = (("IP", asset.ips), ("past IP", asset.past_ips), ("MAC", asset.macs))
    return [
        {"kind": kind, "segment": item["segment"], "address": item["address"]}
        for kind, items in kinds
        for item in items
    ]


def _transport(ip_protocol: int) -> str:
    return {6: "tcp", 17: "udp"}.get(int(ip_protocol), f"ip{ip_protocol}")


def _function(row: StoredFunctionStatistics) -> dict[str, Any]:
    return {
        "function": row.function,
        "requests": row.requests,
        "unanswered": row.unanswered,
        "one_way": row.one_way,
        "exceptions": row.exceptions,
        "median": _duration(row.response_median_ns),
        "p95": _duration(row.response_p95_ns),
        "period": _duration(row.period_ns),
    }


def _duration(ns: int | None) -> str:
    """A time span as a person reads it: `850 µs`, `3.2 ms`, `1.50 s`; `-` when unknown."""
    if ns is None:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request, actor: Annotated[Actor, Depends(READ)], site: str | None = None
) -> HTMLResponse:
    """The communication map of the caller's assets (of one site with `?site=`), inlined as SVG."""
    svg, drawn = _map(request, actor, site or None)
    context = {
        "svg": Markup(svg) if drawn["assets"] else "",  # noqa: S704 (commmap escapes every text it writes)
        "site": site or "",
        "sites": sorted(actor.sites),
        "drawn": drawn,
        "roles": [(label, colour) for label, colour, _ in ROLE_LEGEND.values()],
    }
    return _render(request, "map.html", context)


@router.get("/map.svg")
def map_svg(request: Request, actor: Annotated[Actor, Depends(READ)], site: str | None = None) -> Response:
    """The same map alone, to open at full size or save."""
    svg, _ = _map(request, actor, site or None)
    return Response(svg, media_type="image/svg+xml")


def _map(request: Request, actor: Actor, site: str | None) -> tuple[str, dict[str, int]]:
    """The map of the caller's places (in `site`), drawn anew only when the inventory changed
    since it was last drawn for these places (`map_cache`)."""
    with _store(request).transaction() as session:
        key = map_key(actor.places, site, inventory_version(session))
        drawn, _ = _map_cache(request).drawing(key, lambda: _draw(session, actor, site))
    return drawn


def _draw(session: Session, actor: Actor, site: str | None) -> tuple[str, dict[str, int]]:
    found = map_input(session, actor.places, site=site)
    placed = layout(found.nodes, found.links)
    drawn = {
        "assets": len(found.nodes),
        "links": len(found.links),
        "undrawn": found.undrawn,
        "pairs": len(placed.pairs),
        "bundles": len(placed.bundles),
    }
    return render_svg(placed), drawn


_CACHE_LOCK = threading.Lock()


def _map_cache(request: Request) -> MapCache:
    """The server's map cache (one per application), made on first use."""
    state = request.app.state
    with _CACHE_LOCK:
        if getattr(state, "map_cache", None) is None:
            state.map_cache = MapCache()
    cache: MapCache = state.map_cache
    return cache
