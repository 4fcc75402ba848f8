"""What the console's communication map needs from the stored inventory, read lean.

`inventory.queries` loads whole ORM objects with every fact, the history and each edge's
statistics; the map needs a handful of columns. Here one query reads the visible assets (id, place, role,
first address and the label fact, picked out of the JSON by the database) and one reads the edges
of their sites (both asset ids, protocol, requests, operations), as plain rows, and turns them
into `commmap` input.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, String, and_, false, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from plantwarden.inventory.commmap import MapLink, MapNode
from plantwarden.inventory.models import StoredAsset, StoredEdge
from plantwarden.inventory.queries import Places
from plantwarden.inventory.roles import Role

LABEL_FACTS = ("hostname", "station_name", "product_name", "model")
"""Facts that name a device on the map, in order of preference; else its first IP, else its MAC."""
KNOWN_ROLES = frozenset(role.value for role in Role)


@dataclass(frozen=True)
class MapInput:
    """The nodes and links of one map, and how many stored edges could not be drawn (an end
    that is no known asset, or an asset the caller may not see)."""

    nodes: list[MapNode]
    links: list[MapLink]
    sites: list[str]
    undrawn: int


def map_input(session: Session, places: Places, *, site: str | None = None) -> MapInput:
    """The assets the caller may see (in `site`, if given) as map nodes, and the edges between
    two of them as links. Groups are zones, else segments, prefixed by the site when the map
    shows more than one site (a segment name such as `cell-1` recurs from site to site)."""
    assets = _asset_rows(session, places, site)
    sites = sorted({row.site for row in assets})
    ids = {row.id: str(uuid.UUID(str(row.id))) for row in assets}
    nodes = [_node(row, ids[row.id], prefix=len(sites) > 1) for row in assets]
    links, undrawn = [], 0
    for client_id, server_id, protocol, requests, operations in _edge_rows(session, sites):
        client, server = ids.get(client_id), ids.get(server_id)
        if client is None or server is None or client == server:
            # counted only when the caller sees one end: the traffic between two assets of a
            # zone they may not see is none of their business, not even as a number
            undrawn += client is not None or server is not None
            continue
        links.append(MapLink(client, server, protocol, int(requests), frozenset(operations or ())))
    return MapInput(nodes, links, sites, undrawn)


def _asset_rows(session: Session, places: Places, site: str | None) -> Sequence[Row[Any]]:
    """Only what the map draws, the addresses and the label picked out by the database: no
    asset's whole JSON decoded here. Ids as the database returns them (`_raw_id`), matched
    against the edges' ends as they are, and turned into UUIDs once per asset."""
    label = func.coalesce(*(StoredAsset.facts[name]["value"].as_string() for name in LABEL_FACTS))
    statement = select(
        _raw_id(StoredAsset.id).label("id"),
        StoredAsset.site,
        StoredAsset.segment,
        StoredAsset.zone,
        StoredAsset.role,
        StoredAsset.ips[0]["address"].as_string().label("ip"),
        StoredAsset.macs[0]["address"].as_string().label("mac"),
        label.label("label"),
    ).where(visible_assets(places))
    if site is not None:
        statement = statement.where(StoredAsset.site == site)
    return session.execute(statement).all()


def _edge_rows(session: Session, sites: list[str]) -> Sequence[Row[Any, Any, str, int, Any]]:
    if not sites:
        return []
    statement = select(
        _raw_id(StoredEdge.client_asset_id),
        _raw_id(StoredEdge.server_asset_id),
        StoredEdge.protocol,
        StoredEdge.requests,
        StoredEdge.operations,
    ).where(StoredEdge.site.in_(sites))
    return session.execute(statement).all()


def _raw_id(column: Any) -> Any:
    """An asset id column without its conversion to `uuid.UUID` (20,000 of them cost 50 ms)."""
    return type_coerce(column, String)


def visible_assets(places: Places) -> ColumnElement[bool]:
    """Assets of the sites granted whole, and of the zones granted; nothing for no places."""
    whole_sites = sorted({site for site, zone in places if zone is None})
    zoned = [
        and_(StoredAsset.site == site, StoredAsset.zone == zone)
        for site, zone in sorted(places, key=str)
        if zone is not None
    ]
    if not whole_sites and not zoned:
        return false()
    return or_(StoredAsset.site.in_(whole_sites), *zoned)


def _node(row: Row[Any], node_id: str, *, prefix: bool) -> MapNode:
    address = str(row.ip or row.mac or "")
    group = row.zone or row.segment
    role = row.role if row.role in KNOWN_ROLES else Role.UNKNOWN.value
    return MapNode(
        id=node_id,
        label=str(row.label or "") or address,
        group=f"{row.site} / {group}" if prefix else group,
        role=role,
        address=address,
    )


def asset_id(text: str) -> uuid.UUID | None:
    """`text` as an asset id, or None when it is not a UUID (the page answers not found)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
