"""The alert table and the suppressions that keep matching alerts out of the default lists."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class Severity(enum.IntEnum):
    """How bad it is; ordered, so that filters can ask for "high or worse"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class AlertStatus(enum.StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Confidence(enum.StrEnum):
    """How sure the detector is that the alert means what its title says."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Verdict(enum.StrEnum):
    """What the analyst found when closing an alert."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    BENIGN = "benign"  # real, but expected or harmless (a planned change, a test)


class Alert(Base):
    """Something a detector found, with the evidence and the rule or fact that fired."""

    __tablename__ = "alerts"
    __table_args__ = (
        # The overview counts alerts from these indexes alone (covering: no row is read), so
        # that its counts stay fast with 100,000 alerts: open ones per severity and status, and
        # those first seen per hour of the last day. The equality columns lead, so that SQLite
        # prefers them to the one-column indexes even in a store never ANALYZEd.
        Index("ix_alerts_open_counts", "status", "suppressed", "severity", "site", "zone"),
        Index("ix_alerts_first_seen_counts", "suppressed", "first_seen", "severity", "site", "zone"),
        # the lists: newest first among the shown (or the suppressed) alerts, stopping after a page
        Index("ix_alerts_list_order", "suppressed", "last_seen", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    zone: Mapped[str | None] = mapped_column(String(63), index=True)  # of the asset concerned, if known
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[AlertStatus] = mapped_column(
        Enum(AlertStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    detector: Mapped[str] = mapped_column(String(120))
    rule_id: Mapped[str] = mapped_column(String(120), index=True)
    rule_name: Mapped[str] = mapped_column(String(300))
    techniques: Mapped[list[str]] = mapped_column(JSON, default=list)
    assets: Mapped[list[str]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dedup_key: Mapped[str | None] = mapped_column(String(300), index=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_note: Mapped[str] = mapped_column(Text, default="")
    status_by: Mapped[str | None] = mapped_column(String(120))
    confidence: Mapped[str] = mapped_column(String(10), default=Confidence.MEDIUM.value)
    verdict: Mapped[str | None] = mapped_column(String(20), index=True)
    assignee: Mapped[str | None] = mapped_column(String(120), index=True)
    severity_reason: Mapped[str] = mapped_column(Text, default="")  # why the severity is what it is
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    suppression_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    rate_limited: Mapped[bool] = mapped_column(Boolean, default=False)  # folds alerts past the rate limit

    @property
    def severity_name(self) -> str:
        return Severity(self.severity).name.lower()


class Suppression(Base):
    """Alerts of `rule_id` (at `site`, about `asset`, where given) raised before `until` are stored
    suppressed: kept and counted, but not shown in the default lists."""

    __tablename__ = "alert_suppressions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(120), index=True)
    site: Mapped[str | None] = mapped_column(String(63))
    asset: Mapped[str | None] = mapped_column(String(63))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
