"""Device telemetry from MQTT into the records plane: decode, authenticate, buffer, flush.

A device's message (the simulated plant's format, `sim/behaviour.py`) is a JSON object:
`{"device": "tank-1", "seq": 42, "ts": 1795680000.123, "values": {"level": 51.2, ...},
"mac": "<hex>"}`, where `ts` is seconds since the epoch and `mac` is HMAC-SHA256, under the
device's key, of the canonical JSON of the other fields (keys sorted, no spaces). Each value
becomes one sample (device, variable = the value's name, quality 0).

With keys (device -> key), a message from a device without a key, or whose tag does not verify,
is dropped and counted: anyone able to publish to the broker could otherwise write any device's
values. Without keys tags are not checked. A message published on another device's topic
(`SITE/ZONE/DEVICE/telemetry`), malformed, or an exact repeat of a recent one (a QoS 1
redelivery, a naive replay) is dropped too. Nothing a message holds can stop the subscriber: a
message whose handling fails in any way is counted as malformed and reported, and the next one
is handled; and what is remembered per device (for repeats) is bounded, whatever names the
messages make up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import utf8_text
from plantwarden.monitoring.telemetry import Sample, TelemetryIngest, sample_from
from plantwarden.monitoring.telemetry_mqtt import Broker, MqttError, MqttSubscription

RECENT_PER_DEVICE = 256
RECENT_DEVICES = 1000
"""Devices whose recent messages are remembered (the least recently heard forgotten first)."""
DEVICE_KEY = 128
"""Characters of a device name used as a key (longer names are refused as samples anyway)."""

log = logging.getLogger(__name__)
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    FORGED = "forged"
    UNKNOWN_DEVICE = "unknown device"
    WRONG_TOPIC = "wrong topic"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"


def load_keys(path: Path) -> dict[str, bytes]:
    """Device keys from a JSON file: an object mapping each device name to its key in hex."""
    try:
        raw = json.loads(utf8_text(path.read_bytes()))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or NotUtf8Text
        raise InvalidInput(f"cannot read device keys from {path}: {error}") from None
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(f"{path} must hold a JSON object mapping device names to hex keys")
    keys = {}
    for device, text in raw.items():
        try:
            keys[str(device)] = bytes.fromhex(text)
        except (TypeError, ValueError):
            raise InvalidInput(f"{path}: the key of {device!r} is not hex") from None
        if len(keys[str(device)]) < 16:
            raise InvalidInput(f"{path}: the key of {device!r} is shorter than 16 bytes")
    return keys


def verify_tag(body: Mapping[str, Any], key: bytes) -> bool:
    """Whether `body["mac"]` is the HMAC-SHA256 of the rest of `body` under `key`."""
    tag = body.get("mac")
    rest = {k: v for k, v in body.items() if k != "mac"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()
    expected = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return isinstance(tag, str) and hmac.compare_digest(tag, expected)


@dataclass(frozen=True)
class Decoded:
    verdict: Verdict
    device: str | None
    samples: tuple[Sample, ...] = ()
    reason: str = ""


def decode_message(topic: str, payload: bytes, keys: Mapping[str, bytes] | None, now_ns: int) -> Decoded:
    """The samples of one device message, or why it is dropped."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return Decoded(Verdict.MALFORMED, None, reason="not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("device"), str):
        return Decoded(Verdict.MALFORMED, None, reason="not a device message")
    device: str = body["device"]
    levels = topic.split("/")
    if len(levels) == 4 and levels[3] == "telemetry" and levels[2] != device:
        return Decoded(Verdict.WRONG_TOPIC, device, reason=f"published on {levels[2]}'s topic")
    if keys is not None:
        if device not in keys:
            return Decoded(Verdict.UNKNOWN_DEVICE, device, reason="no key for this device")
        if not verify_tag(body, keys[device]):
            return Decoded(Verdict.FORGED, device, reason="its tag does not verify")
    try:
        return Decoded(Verdict.ACCEPTED, device, _samples(body, device, now_ns))
    except InvalidInput as error:
        return Decoded(Verdict.MALFORMED, device, reason=error.message)


def _samples(body: dict[str, Any], device: str, now_ns: int) -> tuple[Sample, ...]:
    ts, values = body.get("ts"), body.get("values")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not _finite(ts):
        raise InvalidInput("ts must be seconds since the epoch")
    if not isinstance(values, dict) or not values:
        raise InvalidInput("values must be a non-empty object")
    try:
        ts_ns = round(ts * 1_000_000) * 1000
    except OverflowError:  # a float ts near the largest float
        raise InvalidInput("ts must be seconds since the epoch") from None
    return tuple(
        sample_from({"ts": ts_ns, "device": device, "variable": name, "value": value}, now_ns)
        for name, value in values.items()
    )


