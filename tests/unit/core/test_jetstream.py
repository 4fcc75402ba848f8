"""The JetStream transport against the NATS server of this machine: the relay (publish acks,
deduplication by event id, the cursor) and the durable stream consumer (inbox, acks, malformed
messages, failing handlers). Store-side tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import nats.js.errors
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from plantwarden.core import eventlog, migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.config import NatsSettings
from plantwarden.core.db import Store
from plantwarden.core.events import Event, envelope
from plantwarden.core.jetstream import (
    ConsumedBatch,
    Relay,
    RelayBatch,
    StreamConsumer,
    TransportUnavailable,
    connect,
    ensure_stream,
    relay_cursor,
    subject_for,
)
from tests.jetstream_support import (
    Ticked,
    applications,
    count_application,
    create_probe,
    record_ticks,
    relay_all,
    stream_for_test,
    stream_messages,
    with_jetstream,
)


@pytest.fixture
def nats_settings() -> Iterator[NatsSettings]:
    yield from stream_for_test()


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    create_probe(store)
    return store


def consume_all(
    store: Store, settings: NatsSettings, handler: eventlog.Handler, name: str = "applier"
) -> Any:
    """Fetch until a fetch comes back empty; the batches, the consumer and the server's view of it."""

    async def scenario(js: Any) -> tuple[list[ConsumedBatch], StreamConsumer, Any]:
        consumer, batches = StreamConsumer(store, js, settings, name, handler, batch_size=7), []
        while (batch := await consumer.run_once(timeout=1.0)) != ConsumedBatch():
            batches.append(batch)
        info = await js.consumer_info(settings.stream, name)
        return batches, consumer, info

    return with_jetstream(settings, scenario)


def totals(batches: list[ConsumedBatch]) -> tuple[int, int, int]:
    """Events applied, redeliveries skipped and malformed messages over all batches."""
    return (
        sum(b.applied for b in batches),
        sum(b.skipped for b in batches),
        sum(b.malformed for b in batches),
    )


def test_subjects_name_the_site_and_the_event_type(clock: FixedClock) -> None:
    event = envelope(Ticked(1), clock=clock, source="test", site="plant-a")
    assert subject_for("pw.events", event) == "pw.events.plant-a.testing.Ticked"
    assert subject_for("pw.events", dataclasses.replace(event, site=None)) == "pw.events._.testing.Ticked"
    odd = dataclasses.replace(event, site="a.b c", type="odd.Na*me>")
    assert subject_for("pw", odd) == "pw.a_b_c.odd.Na_me_"


def test_the_stream_stores_files_and_deduplicates_within_the_window(nats_settings: NatsSettings) -> None:
    async def scenario(js: Any) -> Any:
        config = (await js.stream_info(nats_settings.stream)).config
        await js.update_stream(dataclasses.replace(config, max_age=3600.0))  # an operator's limit
        await ensure_stream(js, dataclasses.replace(nats_settings, duplicate_window=30.0))
        return (await js.stream_info(nats_settings.stream)).config

    config = with_jetstream(nats_settings, scenario)
    assert config.subjects == [f"{nats_settings.subject_prefix}.>"]
    assert config.storage == "file"
    assert config.duplicate_window == 30.0
    assert config.max_age == 3600.0


