"""The quarantine list: one row per site and target (a subject or an asset), active while
`released_at` is empty. Releasing keeps the row (who released it, when, why) and quarantining it
again reuses it; the whole history is in the audit log and the event log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime


class QuarantineEntry(Base):
    """A quarantined (or released) target of a site: `kind` is a subject kind (`cert_role`,
    `address`, `user`, `certificate` by serial) or `asset`; `target` its id."""

    __tablename__ = "quarantine_entries"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    target: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str] = mapped_column(String(1000))
    quarantined_by: Mapped[str] = mapped_column(String(120))
    quarantined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    release_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def label(self) -> str:
        """`kind:target`, as the CLI takes it."""
        return f"{self.kind}:{self.target}"
