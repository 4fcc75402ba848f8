"""The NATS JetStream transport of domain events (see docs/events.md for the failure model).

- The relay (`Relay`) reads a batch of the embedded event log after its own cursor, publishes
  each event to `<prefix>.<site or _>.<event type>` with the header `Nats-Msg-Id: <event id>`,
  waiting for the stream's acknowledgement of each, and only then commits its cursor. A relay
  killed in between republishes that batch; the stream drops the copies it has already stored,
  by message id, within its duplicate window.
- A `StreamConsumer` reads the stream through a durable pull consumer with explicit acks. It
  applies each event with its handler in one store transaction together with the inbox marker
  (`eventlog.first_delivery`) and acknowledges only after that transaction has committed, so a
  redelivery changes nothing. A message that is not an event is logged, counted and terminated.

nats-py is asyncio and the store is synchronous: store calls are short and run directly on the
event loop, which serves one relay or one consumer per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from plantwarden.core import eventlog
from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.config import NatsSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.events import Event

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
RELAY_CURSOR_PREFIX = "jetstream-relay"
_NOT_IN_A_TOKEN = re.compile(r"[\s.*>]")


class TransportUnavailable(PlantwardenError):
    """The NATS server cannot be reached, or refuses what the transport needs."""

    code = "transport_unavailable"


def subject_for(prefix: str, event: Event) -> str:
    """The subject of an event: `<prefix>.<site or _>.<event type>` (type `domain.Name`)."""
    site = _NOT_IN_A_TOKEN.sub("_", event.site) if event.site else "_"
    kind = ".".join(_NOT_IN_A_TOKEN.sub("_", part) or "_" for part in event.type.split("."))
    return f"{prefix}.{site}.{kind}"


def relay_cursor(settings: NatsSettings) -> str:
    """The name of the relay's cursor on the event log (one per stream)."""
    return f"{RELAY_CURSOR_PREFIX}:{settings.stream}"


async def connect(settings: NatsSettings, *, name: str) -> Client:
    """Connect to NATS; once connected, the client reconnects for ever after a loss.

    The first connection is bounded by `nats.connect_timeout`: `TransportUnavailable` after it.
    """
    client = Client()

    async def disconnected() -> None:
        if not client.is_closed:  # a deliberate close is no news
            log.warning("lost the connection to NATS at %s; reconnecting", settings.url)

    async def reconnected() -> None:
        log.info("reconnected to NATS at %s", settings.url)

    connecting = client.connect(
        servers=[url.strip() for url in settings.url.split(",")],
        name=name,
        connect_timeout=max(1, math.ceil(settings.connect_timeout)),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        error_cb=_log_error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    try:
        async with asyncio.timeout(settings.connect_timeout):
            await connecting
    except (TimeoutError, OSError, nats.errors.Error) as error:
        await client.close()
        reason = str(error) or f"no connection within {settings.connect_timeout:g} s"
        raise TransportUnavailable(f"cannot reach NATS at {settings.url}: {reason}") from error
    return client


async def _log_error(error: Exception) -> None:
    log.warning("NATS: %s", str(error) or type(error).__name__)


async def ensure_stream(js: JetStreamContext, settings: NatsSettings) -> None:
    """Create the events stream (file storage, subjects `<prefix>.>`, deduplication by
    `Nats-Msg-Id` within the window), or bring those two settings of an existing one up to date.

    Anything else an operator set on an existing stream (limits, replicas) is kept.
    """
    subjects = [f"{settings.subject_prefix}.>"]
    try:
        config = (await js.stream_info(settings.stream)).config
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=settings.stream,
                subjects=subjects,
                storage=StorageType.FILE,
                duplicate_window=settings.duplicate_window,
            )
        )
        log.info("created stream %s for %s", settings.stream, subjects[0])
        return
    if config.storage != StorageType.FILE:
        log.warning(
            "stream %s keeps events in %s storage: a server restart loses them", config.name, config.storage
        )
    if config.subjects != subjects or config.duplicate_window != settings.duplicate_window:
        await js.update_stream(
            dataclasses.replace(config, subjects=subjects, duplicate_window=settings.duplicate_window)
        )
        log.info(
            "updated stream %s: subjects %s, duplicate window %g s",
            config.name,
            subjects[0],
            settings.duplicate_window,
        )