def test_the_relay_publishes_the_log_in_order_and_then_advances_its_cursor(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    events = record_ticks(ready, clock, 25, site="plant-a") + record_ticks(ready, clock, 5)
    batches = relay_all(ready, nats_settings, batch_size=10)
    assert batches == [RelayBatch(10, 0, 10), RelayBatch(10, 0, 20), RelayBatch(10, 0, 30)]
    stored = stream_messages(nats_settings)
    assert [m.event for m in stored] == events
    assert [m.msg_id for m in stored] == [str(e.id) for e in events]
    prefix = nats_settings.subject_prefix
    assert {m.subject for m in stored} == {f"{prefix}.plant-a.testing.Ticked", f"{prefix}._.testing.Ticked"}
    with ready.transaction() as session:
        assert eventlog.cursor_position(session, relay_cursor(nats_settings)) == 30


def test_publishing_the_same_event_twice_stores_it_once(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    event = envelope(Ticked(7), clock=clock, source="test")

    async def scenario(js: Any) -> Any:
        relay = Relay(ready, js, nats_settings)
        return await relay.publish([event]), await relay.publish([event])

    (first,), (second,) = with_jetstream(nats_settings, scenario)
    assert not first.duplicate and second.duplicate and first.seq == second.seq == 1
    assert [m.event for m in stream_messages(nats_settings)] == [event]


def test_a_relay_killed_before_its_cursor_commit_republishes_and_the_stream_drops_the_copies(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    events = record_ticks(ready, clock, 20)
    relay_all(ready, nats_settings, batch_size=8)
    with ready.transaction() as session:  # the crash: the acks came, the cursor commit did not
        session.execute(update(eventlog.ConsumerCursor).values(position=0))
    events += record_ticks(ready, clock, 3)
    batches = relay_all(ready, nats_settings, batch_size=8)
    assert sum(b.duplicates for b in batches) == 20 and sum(b.published for b in batches) == 3
    assert [m.event for m in stream_messages(nats_settings)] == events


def test_the_cursor_stays_put_when_the_stream_does_not_acknowledge(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    record_ticks(ready, clock, 3)
    elsewhere = dataclasses.replace(
        nats_settings, subject_prefix=nats_settings.subject_prefix + "-nostream", ack_timeout=2.0
    )

    async def scenario(js: Any) -> None:
        with pytest.raises((nats.js.errors.Error, TimeoutError)):
            await Relay(ready, js, elsewhere).run_once()

    with_jetstream(nats_settings, scenario)
    with ready.transaction() as session:
        assert eventlog.cursor_position(session, relay_cursor(elsewhere)) == 0


def test_an_unreachable_server_is_a_clear_error() -> None:
    nowhere = NatsSettings(url="nats://127.0.0.1:9", connect_timeout=1.0)
    with pytest.raises(TransportUnavailable, match=r"cannot reach NATS at nats://127\.0\.0\.1:9"):
        asyncio.run(connect(nowhere, name="test"))


def test_a_stream_consumer_applies_every_event_once_and_acks_after_the_commit(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    events = record_ticks(ready, clock, 30, site="plant-a")
    relay_all(ready, nats_settings)
    batches, _, info = consume_all(ready, nats_settings, count_application)
    assert totals(batches) == (30, 0, 0)
    assert applications(ready) == {e.id: 1 for e in events}
    assert (info.num_ack_pending, info.num_pending, info.delivered.consumer_seq) == (0, 0, 30)
    again, _, _ = consume_all(ready, nats_settings, count_application)
    assert again == []


def test_an_event_delivered_again_is_acknowledged_but_not_applied_again(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    events = record_ticks(ready, clock, 4)
    relay_all(ready, nats_settings)
    consume_all(ready, nats_settings, count_application)

    async def publish_copy(js: Any) -> None:  # a copy that escaped deduplication (another msg id)
        await js.publish(subject_for(nats_settings.subject_prefix, events[2]), events[2].to_json())

    with_jetstream(nats_settings, publish_copy)
    batches, _, info = consume_all(ready, nats_settings, count_application)
    assert totals(batches) == (0, 1, 0) and info.num_ack_pending == 0
    assert applications(ready) == {e.id: 1 for e in events}


def test_a_malformed_message_is_logged_counted_and_terminated(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings, caplog: pytest.LogCaptureFixture
) -> None:
    async def publish_garbage(js: Any) -> None:
        for data in (b"not an event", b'{"id": "not-a-uuid"}'):
            await js.publish(f"{nats_settings.subject_prefix}._.testing.Ticked", data)

    with_jetstream(nats_settings, publish_garbage)
    events = record_ticks(ready, clock, 3)
    relay_all(ready, nats_settings)
    batches, consumer, info = consume_all(ready, nats_settings, count_application)
    assert totals(batches) == (3, 0, 2) and consumer.malformed == 2
    assert applications(ready) == {e.id: 1 for e in events}
    assert (info.num_ack_pending, info.num_redelivered, info.num_pending) == (0, 0, 0)
    assert caplog.text.count("dropping a malformed message") == 2
    assert consume_all(ready, nats_settings, count_application)[0] == []


def test_a_failing_handler_leaves_its_event_and_the_rest_of_the_batch_for_redelivery(
    ready: Store, clock: FixedClock, nats_settings: NatsSettings
) -> None:
    events = record_ticks(ready, clock, 5)
    relay_all(ready, nats_settings)
    failed: list[int] = []

    def fails_once_on_the_third(session: Session, event: Event) -> None:
        count_application(session, event)
        if event.payload["n"] == 2 and not failed:
            failed.append(2)
            raise RuntimeError("the handler broke")

    async def first_fetch(js: Any) -> None:
        consumer = StreamConsumer(ready, js, nats_settings, "applier", fails_once_on_the_third)
        with pytest.raises(RuntimeError, match="the handler broke"):
            await consumer.run_once()

    with_jetstream(nats_settings, first_fetch)
    assert applications(ready) == {e.id: 1 for e in events[:2]}  # the failed one rolled back
    batches, _, info = consume_all(ready, nats_settings, fails_once_on_the_third)
    assert totals(batches) == (3, 0, 0) and info.num_ack_pending == 0
    assert applications(ready) == {e.id: 1 for e in events}


def test_the_relay_cursor_only_moves_forward_unless_it_is_set_back(ready: Store, clock: FixedClock) -> None:
    events = record_ticks(ready, clock, 5)
    with ready.transaction() as session:
        assert eventlog.cursor_position(session, "relay") == 0
        eventlog.advance_cursor(session, "relay", 4, clock=clock)
        eventlog.advance_cursor(session, "relay", 2, clock=clock)  # a late, slower relay
        assert eventlog.cursor_position(session, "relay") == 4
        eventlog.set_cursor(session, "relay", 1, clock=clock)  # replaying, on purpose
        assert eventlog.cursor_position(session, "relay") == 1
        assert [event for _, event in eventlog.latest(session, 2)] == events[3:]
