"""Tables of the monitoring domain: the health of each sensor as it last reported it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class SensorStatus(Base):
    """One sensor (site, segment, name): its last heartbeat, what it has read and lost, its clocks.

    `reported_at` is the sensor's own wall clock when it wrote the heartbeat; `received_at` the
    watchdog's side of it (the store's clock, set by the writer from the database when it can);
    `last_packet_at` the newest packet time it has seen. `state` is `running` or `stopped` (a run
    over capture files, or a sensor that was stopped: not silent)."""

    __tablename__ = "sensor_status"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    segment: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_packet_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    packets: Mapped[int] = mapped_column(BigInteger, default=0)
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped_reported: Mapped[int] = mapped_column(BigInteger, default=0)
    clock_skew_s: Mapped[float] = mapped_column(Float, default=0.0)
