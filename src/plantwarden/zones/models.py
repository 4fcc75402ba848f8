"""Tables of the plant model."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plantwarden.core.db import Base, UTCDateTime
from plantwarden.zones.plant.schema import SITE_NAME_LENGTH


class Site(Base):
    """A plant (or one location of it); every key that names a place starts with its site."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(SITE_NAME_LENGTH))
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


class PlantVersion(Base):
    """One application of a plant model (plant.yaml): which content, by whom, when.

    The newest row is the model in force; older rows are the history. `version` is the SHA-256 of
    `content`, the exact bytes applied, so a version names what was in the file under version
    control."""

    __tablename__ = "plant_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    applied_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(500))
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    content: Mapped[str] = mapped_column(Text)
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