@dataclass(frozen=True)
class RelayBatch:
    """One batch of the relay: newly stored events, copies the stream dropped, the cursor after."""

    published: int
    duplicates: int
    position: int


class Relay:
    """Publishes the event log to the stream in log order; the cursor moves only after the acks."""

    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        settings: NatsSettings,
        *,
        batch_size: int = 200,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.js = js
        self.settings = settings
        self.name = relay_cursor(settings)
        self.batch_size = batch_size
        self.ack_timeout = settings.ack_timeout
        self.clock = clock or SystemClock()

    def pending(self) -> tuple[int, list[tuple[int, Event]]]:
        """The cursor and the next batch of events after it."""
        with self.store.transaction() as session:
            position = eventlog.cursor_position(session, self.name)
            return position, eventlog.read_after(session, position, self.batch_size)

    async def publish(self, events: list[Event]) -> list[PubAck]:
        """Publish events one by one, each once the previous one is acknowledged.

        One at a time keeps the stream in log order even when the connection drops in the middle
        of a batch (pipelined publishes could store a later event before an earlier one lost in
        flight). Raises on a refusal, or `TimeoutError` after `nats.ack_timeout` seconds without
        an acknowledgement; the caller then commits nothing and publishes the batch again.
        """
        return [
            await self.js.publish(
                subject_for(self.settings.subject_prefix, event),
                event.to_json(),
                timeout=self.ack_timeout,
                stream=self.settings.stream,
                headers={MSG_ID_HEADER: str(event.id)},
            )
            for event in events
        ]

    async def run_once(self) -> RelayBatch:
        """Relay the next batch: read, publish, wait for the acks, commit the cursor."""
        position, batch = self.pending()
        if not batch:
            return RelayBatch(0, 0, position)
        acks = await self.publish([event for _, event in batch])
        position = batch[-1][0]
        with self.store.transaction() as session:
            eventlog.advance_cursor(session, self.name, position, clock=self.clock)
        duplicates = sum(1 for ack in acks if ack.duplicate)
        return RelayBatch(len(acks) - duplicates, duplicates, position)

    async def step(self) -> bool:
        """One batch, reported in the log; False when there was nothing to relay."""
        result = await self.run_once()
        if result.published or result.duplicates:
            log.info(
                "relayed %d events to %s (%d already there), cursor at %d",
                result.published + result.duplicates,
                self.settings.stream,
                result.duplicates,
                result.position,
            )
        return bool(result.published or result.duplicates)

    async def run(self, stop: asyncio.Event, *, idle_wait: float = 0.5) -> None:
        """Relay until `stop` is set; a failed batch is retried (never skipped) with backoff."""
        await repeat(f"relay to {self.settings.stream}", self.step, stop, idle_wait=idle_wait)


@dataclass(frozen=True)
class ConsumedBatch:
    """One fetch of a stream consumer: events applied, redeliveries skipped, malformed messages."""

    applied: int = 0
    skipped: int = 0
    malformed: int = 0


