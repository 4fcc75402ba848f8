"""Inventory routes of the JSON API: assets and communications, read only. Lists are filtered
to the places where the caller may see sites and assets; one asset of another place is answered
as not found (its existence is not revealed)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import UtcDatetime
from plantwarden.core.db import Store
from plantwarden.inventory.queries import AssetFilter, EdgeFilter, get_asset, list_assets, list_edges
from plantwarden.inventory.schemas import AssetList, AssetOut, CommunicationList, CommunicationOut

router = APIRouter(tags=["inventory"])
READ = Requires("platform:sites.read")


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/assets", response_model=AssetList)
def list_route(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: str | None = None,
    segment: str | None = None,
    role: str | None = None,
    vendor: str | None = None,
    ip: str | None = None,
    protocol: str | None = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AssetList:
    """Assets by site and first seen, filtered (vendor, ip: part of the text; protocol: as
    client or server)."""
    query = AssetFilter(
        site=site,
        segment=segment,
        role=role,
        vendor=vendor,
        ip=ip,
        protocol=protocol,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    with _store(request).transaction() as session:
        assets = [AssetOut.of(a) for a in list_assets(session, query, places=actor.places)]
    return AssetList(assets=assets, count=len(assets))


@router.get("/assets/{asset}", response_model=AssetOut)
def get_route(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    asset: str,
    site: str | None = None,
) -> AssetOut:
    """One asset, by id or by a current IP (with `site` when the IP is current in several)."""
    with _store(request).transaction() as session:
        return AssetOut.of(get_asset(session, asset, site=site, places=actor.places))


@router.get("/communications", response_model=CommunicationList)
def communications_route(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: str | None = None,
    asset: uuid.UUID | None = None,
    protocol: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CommunicationList:
    """Who talks to whom with which protocol, with the statistics of every function used."""
    query = EdgeFilter(site=site, asset=asset, protocol=protocol, limit=limit, offset=offset)
    with _store(request).transaction() as session:
        found = [CommunicationOut.of(e) for e in list_edges(session, query, places=actor.places)]
    return CommunicationList(communications=found, count=len(found))
