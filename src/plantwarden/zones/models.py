"""Tables of the plant model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plantwarden.core.db import Base, UTCDateTime


class Site(Base):
    """A plant (or one location of it); every key that names a place starts with its site."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    segments: Mapped[list[NetworkSegment]] = relationship(
        back_populates="site", cascade="all, delete-orphan", order_by="NetworkSegment.name"
    )


class NetworkSegment(Base):
    """A network segment of a site; addresses are unique only within (site, segment)."""

    __tablename__ = "network_segments"

    site_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    site: Mapped[Site] = relationship(back_populates="segments")
