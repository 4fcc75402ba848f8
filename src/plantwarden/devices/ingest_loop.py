"""Receive device telemetry from the broker and feed it through `SecureIngest`, at least once.

The subscription is persistent (clean session off, a fixed client id) and acknowledges by hand:
a QoS 1 message is acknowledged after `flush` stored what it carried, never before (a flush every
`flush_every` seconds, or sooner when 500 messages wait). When storing fails, nothing handled
since the last flush is acknowledged and the connection is closed and opened again: the broker
sends those messages again. When the connection is lost, what was handled is flushed and its
acknowledgements are dropped (packet ids belong to the lost connection): the broker sends those
messages again, DUP set, and the stored replay windows count them as duplicates. The broker lost
or refusing: retry with a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from plantwarden.devices.ingest import SecureIngest
from plantwarden.monitoring.telemetry_devices import pause_before_retry
from plantwarden.monitoring.telemetry_mqtt import Broker, MqttError, MqttSubscription

log = logging.getLogger(__name__)


async def run_ingest(
    secure: SecureIngest,
    broker: Broker,
    topic_filter: str,
    stop: asyncio.Event,
    *,
    client_id: str,
    on_status: Callable[[str], None],
    flush_every: float = 1.0,
    max_messages: int | None = None,
) -> None:
    """Receive until `stop` is set (or `max_messages` were handled), flushing every
    `flush_every` seconds and at the end."""
    failures = 0
    where = f"{broker.host}:{broker.port}"
    while not stop.is_set():
        try:
            subscription = await MqttSubscription.open(
                broker, client_id, topic_filter, clean_session=False, manual_ack=True
            )
        except (OSError, TimeoutError, MqttError) as error:
            await pause_before_retry(stop, failures, f"cannot subscribe at {where}: {error}", on_status)
            failures += 1
            continue
        failures = 0
        on_status(f"subscribed to {topic_filter!r} at {where}")
        lost: BaseException | None = None
        try:
            await _receive(secure, subscription, stop, flush_every, max_messages)
        except (MqttError, OSError) as error:
            lost = error
        except Exception as error:  # storing failed: nothing acknowledged, the broker sends again
            log.exception("telemetry could not be stored")
            lost = error
        finally:
            acks: list[int] = []
            try:
                acks = await asyncio.to_thread(secure.flush)
            except Exception as error:
                log.exception("telemetry could not be stored")
                lost = lost or error
            if lost is None:
                with contextlib.suppress(MqttError, OSError):
                    await subscription.acknowledge(acks)
            await subscription.close()
        if lost is not None:
            await pause_before_retry(stop, 0, f"receiving at {where} stopped: {lost}", on_status)


async def _receive(
    secure: SecureIngest,
    subscription: MqttSubscription,
    stop: asyncio.Event,
    flush_every: float,
    max_messages: int | None,
) -> None:
    next_flush = time.monotonic() + flush_every
    while not stop.is_set():
        message = await subscription.next_message(max(0.0, min(next_flush - time.monotonic(), 0.2)))
        if message is not None:
            secure.handle(message)
            if max_messages is not None and secure.counts.messages >= max_messages:
                stop.set()
        if time.monotonic() >= next_flush or secure.acks_due:
            await subscription.acknowledge(await asyncio.to_thread(secure.flush))
            next_flush = time.monotonic() + flush_every
