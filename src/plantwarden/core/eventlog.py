"""The durable event log on the store: an outbox, consumer cursors, and an inbox for idempotency.

- `record(session, event)` appends an event in the caller's transaction, so the event exists if
  and only if the change it announces was committed.
- A `Consumer` (in any process) reads the log after its own cursor, in order, and calls its
  handler for each event it has not seen before; the handler's writes, the inbox marker and the
  new cursor commit in one transaction. Delivery is at least once; the inbox (`event_inbox`,
  one row per consumer and event id) makes every consumer idempotent, also for events that
  arrive twice from elsewhere (JetStream redeliveries).
- Ordering: positions are assigned in commit order. SQLite has one writer at a time; on
  PostgreSQL `record` takes a transaction-level advisory lock, so a transaction that took a lower
  position always commits before one that takes a higher position, and a consumer can never
  skip past an event that commits late.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Integer,
    String,
    Uuid,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.db import Base, Store, UTCDateTime
from plantwarden.core.events import Event

log = logging.getLogger(__name__)

# An arbitrary constant: the PostgreSQL advisory lock that orders appends to the log.
APPEND_LOCK = 0x706C616E74  # "plant"


class EventRecord(Base):
    """One event in the log; `position` orders the log."""

    __tablename__ = "event_log"
    __table_args__ = ({"sqlite_autoincrement": True},)  # positions are never reused

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    type: Mapped[str] = mapped_column(String(120), index=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    site: Mapped[str | None] = mapped_column(String(63), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)

    def to_event(self) -> Event:
        return Event(
            id=self.id,
            type=self.type,
            schema_version=self.schema_version,
            site=self.site,
            occurred_at=self.occurred_at,
            source=self.source,
            idempotency_key=self.idempotency_key,
            payload=self.payload,
        )


class ConsumerCursor(Base):
    """How far a named consumer has read the log."""

    __tablename__ = "event_consumers"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxEntry(Base):
    """An event a consumer has applied; a second delivery of the same id is skipped."""

    __tablename__ = "event_inbox"

    consumer: Mapped[str] = mapped_column(String(120), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())


def record(session: Session, event: Event, *, clock: Clock | None = None) -> Event:
    """Append `event` to the log in the session's transaction.

    With an idempotency key that is already in the log, nothing is appended and the event
    recorded earlier is returned.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    if event.idempotency_key is not None:
        existing = session.scalars(
            select(EventRecord).where(EventRecord.idempotency_key == event.idempotency_key)
        ).first()
        if existing is not None:
            return existing.to_event()
    session.add(
        EventRecord(
            id=event.id,
            type=event.type,
            schema_version=event.schema_version,
            site=event.site,
            occurred_at=event.occurred_at,
            recorded_at=(clock or SystemClock()).now(),
            source=event.source,
            idempotency_key=event.idempotency_key,
            payload=dict(event.payload),
        )
    )
    session.flush()
    return event


def record_many(session: Session, events: Sequence[Event], *, clock: Clock | None = None) -> None:
    """Append `events`, in order, in the session's transaction: one lock and one insert for a
    change announced by many events (a saved inventory). With idempotency keys, see `record`."""
    if any(event.idempotency_key is not None for event in events):
        for event in events:
            record(session, event, clock=clock)
        return
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    recorded_at = (clock or SystemClock()).now()
    rows = [
        {
            "id": e.id,
            "type": e.type,
            "schema_version": e.schema_version,
            "site": e.site,
            "occurred_at": e.occurred_at,
            "recorded_at": recorded_at,
            "source": e.source,
            "idempotency_key": None,
            "payload": dict(e.payload),
        }
        for e in events
    ]
    session.execute(insert(EventRecord), rows)


def read_after(session: Session, position: int, limit: int = 500) -> list[tuple[int, Event]]:
    """Events after `position`, oldest first, with their positions."""
    rows = session.scalars(
        select(EventRecord).where(EventRecord.position > position).order_by(EventRecord.position).limit(limit)
    )
    return [(row.position, row.to_event()) for row in rows]


def head_position(session: Session | Connection) -> int:
    """The position of the newest event (0 for an empty log). A plain connection (outside the ORM)
    asks it in a fifth of the time, for those who ask often."""
    return int(session.scalar(select(func.coalesce(func.max(EventRecord.position), 0))) or 0)


def first_delivery(session: Session, consumer: str, event_id: uuid.UUID, clock: Clock) -> bool:
    """Mark `event_id` as applied by `consumer`; False when it already was (a redelivery)."""
    values = {"consumer": consumer, "event_id": event_id, "applied_at": clock.now()}
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(InboxEntry).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(InboxEntry).values(values).on_conflict_do_nothing()
    # Ask for the inserted row: psycopg reports rowcount -1 for this statement under SQLAlchemy 2.1.
    return session.execute(statement.returning(InboxEntry.event_id)).first() is not None