def _finite(number: int | float) -> bool:
    """Whether `number` is finite: an integer too large for a float (10**400) is not, to us."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


@dataclass
class SubscriberCounters:
    """What the subscriber received and what became of it."""

    messages: int = 0
    samples_written: int = 0
    by_verdict: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))

    def summary(self) -> str:
        parts = [f"{count} {verdict.value}" for verdict, count in self.by_verdict.items() if count]
        return (
            f"{self.messages} messages ({', '.join(parts) or 'none'}); {self.samples_written} samples written"
        )


Rejected = Callable[[Decoded, str], None]


class TelemetrySubscriber:
    """Turns device messages into samples of one site, written through `ingest` in batches."""

    def __init__(
        self, ingest: TelemetryIngest, site: str, keys: Mapping[str, bytes] | None, on_rejected: Rejected
    ) -> None:
        self.ingest, self.site, self.keys = ingest, site, keys
        self.on_rejected = on_rejected
        self.counters = SubscriberCounters()
        self._pending: list[Sample] = []
        self._recent: OrderedDict[str, OrderedDict[bytes, None]] = OrderedDict()

    def handle(self, topic: str, payload: bytes) -> Decoded:
        """Decode one message; keep its samples for the next flush or report why it is dropped.
        Never raises for what a message holds: a failure is a malformed message."""
        self.counters.messages += 1
        try:
            decoded = self._decode(topic, payload)
        except Exception as error:  # a message must never stop the subscriber
            log.warning("telemetry message on %.200r failed to decode", topic, exc_info=True)
            decoded = Decoded(Verdict.MALFORMED, None, reason=f"cannot be handled ({type(error).__name__})")
        self.counters.by_verdict[decoded.verdict] += 1
        if decoded.verdict is Verdict.ACCEPTED:
            self._pending.extend(decoded.samples)
        else:
            self.on_rejected(decoded, topic)
        return decoded

    def _decode(self, topic: str, payload: bytes) -> Decoded:
        decoded = decode_message(topic, payload, self.keys, time.time_ns())
        if decoded.verdict is Verdict.ACCEPTED and self._repeated(decoded.device or "", payload):
            decoded = Decoded(Verdict.DUPLICATE, decoded.device, reason="the same message came recently")
        return decoded

    def _repeated(self, device: str, payload: bytes) -> bool:
        digest = hashlib.sha256(payload).digest()
        key = device[:DEVICE_KEY]
        recent = self._recent.setdefault(key, OrderedDict())
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_DEVICES:
            self._recent.popitem(last=False)
        if digest in recent:
            return True
        recent[digest] = None
        if len(recent) > RECENT_PER_DEVICE:
            recent.popitem(last=False)
        return False

    def flush(self) -> int:
        """Write the pending samples; how many."""
        pending, self._pending = self._pending, []
        written = self.ingest.write(self.site, pending)
        self.counters.samples_written += written
        return written

    async def run(
        self,
        broker: Broker,
        topic_filter: str,
        stop: asyncio.Event,
        *,
        client_id: str,
        on_status: Callable[[str], None],
        flush_every: float = 1.0,
        max_messages: int | None = None,
    ) -> None:
        """Receive until `stop` is set (or `max_messages`), flushing every `flush_every` seconds
        and at the end; reconnects with a growing pause when the broker is lost."""
        failures = 0
        where = f"{broker.host}:{broker.port}"
        while not stop.is_set():
            try:
                subscription = await MqttSubscription.open(broker, client_id, topic_filter)
            except (OSError, TimeoutError, MqttError) as error:
                await pause_before_retry(stop, failures, f"cannot subscribe at {where}: {error}", on_status)
                failures += 1
                continue
            failures = 0
            on_status(f"subscribed to {topic_filter!r} at {where}")
            lost: MqttError | None = None
            try:
                await self._receive(subscription, stop, flush_every, max_messages)
            except MqttError as error:
                lost = error
            finally:
                await subscription.close()
                await asyncio.to_thread(self.flush)
            if lost is not None:
                await pause_before_retry(stop, 0, str(lost), on_status)

    async def _receive(
        self,
        subscription: MqttSubscription,
        stop: asyncio.Event,
        flush_every: float,
        max_messages: int | None,
    ) -> None:
        next_flush = time.monotonic() + flush_every
        while not stop.is_set():
            message = await subscription.next_message(max(0.0, min(next_flush - time.monotonic(), 0.2)))
            if message is not None:
                try:
                    self.handle(message.topic, message.payload)
                except Exception:  # e.g. reporting it failed: one message never stops the loop
                    log.exception("telemetry message on %.200r could not be handled", message.topic)
                if max_messages is not None and self.counters.messages >= max_messages:
                    stop.set()
            if time.monotonic() >= next_flush:
                await asyncio.to_thread(self.flush)
                next_flush = time.monotonic() + flush_every


async def pause_before_retry(
    stop: asyncio.Event, failures: int, problem: str, on_status: Callable[[str], None]
) -> None:
    """Say what went wrong, then wait before the next attempt (longer after each failure)."""
    pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
    on_status(f"{problem}; retrying in {pause:.0f} s")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(pause):
            await stop.wait()
