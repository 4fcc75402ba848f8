"""The stored inventory: assets, communication edges and per-function request statistics.

Addresses are JSON lists of `{"segment": ..., "address": ...}` (an address means one host only
within its segment). Facts are JSON keyed by attribute: `facts` holds the current fact of each,
`history` the other values, each fact `{"value", "source", "confidence", "first_ns", "last_ns"}`
(nanoseconds since 1970, as the asset book counts them, so no precision is lost).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime

AddressList = list[dict[str, str]]
FactMap = dict[str, dict[str, Any]]


class StoredAsset(Base):
    """One device of a site, continued from run to run of the sensor (see `store.py`)."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    segment: Mapped[str] = mapped_column(String(63), index=True)  # the home segment: first seen there
    ips: Mapped[AddressList] = mapped_column(JSON, default=list)
    past_ips: Mapped[AddressList] = mapped_column(JSON, default=list)
    macs: Mapped[AddressList] = mapped_column(JSON, default=list)
    facts: Mapped[FactMap] = mapped_column(JSON, default=dict)
    history: Mapped[dict[str, list[dict[str, Any]]]] = mapped_column(JSON, default=dict)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    role: Mapped[str | None] = mapped_column(String(40), index=True)
    role_confidence: Mapped[float | None] = mapped_column(Float)
    role_evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    client_protocols: Mapped[list[str]] = mapped_column(JSON, default=list)
    server_protocols: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    zone: Mapped[str | None] = mapped_column(String(63), index=True)  # set by the plant model (issue 9)
    known: Mapped[bool | None] = mapped_column(Boolean)  # listed in plant.yaml; None until it exists
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def current_value(self, attribute: str) -> str:
        """The current value of `attribute`, or "" if the asset has none."""
        fact = self.facts.get(attribute)
        return str(fact["value"]) if fact else ""


class StoredEdge(Base):
    """One client talking to one server with one protocol, summed over every saved run."""

    __tablename__ = "communication_edges"
    __table_args__ = (
        UniqueConstraint("site", "segment", "client", "server", "protocol", name="uq_edge_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    segment: Mapped[str] = mapped_column(String(63))
    client: Mapped[str] = mapped_column(String(45))
    server: Mapped[str] = mapped_column(String(45))
    client_asset_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    server_asset_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    protocol: Mapped[str] = mapped_column(String(20), index=True)
    operations: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[list[int]]] = mapped_column(JSON, default=list)  # [IP protocol, server port]
    requests: Mapped[int] = mapped_column(BigInteger)
    flows: Mapped[int] = mapped_column(BigInteger)
    packets: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoredFunctionStatistics(Base):
    """How the requests of one function on one edge fared; see `edges.FunctionStatistics`."""

    __tablename__ = "function_statistics"
    __table_args__ = (UniqueConstraint("edge_id", "function", name="uq_function_statistics_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    edge_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("communication_edges.id", ondelete="CASCADE"), index=True
    )
    function: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(BigInteger)
    detailed: Mapped[int] = mapped_column(BigInteger)
    unanswered: Mapped[int] = mapped_column(BigInteger)
    one_way: Mapped[int] = mapped_column(BigInteger, default=0)
    """Requests that expected no answer (status -2): never unanswered."""
    exceptions: Mapped[int] = mapped_column(BigInteger)
    aggregated_errors: Mapped[int] = mapped_column(BigInteger)
    responses: Mapped[int] = mapped_column(BigInteger)
    response_median_ns: Mapped[int | None] = mapped_column(BigInteger)
    response_p95_ns: Mapped[int | None] = mapped_column(BigInteger)
    period_ns: Mapped[int | None] = mapped_column(BigInteger)
    intervals: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