Handler = Callable[[Session, Event], None]


@dataclass(frozen=True)
class BatchResult:
    delivered: int
    skipped: int
    position: int


class Consumer:
    """Reads the log after its cursor and applies each new event exactly once in its effects.

    The handler runs inside the consumer's transaction: its writes, the inbox marker and the new
    cursor commit together, so a consumer killed at any point resumes at its cursor and a
    redelivered event changes nothing. A handler with effects outside the store (a publish to
    JetStream) must itself be idempotent: it may see an event again after a crash.
    """

    def __init__(
        self, store: Store, name: str, handler: Handler, *, batch_size: int = 200, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.name = name
        self.handler = handler
        self.batch_size = batch_size
        self.clock = clock or SystemClock()

    def position(self) -> int:
        """The consumer's cursor (0 before its first event)."""
        with self.store.transaction() as session:
            cursor = session.get(ConsumerCursor, self.name)
            return cursor.position if cursor else 0

    def run_once(self) -> BatchResult:
        """Apply the next batch of events; returns how many were new and where the cursor is."""
        with self.store.transaction() as session:
            position = self._claim(session)
            delivered = skipped = 0
            for event_position, event in read_after(session, position, self.batch_size):
                if first_delivery(session, self.name, event.id, self.clock):
                    self.handler(session, event)
                    delivered += 1
                else:
                    skipped += 1
                position = event_position
            session.execute(
                update(ConsumerCursor)
                .where(ConsumerCursor.name == self.name)
                .values(position=position, updated_at=self.clock.now())
            )
        return BatchResult(delivered, skipped, position)

    def _claim(self, session: Session) -> int:
        """Lock this consumer's cursor row for the transaction (one instance works at a time)."""
        now = self.clock.now()
        touched = session.execute(
            update(ConsumerCursor).where(ConsumerCursor.name == self.name).values(updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if not touched:
            session.add(ConsumerCursor(name=self.name, position=0, updated_at=now))
            session.flush()
        position = session.scalar(select(ConsumerCursor.position).where(ConsumerCursor.name == self.name))
        return int(position or 0)

    def run(self, stop: threading.Event, *, idle_wait: float = 0.5) -> None:
        """Apply events until `stop` is set, waiting `idle_wait` seconds when caught up."""
        failures = 0
        while not stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                # Never skip an event: retry the same batch, waiting longer each time.
                failures += 1
                log.exception("%s: handler failed (attempt %d); retrying", self.name, failures)
                stop.wait(min(30.0, idle_wait * 2**failures))
                continue
            failures = 0
            if result.delivered or result.skipped:
                log.debug("%s: %d new, %d already applied, at %d", self.name, *vars(result).values())
            else:
                stop.wait(idle_wait)


def prune_inbox(session: Session, before: datetime) -> int:
    """Forget inbox markers older than `before` (redeliveries older than that are not expected)."""
    result = session.execute(delete(InboxEntry).where(InboxEntry.applied_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def consumers(session: Session) -> Sequence[ConsumerCursor]:
    """Every consumer with its cursor."""
    return session.scalars(select(ConsumerCursor).order_by(ConsumerCursor.name)).all()


def cursor_position(session: Session, name: str) -> int:
    """The position of the named consumer's cursor (0 before its first event)."""
    position = session.scalar(select(ConsumerCursor.position).where(ConsumerCursor.name == name))
    return int(position or 0)


def advance_cursor(session: Session, name: str, position: int, *, clock: Clock | None = None) -> None:
    """Move the named cursor forward to `position` (never back), creating it on first use.

    For consumers whose effects lie outside the store, such as the JetStream relay: they commit
    the cursor only once their effects are confirmed, so a crash repeats at most one batch.
    """
    now = (clock or SystemClock()).now()
    moved = session.execute(
        update(ConsumerCursor)
        .where(ConsumerCursor.name == name, ConsumerCursor.position < position)
        .values(position=position, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not moved and session.get(ConsumerCursor, name) is None:
        session.add(ConsumerCursor(name=name, position=position, updated_at=now))
        session.flush()


def latest(session: Session, limit: int = 20) -> list[tuple[int, Event]]:
    """The newest `limit` events, oldest first, with their positions."""
    rows = session.scalars(select(EventRecord).order_by(EventRecord.position.desc()).limit(limit)).all()
    return [(row.position, row.to_event()) for row in reversed(rows)]


def set_cursor(session: Session, name: str, position: int, *, clock: Clock | None = None) -> None:
    """Put the named cursor at `position`, backwards too, so that the events after it are
    delivered again (recovery: re-relaying what a crashed NATS server lost)."""
    now = (clock or SystemClock()).now()
    cursor = session.get(ConsumerCursor, name)
    if cursor is None:
        session.add(ConsumerCursor(name=name, position=position, updated_at=now))
    else:
        cursor.position, cursor.updated_at = position, now
    session.flush()
