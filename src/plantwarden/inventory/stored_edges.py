"""Saving a run's communication edges and per-function statistics into the store.

Edges are keyed by (site, segment, client, server, protocol), statistics by edge and function.
Counts add up (each run saves what it saw, once: saving one snapshot twice counts its traffic
twice), first and last seen widen, operations and services add up, and the client and server
asset ids are filled from the stored assets holding the addresses. Medians, 95th percentiles and
periods cannot be merged from two medians, so the newer run's value replaces the stored one when
it has one (its `intervals` go with the period).

The rows of the sites concerned are read as plain rows and written back with one bulk insert
and one bulk update per table: building thousands of ORM objects cost more than the database did.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.orm import Session

from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.db import Base
from plantwarden.core.errors import InvalidInput
from plantwarden.core.ids import new_id
from plantwarden.inventory.edges import Edge, FunctionStatistics
from plantwarden.inventory.events import CommunicationDiscovered
from plantwarden.inventory.models import StoredEdge, StoredFunctionStatistics

EdgeKey = tuple[str, str, str, str, str]
AssetResolver = Callable[[str, str, str], uuid.UUID | None]
"""(site, segment, address) -> the id of the stored asset holding that IP, if any."""


@dataclass(frozen=True)
class EdgeSave:
    """What saving edges did: the new edges, announced as they were stored, and how many grew."""

    discovered: list[tuple[str, CommunicationDiscovered]]  # (site, event)
    updated: int


def protocol_name(edge: Edge | FunctionStatistics) -> str:
    return edge.protocol.name.lower()


def save_edges(
    session: Session,
    edges: Sequence[Edge],
    statistics: Sequence[FunctionStatistics],
    asset_of: AssetResolver,
    now: datetime,
) -> EdgeSave:
    """Upsert one run's edges and their statistics (see the module docstring); `asset_of` gives
    the stored asset holding an address, to fill the client and server asset ids."""
    sites = sorted({e.site for e in edges} | {s.site for s in statistics})
    stored = {_key(row): row for row in _plain_rows(session, StoredEdge, StoredEdge.site.in_(sites))}
    created: dict[EdgeKey, dict[str, Any]] = {}
    updated: dict[EdgeKey, dict[str, Any]] = {}
    for edge in edges:
        key = _edge_key(edge)
        if key in created or key in updated:
            raise InvalidInput(f"an inventory snapshot lists the edge {edge.client} -> {edge.server} twice")
        client_id = asset_of(edge.site, edge.segment, edge.client)
        server_id = asset_of(edge.site, edge.segment, edge.server)
        row = stored.get(key)
        if row is None:
            created[key] = _new_edge(edge, now, client_id, server_id)
        else:
            updated[key] = _widened_edge(row, edge, now, client_id, server_id)
    if created:
        session.execute(insert(StoredEdge), list(created.values()))
    if updated:
        session.execute(update(StoredEdge), list(updated.values()))
    edge_ids = {key: row["id"] for key, row in stored.items()} | {
        key: row["id"] for key, row in created.items()
    }
    _save_statistics(session, sites, edge_ids, statistics, now)
    return EdgeSave([(row["site"], _communication(row)) for row in created.values()], len(updated))


def _plain_rows(session: Session, model: type[Base], where: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Rows as plain dicts: read, changed and written back in bulk without ORM bookkeeping."""
    table = model.__table__
    statement = select(*table.columns).where(where)
    return [dict(row) for row in session.execute(statement).mappings()]


def _key(row: Mapping[str, Any]) -> EdgeKey:
    return (row["site"], row["segment"], row["client"], row["server"], row["protocol"])


def _edge_key(edge: Edge | FunctionStatistics) -> EdgeKey:
    return (edge.site, edge.segment, edge.client, edge.server, protocol_name(edge))


def _new_edge(
    edge: Edge, now: datetime, client_id: uuid.UUID | None, server_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "site": edge.site,
        "segment": edge.segment,
        "client": edge.client,
        "server": edge.server,
        "client_asset_id": client_id,
        "server_asset_id": server_id,
        "protocol": protocol_name(edge),
        "operations": sorted(edge.operations),
        "services": [list(service) for service in sorted(edge.services)],
        "requests": edge.requests,
        "flows": edge.flows,
        "packets": edge.packets,
        "bytes": edge.bytes,
        "first_seen": from_nanoseconds(edge.first_ns),
        "last_seen": from_nanoseconds(edge.last_ns),
        "created_at": now,
        "updated_at": now,
    }


