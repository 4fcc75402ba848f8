"""The platform side of end-to-end device telemetry: a message from the broker is opened (decrypted
with the platform's recipient key, its device signature verified), checked (certificate of this
site, not revoked, not expired; topic, device and zone as the certificate says; not a replay),
and its values become telemetry samples in the records plane.

Topics are `SITE/ZONE/DEVICE/telemetry`; the payload signed by the device is a CBOR map
`{"values": {NAME: NUMBER or null, ...}}`, the samples' time the signed message time.

At least once, nothing counted twice: QoS 1 messages are acknowledged to the broker only after
`flush` has stored their samples and the replay windows, so a message that was being handled when
the process stopped comes again (DUP set) and is judged against the stored window: accepted when
its samples were not stored, a duplicate when they were. Every refused message is counted per
site, claimed device and reason (`device_telemetry_refusals`); duplicates and replays per device
beside its window (`device_telemetry_windows`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plantwarden.core.clock import Clock, from_nanoseconds, nanoseconds
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.devices.envelope import EnvelopeRefused, Opened, Opener
from plantwarden.devices.models import TelemetryRefusal, TelemetryWindow
from plantwarden.devices.replay import REDELIVERY_WINDOW, Outcome, ReplayWindow
from plantwarden.devices.trust import DeviceKeys, Distrusted, TrustedDevice
from plantwarden.monitoring.telemetry import Sample, TelemetryIngest, samples_of_values
from plantwarden.monitoring.telemetry_mqtt import Message

log = logging.getLogger(__name__)
ACCEPTED, DUPLICATE, REPLAY = "accepted", "duplicate", "replay"
MAX_VALUES = 1000
"""Values one message may carry (a device sends a few; more is a malformed message)."""
ACK_BATCH = 500
"""Flush (store, then acknowledge) once this many QoS 1 messages wait for their acknowledgement,
well below what the broker lets be unacknowledged (`max_inflight_messages`, which `devices
broker-config` sets to 1,000), so that the broker never stalls between two timed flushes."""


def telemetry_topic(site: str, zone: str, device: str) -> str:
    """The topic a device publishes its telemetry on."""
    return f"{site}/{zone}/{device}/telemetry"


def payload_of(values: dict[str, float | None]) -> bytes:
    """The CBOR payload a device signs: its values by name (None for a missing one)."""
    if not values or len(values) > MAX_VALUES:
        raise InvalidInput(f"a message carries 1 to {MAX_VALUES} values, not {len(values)}")
    return cbor2.dumps({"values": values})


def samples_of(opened: Opened, now_ns: int) -> list[Sample]:
    """The checked samples a signed payload carries; InvalidInput for anything else."""
    try:
        body = cbor2.loads(opened.payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, MemoryError) as error:
        raise InvalidInput(f"the signed payload is not CBOR ({error})") from None
    values = body.get("values") if isinstance(body, dict) else None
    if not isinstance(values, dict) or not values or len(values) > MAX_VALUES:
        raise InvalidInput(
            f'the signed payload must be a map {{"values": {{name: number}}}} of 1 to {MAX_VALUES}'
        )
    return samples_of_values(opened.device, opened.time_ns, values, now_ns)


@dataclass
class IngestCounts:
    """What the ingest did with the messages it received since it started."""

    messages: int = 0
    samples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items()))
        return f"{self.messages} messages ({parts or 'none'}); {self.samples} samples written"


@dataclass
class _Refusals:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    details: dict[tuple[str, str], str] = field(default_factory=dict)


class SecureIngest:
    """Opens, checks and stores the telemetry messages of one site."""

    def __init__(
        self,
        store: Store,
        ingest: TelemetryIngest,
        site: str,
        opener: Opener,
        keys: DeviceKeys,
        clock: Clock,
        *,
        redelivery_window: timedelta = REDELIVERY_WINDOW,
    ) -> None:
        self.store, self.ingest, self.site = store, ingest, site
        self.opener, self.keys, self.clock = opener, keys, clock
        self.redelivery_window = redelivery_window
        self.counts = IngestCounts()
        self._windows: dict[str, ReplayWindow] = {}
        self._enrolments: dict[str, tuple[str, datetime] | None] = {}
        self._dirty: set[str] = set()
        self._refusals = _Refusals()
        self._samples: list[Sample] = []
        self._acks: list[int] = []
        self.keys.watch_revocations()  # from now on, revocations reach the key cache at each flush

    def handle(self, message: Message) -> str:
        """Judge one message (its outcome: accepted, duplicate, replay, or a refusal reason); its
        samples wait for `flush`. Never raises for what a message holds."""
        self.counts.messages += 1
        if message.packet_id is not None:
            self._acks.append(message.packet_id)
        try:
            outcome = self._handle(message)
        except Exception as error:  # one message never stops the ingest
            log.warning("telemetry message on %.200r could not be handled", message.topic, exc_info=True)
            outcome = self._refuse(
                message.topic, "?", "malformed", f"cannot be handled ({type(error).__name__})"
            )
        self.counts.outcomes[outcome] += 1
        return outcome

    def _handle(self, message: Message) -> str:
        parts = message.topic.split("/")
        if len(parts) != 4 or parts[0] != self.site or parts[3] != "telemetry" or not parts[2]:
            claimed = parts[2] if len(parts) == 4 else "?"
            return self._refuse(
                message.topic, claimed, "wrong_topic", "not SITE/ZONE/DEVICE/telemetry of this site"
            )
        _, zone, claimed, _ = parts
        found: list[TrustedDevice | Distrusted] = []

        def key_for(kid: bytes) -> ec.EllipticCurvePublicKey | None:
            trusted = self.keys.lookup(kid)
            found.append(trusted)
            return trusted.public_key if isinstance(trusted, TrustedDevice) else None

        try:
            opened = self.opener.open(message.payload, topic=message.topic, key_for=key_for, device=claimed)
        except EnvelopeRefused as refused:
            reason: str = refused.reason
            if reason == "unknown_key" and found and isinstance(found[-1], Distrusted):
                reason = f"certificate_{found[-1].status.value}"
            return self._refuse(message.topic, claimed, reason, refused.detail)
        trusted = found[-1]
        assert isinstance(trusted, TrustedDevice)  # open() verified with its key
        if (trusted.site, trusted.zone, trusted.device) != (self.site, zone, claimed):
            detail = f"the certificate is {trusted.site}/{trusted.zone}/{trusted.device}'s"
            return self._refuse(message.topic, claimed, "wrong_device", detail)
        sent = from_nanoseconds(opened.time_ns)
        if not trusted.not_before <= sent < trusted.not_after:
            return self._refuse(message.topic, claimed, "outside_validity", f"signed at {sent.isoformat()}")
        now = self.clock.now()
        window = self._window(claimed)
        if self._enrolled_again(claimed, trusted):
            window = self._windows[claimed] = _restarted(window)
            self._dirty.add(claimed)
        verdict = window.judge(opened.epoch, opened.counter, opened.digest, now, message.dup)
        if verdict.outcome is not Outcome.ACCEPT:
            window.count(verdict)
            self._dirty.add(claimed)
            log.warning("%s %s on %s: %s", claimed, verdict.outcome.value, message.topic, verdict.reason)
            return DUPLICATE if verdict.outcome is Outcome.DUPLICATE else REPLAY
        try:
            samples = samples_of(opened, _ns(now))
        except InvalidInput as error:
            return self._refuse(message.topic, claimed, "bad_payload", error.message)
        window.accept(opened.epoch, opened.counter, opened.digest, now)
        self._dirty.add(claimed)
        self._samples.extend(samples)
        return ACCEPTED

    def _refuse(self, topic: str, device: str, reason: str, detail: str) -> str:
        key = (device[:200] or "?", reason)
        self._refusals.counts[key] += 1
        self._refusals.details[key] = detail[:500]
        log.warning("telemetry on %.200r refused (%s): %s", topic, reason, detail)
        return reason

    def _window(self, device: str) -> ReplayWindow:
        window = self._windows.get(device)
        if window is None:
            with self.store.transaction() as session:
                row = _window_row(session, self.site, device)
                window = (
                    ReplayWindow.from_json(row.window, redelivery_window=self.redelivery_window)
                    if row is not None
                    else ReplayWindow(redelivery_window=self.redelivery_window)
                )
                enrolment = row.enrolment if row is not None else None
                at = row.enrolled_at if row is not None else None
                self._enrolments[device] = (enrolment, at) if enrolment and at else None
            self._windows[device] = window
        return window

    def _enrolled_again(self, device: str, trusted: TrustedDevice) -> bool:
        """Whether this certificate is the device's newest enrolment, not seen before: a replaced
        or wiped device starts its sequence again and needs a new window. Only a newer enrolment
        counts, so an older certificate still in force can never reset the window."""
        if not trusted.enrolled:
            return False
        known = self._enrolments.get(device)
        if known is not None and (known[0] == trusted.serial or trusted.issued_at <= known[1]):
            return False
        self._enrolments[device] = (trusted.serial, trusted.issued_at)
        return known is not None or self._windows[device].epoch is not None

    @property
    def acks_due(self) -> bool:
        """Whether enough QoS 1 messages wait for their acknowledgement to flush now."""
        return len(self._acks) >= ACK_BATCH

    def flush(self) -> list[int]:
        """Store the pending samples (durably), then the windows and counts; the QoS 1 packet ids
        that may now be acknowledged. When storing fails, what was handled since the last flush is
        forgotten (windows reloaded from the store, nothing acknowledged) and the error raised:
        the broker sends those messages again and they are judged afresh."""
        try:
            self.counts.samples += self.ingest.write(self.site, self._samples)
            now = self.clock.now()
            with self.store.transaction() as session:
                for device in sorted(self._dirty):
                    enrolment = self._enrolments.get(device)
                    _save_window(session, self.site, device, self._windows[device], enrolment, now)
                for (device, reason), count in self._refusals.counts.items():
                    detail = self._refusals.details[(device, reason)]
                    _add_refusals(session, self.site, device, reason, count, detail, now)
        except Exception:
            self._forget_unsaved()
            raise
        self._samples = []
        self._dirty.clear()
        self._refusals = _Refusals()
        self.keys.watch_revocations()
        acks, self._acks = self._acks, []
        return acks

    def _forget_unsaved(self) -> None:
        for device in self._dirty:
            self._windows.pop(device, None)
            self._enrolments.pop(device, None)
        self._samples, self._acks, self._dirty, self._refusals = [], [], set(), _Refusals()


def _restarted(window: ReplayWindow) -> ReplayWindow:
    """A new window for a device enrolled again, keeping its counts."""
    fresh = ReplayWindow(size=window.size, redelivery_window=window.redelivery_window)
    fresh.accepted, fresh.duplicates, fresh.replays = window.accepted, window.duplicates, window.replays
    return fresh


def _ns(moment: datetime) -> int:
    return nanoseconds(moment)


def _window_row(session: Session, site: str, device: str) -> TelemetryWindow | None:
    return session.scalar(
        select(TelemetryWindow).where(TelemetryWindow.site == site, TelemetryWindow.device == device)
    )


def _save_window(
    session: Session,
    site: str,
    device: str,
    window: ReplayWindow,
    enrolment: tuple[str, datetime] | None,
    now: datetime,
) -> None:
    """Write the window (an UPDATE, without reading the stored one back; an INSERT the first time)."""
    serial, enrolled_at = enrolment if enrolment is not None else (None, None)
    values = {
        "window": window.to_json(),
        "accepted": window.accepted,
        "duplicates": window.duplicates,
        "replays": window.replays,
        "enrolment": serial,
        "enrolled_at": enrolled_at,
        "updated_at": now,
    }
    where = (TelemetryWindow.site == site, TelemetryWindow.device == device)
    if not session.execute(update(TelemetryWindow).where(*where).values(**values)).rowcount:  # type: ignore[attr-defined]
        session.add(TelemetryWindow(site=site, device=device, **values))


def _add_refusals(
    session: Session, site: str, device: str, reason: str, count: int, detail: str, now: datetime
) -> None:
    row = session.scalar(
        select(TelemetryRefusal).where(
            TelemetryRefusal.site == site,
            TelemetryRefusal.device == device,
            TelemetryRefusal.reason == reason,
        )
    )
    if row is None:
        row = TelemetryRefusal(site=site, device=device, reason=reason, count=0)
        session.add(row)
    row.count += count
    row.last_at, row.last_detail = now, detail