class StreamConsumer:
    """A durable pull consumer of the stream that applies each event exactly once in its effects.

    `name` is the durable consumer's name on the stream and its name in the store's inbox.
    """

    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        settings: NatsSettings,
        name: str,
        handler: eventlog.Handler,
        *,
        filter_subject: str | None = None,
        batch_size: int = 100,
        ack_wait: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.js = js
        self.settings = settings
        self.name = name
        self.handler = handler
        self.filter_subject = filter_subject or f"{settings.subject_prefix}.>"
        self.batch_size = batch_size
        self.ack_wait = ack_wait
        self.clock = clock or SystemClock()
        self.malformed = 0
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def subscription(self) -> JetStreamContext.PullSubscription:
        """Bind to the durable consumer, creating it (explicit acks, from the start) if needed."""
        if self._subscription is None:
            config = ConsumerConfig(
                durable_name=self.name,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_deliver=-1,
            )
            self._subscription = await self.js.pull_subscribe(
                self.filter_subject, durable=self.name, stream=self.settings.stream, config=config
            )
        return self._subscription

    def apply(self, event: Event) -> bool:
        """Apply the event and mark it in the inbox, in one transaction; False for a redelivery."""
        with self.store.transaction() as session:
            if not eventlog.first_delivery(session, self.name, event.id, self.clock):
                return False
            self.handler(session, event)
            return True

    async def handle(self, message: Msg) -> str:
        """Apply one message and acknowledge it after the commit: `applied`, `skipped` or
        `malformed` (logged and terminated, so that it is never delivered again)."""
        try:
            event = Event.from_json(message.data)
        except InvalidInput as error:
            self.malformed += 1
            log.error("%s: dropping a malformed message on %s: %s", self.name, message.subject, error)
            await message.term()
            return "malformed"
        outcome = "applied" if self.apply(event) else "skipped"
        await message.ack()
        return outcome

    async def run_once(self, *, timeout: float = 1.0) -> ConsumedBatch:
        """Fetch up to `batch_size` messages (waiting up to `timeout` seconds) and handle them.

        When a handler fails, the failed message and the rest of the batch are handed back
        (nak) for redelivery and the error propagates: no event is skipped.
        """
        subscription = await self.subscription()
        try:
            messages = await subscription.fetch(self.batch_size, timeout=timeout)
        except TimeoutError:
            return ConsumedBatch()
        counts = {"applied": 0, "skipped": 0, "malformed": 0}
        for index, message in enumerate(messages):
            try:
                counts[await self.handle(message)] += 1
            except Exception:
                for unhandled in messages[index:]:
                    await unhandled.nak()
                raise
        return ConsumedBatch(**counts)

    async def step(self) -> bool:
        """One fetch, reported in the log (the fetch itself waits when there is nothing)."""
        result = await self.run_once()
        if result != ConsumedBatch():
            log.info(
                "%s: %d applied, %d redeliveries skipped, %d malformed",
                self.name,
                result.applied,
                result.skipped,
                result.malformed,
            )
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; a failed batch is redelivered (never skipped) with backoff."""
        await repeat(f"consumer {self.name}", self.step, stop, idle_wait=0.5)


async def repeat(
    what: str, step: Callable[[], Awaitable[bool]], stop: asyncio.Event, *, idle_wait: float
) -> None:
    """Call `step` until `stop` is set, waiting `idle_wait` seconds after an idle step and
    longer after each failure in a row (up to 30 seconds)."""
    failures = 0
    while not stop.is_set():
        try:
            busy = await step()
        except Exception as error:
            failures += 1
            expected = isinstance(error, TimeoutError | nats.errors.Error)  # NATS away or slow
            level = logging.WARNING if expected else logging.ERROR
            reason = str(error) or type(error).__name__
            log.log(
                level, "%s failed (attempt %d): %s; retrying", what, failures, reason, exc_info=not expected
            )
            await pause(stop, min(30.0, idle_wait * 2**failures))
            continue
        failures = 0
        if not busy:
            await pause(stop, idle_wait)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def run_relay(
    store: Store,
    settings: NatsSettings,
    stop: asyncio.Event,
    *,
    batch_size: int = 200,
    clock: Clock | None = None,
) -> None:
    """Connect, make sure the stream exists, and relay the event log until `stop` is set."""
    client = await connect(settings, name="plantwarden-relay")
    try:
        js = client.jetstream()
        await ensure_stream(js, settings)
        relay = Relay(store, js, settings, batch_size=batch_size, clock=clock)
        with store.transaction() as session:
            start, head = eventlog.cursor_position(session, relay.name), eventlog.head_position(session)
        log.info(
            "relaying the event log to %s at %s from %d (head %d)", settings.stream, settings.url, start, head
        )
        await relay.run(stop)
    finally:
        await client.close()
    log.info("relay stopped")


async def run_consumer(
    store: Store,
    settings: NatsSettings,
    name: str,
    handler: eventlog.Handler,
    stop: asyncio.Event,
    *,
    batch_size: int = 100,
    ack_wait: float = 30.0,
) -> None:
    """Connect and apply the stream's events with `handler` until `stop` is set."""
    client = await connect(settings, name=f"plantwarden-{name}")
    try:
        js = client.jetstream()
        consumer = StreamConsumer(
            store, js, settings, name, handler, batch_size=batch_size, ack_wait=ack_wait
        )
        await consumer.run(stop)
    finally:
        await client.close()