def _widened_edge(
    row: Mapping[str, Any],
    edge: Edge,
    now: datetime,
    client_id: uuid.UUID | None,
    server_id: uuid.UUID | None,
) -> dict[str, Any]:
    services = {(int(p), int(port)) for p, port in row["services"]} | set(edge.services)
    return {
        "id": row["id"],
        "client_asset_id": client_id or row["client_asset_id"],
        "server_asset_id": server_id or row["server_asset_id"],
        "operations": sorted(set(row["operations"]) | edge.operations),
        "services": [list(service) for service in sorted(services)],
        "requests": row["requests"] + edge.requests,
        "flows": row["flows"] + edge.flows,
        "packets": row["packets"] + edge.packets,
        "bytes": row["bytes"] + edge.bytes,
        "first_seen": min(row["first_seen"], from_nanoseconds(edge.first_ns)),
        "last_seen": max(row["last_seen"], from_nanoseconds(edge.last_ns)),
        "updated_at": now,
    }


def _save_statistics(
    session: Session,
    sites: Sequence[str],
    edge_ids: Mapping[EdgeKey, uuid.UUID],
    statistics: Sequence[FunctionStatistics],
    now: datetime,
) -> None:
    joined = select(StoredEdge.id).where(StoredEdge.site.in_(sites))
    rows = _plain_rows(session, StoredFunctionStatistics, StoredFunctionStatistics.edge_id.in_(joined))
    existing = {(row["edge_id"], row["function"]): row for row in rows}
    created: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
    updated: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
    for item in statistics:
        edge_id = edge_ids.get(_edge_key(item))
        if edge_id is None:
            raise InvalidInput(
                f"statistics of function {item.function} name an edge not in the snapshot or store"
            )
        key = (edge_id, item.function)
        if key in created or key in updated:
            raise InvalidInput(f"an inventory snapshot lists function {item.function} of one edge twice")
        row = existing.get(key)
        if row is None:
            created[key] = _new_statistics(edge_id, item, now)
        else:
            updated[key] = _added_statistics(row, item, now)
    if created:
        session.execute(insert(StoredFunctionStatistics), list(created.values()))
    if updated:
        session.execute(update(StoredFunctionStatistics), list(updated.values()))


def _new_statistics(edge_id: uuid.UUID, item: FunctionStatistics, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "edge_id": edge_id,
        "function": item.function,
        "requests": item.requests,
        "detailed": item.detailed,
        "unanswered": item.unanswered,
        "one_way": item.one_way,
        "exceptions": item.exceptions,
        "aggregated_errors": item.aggregated_errors,
        "responses": item.responses,
        "response_median_ns": item.response_median_ns,
        "response_p95_ns": item.response_p95_ns,
        "period_ns": item.period_ns,
        "intervals": item.intervals,
        "updated_at": now,
    }


def _added_statistics(row: Mapping[str, Any], item: FunctionStatistics, now: datetime) -> dict[str, Any]:
    newer_times = item.response_median_ns is not None
    newer_period = item.period_ns is not None
    return {
        "id": row["id"],
        "requests": row["requests"] + item.requests,
        "detailed": row["detailed"] + item.detailed,
        "unanswered": row["unanswered"] + item.unanswered,
        "one_way": row["one_way"] + item.one_way,
        "exceptions": row["exceptions"] + item.exceptions,
        "aggregated_errors": row["aggregated_errors"] + item.aggregated_errors,
        "responses": row["responses"] + item.responses,
        "response_median_ns": item.response_median_ns if newer_times else row["response_median_ns"],
        "response_p95_ns": item.response_p95_ns if newer_times else row["response_p95_ns"],
        "period_ns": item.period_ns if newer_period else row["period_ns"],
        "intervals": item.intervals if newer_period else row["intervals"],
        "updated_at": now,
    }


def _communication(row: Mapping[str, Any]) -> CommunicationDiscovered:
    client_id, server_id = row["client_asset_id"], row["server_asset_id"]
    return CommunicationDiscovered(
        str(row["id"]),
        row["segment"],
        row["client"],
        row["server"],
        row["protocol"],
        str(client_id) if client_id else None,
        str(server_id) if server_id else None,
    )
