"""The tables of end-to-end device telemetry: each device's replay window, and what was refused.

A device's window (`devices.replay.ReplayWindow` as JSON) is kept per site and device so that a
restarted platform still refuses a message it accepted before the restart; the counts of
accepted messages, duplicates (QoS 1 redeliveries) and replays (attacks) live beside it. Refused
messages (tampered, unsigned, re-topiced, from a revoked or unknown certificate...) are counted per
site, device (as the topic names it: the message could not be trusted to say) and reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class TelemetryWindow(Base):
    """One device's replay window and counts, per site."""

    __tablename__ = "device_telemetry_windows"
    __table_args__ = (UniqueConstraint("site", "device", name="uq_device_telemetry_windows_site_device"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site: Mapped[str] = mapped_column(String(63), index=True)
    device: Mapped[str] = mapped_column(String(200))
    window: Mapped[dict[str, Any]] = mapped_column(JSON)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    replays: Mapped[int] = mapped_column(BigInteger, default=0)
    enrolment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Serial of the certificate of the device's newest enrolment seen: a newer enrolment (a
    replaced or wiped device, whose sequence starts again) begins a new window."""
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryRefusal(Base):
    """How many messages were refused for one reason, per site and (claimed) device."""

    __tablename__ = "device_telemetry_refusals"
    __table_args__ = (
        UniqueConstraint("site", "device", "reason", name="uq_device_telemetry_refusals_site_device_reason"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site: Mapped[str] = mapped_column(String(63), index=True)
    device: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_detail: Mapped[str] = mapped_column(String(500))
