"""The table of trained process models: one per site and device, kept across restarts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class ProcessModelRecord(Base):
    """A device's trained process model: the variables it reads, the window it learned from, and
    the model itself (`model`, the JSON form of `detection.process` models, thresholds included).

    `trained_from` and `trained_until` are data times (the samples' own clock, which for a capture
    is not the wall clock); `created_at` is when it was saved, `created_by` who or what trained it
    (a user, or `sensor <name>` when a running sensor learned it)."""

    __tablename__ = "process_models"
    __table_args__ = (UniqueConstraint("site", "device", name="uq_process_models_site_device"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site: Mapped[str] = mapped_column(String(63), index=True)
    device: Mapped[str] = mapped_column(String(200))
    variables: Mapped[list[str]] = mapped_column(JSON)
    step_ns: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    trained_from: Mapped[datetime] = mapped_column(UTCDateTime())
    trained_until: Mapped[datetime] = mapped_column(UTCDateTime())
    model: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
