"""Small helpers of the accounts tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.db import Store


def event_types(store: Store) -> list[str]:
    """Types of every event in the log, oldest first (accounts events without the domain)."""
    with store.transaction() as session:
        return [e.type.removeprefix("accounts.") for _, e in eventlog.read_after(session, 0, 10_000)]


def payloads(session: Session, event_type: str) -> list[dict[str, object]]:
    return [dict(e.payload) for _, e in eventlog.read_after(session, 0, 10_000) if e.type == event_type]
