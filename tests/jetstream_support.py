"""What the JetStream tests share: the NATS server of this machine, a stream per test, a test
event type, and an idempotency probe (a table that counts how often each event was applied).

NATS is found at PW_TEST_NATS_URL (default: the local server). When it is unreachable the tests
skip, except under CI=true, where they fail. Every test uses its own stream and subject prefix
(tests run in parallel) and deletes its stream at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import Column, Integer, MetaData, Table, Uuid, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.clock import Clock
from plantwarden.core.config import NatsSettings
from plantwarden.core.db import Store
from plantwarden.core.events import Event, envelope, event_type
from plantwarden.core.jetstream import Relay, RelayBatch, connect, ensure_stream

NATS_URL = os.environ.get("PW_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() == "true"


def nats_problem(url: str = NATS_URL) -> str | None:
    """Why the NATS server cannot serve these tests (None when it can): unreachable, or no JetStream."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=3) as sock:
            greeting = sock.makefile("rb").readline()
    except OSError as error:
        return str(error)
    if not greeting.startswith(b"INFO "):
        return f"not a NATS server: {greeting[:60]!r}"
    if not json.loads(greeting[5:]).get("jetstream"):
        return "the server runs without JetStream (start it with -js)"
    return None


def unique_nats_settings(**overrides: Any) -> NatsSettings:
    """Settings with a stream and a subject prefix of this test's own."""
    token = uuid.uuid4().hex[:12]
    values = {"url": NATS_URL, "stream": f"PWTEST_{token}", "subject_prefix": f"pwtest.{token}"}
    return NatsSettings(**{**values, **overrides})


def nats_environment(settings: NatsSettings) -> dict[str, str]:
    """The `PLANTWARDEN_NATS_*` variables that give a process these settings."""
    return {
        "PLANTWARDEN_NATS_URL": settings.url,
        "PLANTWARDEN_NATS_STREAM": settings.stream,
        "PLANTWARDEN_NATS_SUBJECT_PREFIX": settings.subject_prefix,
    }


async def _delete_stream(settings: NatsSettings) -> None:
    client = await nats.connect(settings.url)
    try:
        await client.jetstream().delete_stream(settings.stream)
    except NotFoundError:
        pass
    finally:
        await client.close()


def require(problem: str | None, what: str) -> None:
    """Skip (locally) or fail (CI=true) when `what` is unavailable."""
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI and unavailable: {problem}")
    pytest.skip(f"{what} unavailable: {problem}")


def stream_for_test() -> Iterator[NatsSettings]:
    """Body of a fixture: skip without NATS, yield unique settings, delete the stream after."""
    require(nats_problem(), f"NATS with JetStream at {NATS_URL}")
    settings = unique_nats_settings()
    yield settings
    asyncio.run(_delete_stream(settings))


@dataclass(frozen=True)
class StoredMessage:
    subject: str
    msg_id: str | None
    event: Event


async def _stream_messages(settings: NatsSettings) -> list[StoredMessage]:
    client = await nats.connect(settings.url)
    try:
        js = client.jetstream()
        state = (await js.stream_info(settings.stream)).state
        found = []
        for sequence in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            raw = await js.get_msg(settings.stream, sequence)
            msg_id = (raw.headers or {}).get("Nats-Msg-Id")
            found.append(StoredMessage(raw.subject or "", msg_id, Event.from_json(raw.data or b"")))
        return found
    finally:
        await client.close()


def stream_messages(settings: NatsSettings) -> list[StoredMessage]:
    """Every message in the test's stream, in stream order (all must be events)."""
    return asyncio.run(_stream_messages(settings))


@event_type("testing.Ticked")
@dataclass(frozen=True)
class Ticked:
    """A test event: the n-th tick."""

    n: int


probe_metadata = MetaData()
applied = Table(
    "test_applied",
    probe_metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("times", Integer, nullable=False),
)


def create_probe(store: Store) -> None:
    """Create the probe table in the store (next to the migrated schema)."""
    probe_metadata.create_all(store.engine)


def count_application(session: Session, event: Event) -> None:
    """The handler under test: counts each application of an event (1 = applied exactly once)."""
    insert: Any = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(applied).values(event_id=event.id, times=1)
    session.execute(
        statement.on_conflict_do_update(index_elements=["event_id"], set_={"times": applied.c.times + 1})
    )


def applications(store: Store) -> dict[uuid.UUID, int]:
    """How often each event was applied, by event id."""
    with store.transaction() as session:
        return {row.event_id: row.times for row in session.execute(select(applied))}


def record_ticks(store: Store, clock: Clock, count: int, *, site: str | None = None) -> list[Event]:
    with store.transaction() as session:
        return [
            eventlog.record(session, envelope(Ticked(n), clock=clock, source="test", site=site))
            for n in range(count)
        ]


def with_jetstream(settings: NatsSettings, scenario: Callable[[Any], Any]) -> Any:
    """Run `scenario(js)` on a fresh connection, with the stream in place."""

    async def run() -> Any:
        client = await connect(settings, name="test")
        try:
            js = client.jetstream()
            await ensure_stream(js, settings)
            return await scenario(js)
        finally:
            await client.close()

    return asyncio.run(run())


def relay_all(store: Store, settings: NatsSettings, **options: Any) -> list[RelayBatch]:
    """Relay until the log is exhausted; the batches that did something."""

    async def scenario(js: Any) -> list[RelayBatch]:
        relay, batches = Relay(store, js, settings, **options), []
        while (batch := await relay.run_once()).published or batch.duplicates:
            batches.append(batch)
        return batches

    return list(with_jetstream(settings, scenario))
