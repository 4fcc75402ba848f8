from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from plantwarden.core import eventlog, migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.events import Event, envelope, event_type, registered_types
from tests.helpers import clean_environment, wait_for


@event_type("tests.ThingHappened")
@dataclass(frozen=True)
class ThingHappened:
    """A test event."""

    number: int


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def record_things(store: Store, ctx: Context, count: int, start: int = 0) -> list[Event]:
    events = []
    with store.transaction() as session:
        for number in range(start, start + count):
            events.append(
                eventlog.record(session, envelope(ThingHappened(number), clock=ctx.clock, source="test"))
            )
    return events


def test_envelopes_round_trip_and_reject_garbage(ctx: Context) -> None:
    event = envelope(ThingHappened(7), clock=ctx.clock, source="sensor", site="plant-a", idempotency_key="k")
    again = Event.from_json(event.to_json())
    assert again == event and again.payload_as(ThingHappened) == ThingHappened(7)
    assert (event.type, event.schema_version, event.id.version) == ("tests.ThingHappened", 1, 7)
    assert "tests.ThingHappened" in registered_types()
    for garbage in (b"", b"{}", b"[1]", b'{"id": "x"}', event.to_json().replace(b"+00:00", b"")):
        with pytest.raises(InvalidInput, match="not a Plantwarden event"):
            Event.from_json(garbage)


def test_event_types_are_declared_in_the_past_tense_with_a_domain() -> None:
    with pytest.raises(ValueError, match=r"domain\.PastTense"):
        event_type("nodomain")
    with pytest.raises(TypeError, match="not a registered event payload"):
        envelope(object(), clock=None, source="x")  # type: ignore[arg-type]


def test_events_commit_with_the_change_or_not_at_all(ready: Store, ctx: Context) -> None:
    with pytest.raises(RuntimeError), ready.transaction() as session:
        eventlog.record(session, envelope(ThingHappened(1), clock=ctx.clock, source="test"))
        raise RuntimeError("the change failed")
    with ready.transaction() as session:
        assert eventlog.head_position(session) == 0


def test_an_idempotency_key_records_an_event_once(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        first = eventlog.record(
            session, envelope(ThingHappened(1), clock=ctx.clock, source="t", idempotency_key="k")
        )
        again = eventlog.record(
            session, envelope(ThingHappened(2), clock=ctx.clock, source="t", idempotency_key="k")
        )
    assert again.id == first.id
    with ready.transaction() as session:
        assert eventlog.head_position(session) == 1


def test_a_consumer_applies_each_event_once_and_keeps_its_cursor(ready: Store, ctx: Context) -> None:
    events = record_things(ready, ctx, 25)
    seen: list[int] = []

    def handler(_session: Session, event: Event) -> None:
        seen.append(event.payload_as(ThingHappened).number)

    consumer = eventlog.Consumer(ready, "counter", handler, batch_size=10)
    results = [consumer.run_once() for _ in range(4)]
    assert [r.delivered for r in results] == [10, 10, 5, 0]
    assert seen == list(range(25)) and consumer.position() == 25
    # The same events arriving again (say, from JetStream) change nothing.
    with ready.transaction() as session:
        assert not eventlog.first_delivery(session, "counter", events[3].id, ctx.clock)
    assert eventlog.Consumer(ready, "other", handler).run_once().delivered == 25


def test_a_failing_handler_moves_nothing(ready: Store, ctx: Context) -> None:
    record_things(ready, ctx, 5)

    def explode(_session: Session, event: Event) -> None:
        if event.payload_as(ThingHappened).number == 3:
            raise RuntimeError("poison")

    consumer = eventlog.Consumer(ready, "fragile", explode)
    with pytest.raises(RuntimeError, match="poison"):
        consumer.run_once()
    assert consumer.position() == 0
    with ready.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM event_inbox")).scalar() == 0


def test_a_killed_consumer_process_resumes_and_applies_every_event_once(
    ready: Store, ctx: Context, tmp_path: Path
) -> None:
    with ready.engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE applied (event_id VARCHAR(36) PRIMARY KEY, deliveries INTEGER)")
        )
    record_things(ready, ctx, 300)
    url = ready.engine.url.render_as_string(hide_password=False)
    if ready.dialect == "postgresql":
        with ready.engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = ready.engine.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    def applied() -> int:
        with ready.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM applied")).scalar_one())

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.eventlog_applier", url, "applier", "0.002"],
            env=clean_environment(),
            cwd=Path(__file__).resolve().parents[3],
        )

    process = start()
    wait_for(lambda: True if applied() >= 60 else None, what="the consumer to get going")
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = applied()
    assert 0 < killed_at < 300
    record_things(ready, ctx, 100, start=300)  # more arrive while it is down
    process = start()
    try:
        wait_for(lambda: True if applied() >= 400 else None, timeout=60, what="every event applied")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with ready.engine.connect() as connection:
        deliveries = connection.execute(
            text("SELECT deliveries, count(*) FROM applied GROUP BY deliveries")
        ).all()
    assert deliveries == [(1, 400)]
    assert eventlog.Consumer(ready, "applier", lambda s, e: None).position() == 400
