"""Tables of learned baselines: one row per scope (a site's asset, conduit, or the site itself)
with its state, and one per fact (keyed by site, kind and key) with its value and provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class BaselineScope(Base):
    """A scope of a site's baselines: `learning` until `learning_ends`, then `protecting`.
    `generation` grows at every reset, so a sensor holding the scope in memory drops its facts."""

    __tablename__ = "baseline_scopes"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    learning_started: Mapped[datetime] = mapped_column(UTCDateTime())
    learning_ends: Mapped[datetime] = mapped_column(UTCDateTime())
    protected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    facts: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BaselineFact(Base):
    """A learned or accepted fact: `scope` is its asset scope (or `site`), `conduit` its conduit
    scope if any; `value` the learned value (JSON); who accepted it and why when `source` is
    `accepted`."""

    __tablename__ = "baseline_facts"
    __table_args__ = (
        # the baselines page counts a page of scopes' facts from these indexes alone (0019)
        Index("ix_baseline_facts_scope_counts", "site", "scope", "kind", "source"),
        Index("ix_baseline_facts_conduit_counts", "site", "conduit", "kind", "source"),
    )

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))
    conduit: Mapped[str | None] = mapped_column(String(200), nullable=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(20))
    accepted_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
