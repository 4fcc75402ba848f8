"""Reading the stored inventory: assets filtered, one asset by id or IP, edges with statistics.

Filters on columns (site, segment, role, times) run in the database; those on JSON values
(vendor, IP text, protocol) run here, since SQLite and PostgreSQL spell JSON queries
differently (as `alerts.queries` does for an alert's assets).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory.errors import AssetNotFound
from plantwarden.inventory.models import StoredAsset, StoredEdge, StoredFunctionStatistics

AnyRow = TypeVar("AnyRow", bound=Any)
Places = Collection[tuple[str, str | None]]
"""(site, zone) pairs the caller may see; zone None for the whole site."""


@dataclass(frozen=True)
class AssetFilter:
    """Which assets to list; every field left None does not filter.

    `vendor` matches part of the current `vendor` or `device_vendor` fact, any case; `ip` part of
    a current IP's text; `protocol` a protocol spoken as client or server (`modbus`, ...).
    `since` keeps assets last seen at or after it, `until` those first seen before it.
    """

    site: str | None = None
    segment: str | None = None
    role: str | None = None
    vendor: str | None = None
    ip: str | None = None
    protocol: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class EdgeFilter:
    """Which edges to list: of a site, touching an asset (as client or server), of a protocol."""

    site: str | None = None
    asset: uuid.UUID | None = None
    protocol: str | None = None
    limit: int = 1000
    offset: int = 0


@dataclass(frozen=True)
class EdgeWithStatistics:
    """A stored edge and its per-function statistics, by function code."""

    edge: StoredEdge
    functions: Sequence[StoredFunctionStatistics]


def asset_sites(session: Session) -> list[str]:
    """The sites that have assets, in order (for telling a misspelt `--site` from an empty one)."""
    return list(session.scalars(select(StoredAsset.site).distinct().order_by(StoredAsset.site)))


def list_assets(
    session: Session, query: AssetFilter, *, places: Places | None = None
) -> Sequence[StoredAsset]:
    """Assets matching `query`, by site then first IP; with `places`, only those the caller may see."""
    statement = _filtered(select(StoredAsset), query).order_by(
        StoredAsset.site, StoredAsset.first_seen, StoredAsset.id
    )
    if places is not None:
        statement = statement.where(_in_places(places))
    if query.vendor is None and query.ip is None and query.protocol is None:
        return session.scalars(statement.offset(query.offset).limit(query.limit)).all()
    matching = [a for a in session.scalars(statement) if _matches_json(a, query)]
    return matching[query.offset : query.offset + query.limit]


def _filtered(statement: Select[AnyRow], query: AssetFilter) -> Select[AnyRow]:
    if query.site is not None:
        statement = statement.where(StoredAsset.site == query.site)
    if query.segment is not None:
        statement = statement.where(StoredAsset.segment == query.segment)
    if query.role is not None:
        statement = statement.where(StoredAsset.role == query.role)
    if query.since is not None:
        statement = statement.where(StoredAsset.last_seen >= query.since)
    if query.until is not None:
        statement = statement.where(StoredAsset.first_seen < query.until)
    return statement


def _matches_json(asset: StoredAsset, query: AssetFilter) -> bool:
    if query.vendor is not None:
        vendors = (asset.current_value("vendor"), asset.current_value("device_vendor"))
        if not any(query.vendor.lower() in v.lower() for v in vendors if v):
            return False
    if query.ip is not None and not any(query.ip in item["address"] for item in asset.ips):
        return False
    protocols = {*asset.client_protocols, *asset.server_protocols}
    return query.protocol is None or query.protocol.lower() in protocols


@dataclass(frozen=True)
class ZoneCount:
    """How many stored assets lie in one zone of a site (zone None: placed in no zone yet)."""

    site: str
    zone: str | None
    assets: int


def count_per_zone(session: Session, places: Places, *, limit: int = 100) -> list[ZoneCount]:
    """How many assets the caller may see (`places`) each zone holds, by site then zone (the
    assets in no zone last of their site); at most `limit` zones."""
    statement = (
        select(StoredAsset.site, StoredAsset.zone, func.count())
        .where(_in_places(places))
        .group_by(StoredAsset.site, StoredAsset.zone)
        .order_by(StoredAsset.site, StoredAsset.zone.is_(None), StoredAsset.zone)
        .limit(limit)
    )
    return [ZoneCount(site, zone, count) for site, zone, count in session.execute(statement)]


def _in_places(places: Places) -> ColumnElement[bool]:
    whole_sites = sorted({site for site, zone in places if zone is None})
    zoned = [
        and_(StoredAsset.site == site, StoredAsset.zone == zone)
        for site, zone in sorted(places, key=str)
        if zone
    ]
    return or_(StoredAsset.site.in_(whole_sites), *zoned)


def get_asset(
    session: Session, key: uuid.UUID | str, *, site: str | None = None, places: Places | None = None
) -> StoredAsset:
    """The asset with this id, or holding this current IP (in `site`, if given); `AssetNotFound`
    if none, `InvalidInput` if the key is neither, or if the IP is current on assets of two
    sites or segments (name the site). With `places` (the caller's), only the assets visible
    there count: one elsewhere is not found, and is never named in an error."""
    if isinstance(key, uuid.UUID):
        return _visible(_by_id(session, key, site), places)
    text = key.strip()
    try:
        return _visible(_by_id(session, uuid.UUID(text), site), places)
    except ValueError:
        pass
    try:
        address = str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput(f"{key!r} is neither an asset id nor an IP address") from None
    statement = select(StoredAsset) if site is None else select(StoredAsset).where(StoredAsset.site == site)
    if places is not None:
        statement = statement.where(_in_places(places))
    holders = [a for a in session.scalars(statement) if any(i["address"] == address for i in a.ips)]
    if not holders:
        raise AssetNotFound(f"no asset holds {address}" + (f" in site {site}" if site else ""))
    if len(holders) > 1:
        where = ", ".join(sorted(f"{a.site}/{a.segment}" for a in holders))
        raise InvalidInput(f"{address} is current on {len(holders)} assets ({where}); name the site")
    return holders[0]


def _visible(asset: StoredAsset, places: Places | None) -> StoredAsset:
    if places is not None and (asset.site, None) not in places and (asset.site, asset.zone) not in places:
        raise AssetNotFound(f"no asset {asset.id}")
    return asset


def _by_id(session: Session, asset_id: uuid.UUID, site: str | None) -> StoredAsset:
    asset = session.get(StoredAsset, asset_id)
    if asset is None or (site is not None and asset.site != site):
        raise AssetNotFound(f"no asset {asset_id}")
    return asset


def list_edges(
    session: Session, query: EdgeFilter, *, places: Places | None = None
) -> list[EdgeWithStatistics]:
    """Edges matching `query` with their statistics, by site, segment, client, server, protocol.

    Edges carry no zone: with `places`, a caller sees the edges of the sites granted whole, and
    those of zone grants whose client or server is a visible asset."""
    statement = select(StoredEdge)
    if query.site is not None:
        statement = statement.where(StoredEdge.site == query.site)
    if query.asset is not None:
        statement = statement.where(
            or_(StoredEdge.client_asset_id == query.asset, StoredEdge.server_asset_id == query.asset)
        )
    if query.protocol is not None:
        statement = statement.where(StoredEdge.protocol == query.protocol.lower())
    if places is not None:
        statement = statement.where(_edge_in_places(places))
    statement = statement.order_by(
        StoredEdge.site, StoredEdge.segment, StoredEdge.client, StoredEdge.server, StoredEdge.protocol
    )
    edges = session.scalars(statement.offset(query.offset).limit(query.limit)).all()
    return _with_statistics(session, edges)


def _edge_in_places(places: Places) -> ColumnElement[bool]:
    whole_sites = sorted({site for site, zone in places if zone is None})
    zoned = [(site, zone) for site, zone in sorted(places, key=str) if zone]
    if not zoned:
        return StoredEdge.site.in_(whole_sites) if whole_sites else false()
    visible = select(StoredAsset.id).where(_in_places(zoned))
    return or_(
        StoredEdge.site.in_(whole_sites),
        StoredEdge.client_asset_id.in_(visible),
        StoredEdge.server_asset_id.in_(visible),
    )


def _with_statistics(session: Session, edges: Sequence[StoredEdge]) -> list[EdgeWithStatistics]:
    by_edge: dict[uuid.UUID, list[StoredFunctionStatistics]] = {edge.id: [] for edge in edges}
    ids = list(by_edge)
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(StoredFunctionStatistics)
            .where(StoredFunctionStatistics.edge_id.in_(ids[start : start + 500]))
            .order_by(StoredFunctionStatistics.function)
        )
        for row in rows:
            by_edge[row.edge_id].append(row)
    return [EdgeWithStatistics(edge, by_edge[edge.id]) for edge in edges]
