"""API shapes of the stored inventory: assets with their facts, and communications with their
per-function statistics. Times of facts are given as UTC datetimes, like every other time."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from plantwarden.core.clock import from_nanoseconds
from plantwarden.inventory.models import StoredAsset, StoredEdge, StoredFunctionStatistics
from plantwarden.inventory.queries import EdgeWithStatistics


class FactOut(BaseModel):
    value: str
    source: str
    confidence: float
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> FactOut:
        return cls(
            value=str(item["value"]),
            source=str(item["source"]),
            confidence=float(item["confidence"]),
            first_seen=from_nanoseconds(int(item["first_ns"])),
            last_seen=from_nanoseconds(int(item["last_ns"])),
        )


class AddressOut(BaseModel):
    segment: str
    address: str


class AssetOut(BaseModel):
    id: uuid.UUID
    site: str
    segment: str
    zone: str | None
    known: bool | None
    ips: list[AddressOut]
    past_ips: list[AddressOut]
    macs: list[AddressOut]
    facts: dict[str, FactOut]
    history: dict[str, list[FactOut]]
    sources: list[str]
    role: str | None
    role_confidence: float | None
    role_evidence: list[str]
    client_protocols: list[str]
    server_protocols: list[str]
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, asset: StoredAsset) -> AssetOut:
        return cls(
            id=asset.id,
            site=asset.site,
            segment=asset.segment,
            zone=asset.zone,
            known=asset.known,
            ips=[AddressOut(**item) for item in asset.ips],
            past_ips=[AddressOut(**item) for item in asset.past_ips],
            macs=[AddressOut(**item) for item in asset.macs],
            facts={name: FactOut.of(item) for name, item in asset.facts.items()},
            history={name: [FactOut.of(i) for i in items] for name, items in asset.history.items()},
            sources=list(asset.sources),
            role=asset.role,
            role_confidence=asset.role_confidence,
            role_evidence=list(asset.role_evidence),
            client_protocols=list(asset.client_protocols),
            server_protocols=list(asset.server_protocols),
            first_seen=asset.first_seen,
            last_seen=asset.last_seen,
        )


class AssetList(BaseModel):
    assets: list[AssetOut]
    count: int


class FunctionStatisticsOut(BaseModel):
    function: int
    requests: int
    detailed: int
    unanswered: int
    one_way: int
    exceptions: int
    aggregated_errors: int
    responses: int
    response_median_ns: int | None
    response_p95_ns: int | None
    period_ns: int | None
    intervals: float

    @classmethod
    def of(cls, row: StoredFunctionStatistics) -> FunctionStatisticsOut:
        return cls(
            function=row.function,
            requests=row.requests,
            detailed=row.detailed,
            unanswered=row.unanswered,
            one_way=row.one_way,
            exceptions=row.exceptions,
            aggregated_errors=row.aggregated_errors,
            responses=row.responses,
            response_median_ns=row.response_median_ns,
            response_p95_ns=row.response_p95_ns,
            period_ns=row.period_ns,
            intervals=row.intervals,
        )


class CommunicationOut(BaseModel):
    id: uuid.UUID
    site: str
    segment: str
    client: str
    server: str
    client_asset_id: uuid.UUID | None
    server_asset_id: uuid.UUID | None
    protocol: str
    operations: list[str]
    services: list[tuple[int, int]]
    requests: int
    flows: int
    packets: int
    bytes: int
    first_seen: datetime
    last_seen: datetime
    functions: list[FunctionStatisticsOut]

    @classmethod
    def of(cls, found: EdgeWithStatistics) -> CommunicationOut:
        edge: StoredEdge = found.edge
        return cls(
            id=edge.id,
            site=edge.site,
            segment=edge.segment,
            client=edge.client,
            server=edge.server,
            client_asset_id=edge.client_asset_id,
            server_asset_id=edge.server_asset_id,
            protocol=edge.protocol,
            operations=list(edge.operations),
            services=[(int(p), int(port)) for p, port in edge.services],
            requests=edge.requests,
            flows=edge.flows,
            packets=edge.packets,
            bytes=edge.bytes,
            first_seen=edge.first_seen,
            last_seen=edge.last_seen,
            functions=[FunctionStatisticsOut.of(row) for row in found.functions],
        )


class CommunicationList(BaseModel):
    communications: list[CommunicationOut]
    count: int
