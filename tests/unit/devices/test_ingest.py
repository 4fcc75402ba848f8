"""`SecureIngest` without a broker: messages as the broker hands them over (topic, payload, DUP
flag, packet id), a real store and records plane, real certificates of a platform CA.

What the end-to-end test cannot easily provoke: a failed write (nothing acknowledged, nothing
remembered), acknowledgements in batches, and a device enrolled again (a replaced or wiped device
whose sequence starts at epoch 1 again) next to an older certificate that must not reset anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwarden.core.clock import FixedClock
from plantwarden.core.runtime import Runtime
from plantwarden.devices.envelope import Opener, Sealer, key_id
from plantwarden.devices.ingest import ACK_BATCH, SecureIngest, payload_of, telemetry_topic
from plantwarden.devices.status import telemetry_status
from plantwarden.devices.trust import DeviceKeys
from plantwarden.monitoring.telemetry import Sample, SampleQuery, TelemetryIngest, query_samples, sample_rows
from plantwarden.monitoring.telemetry_mqtt import Message
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DeviceIdentity, fingerprint
from plantwarden.pki.keys import new_key
from tests.conftest import make_settings

SITE, ZONE, DEVICE = "plant-a", "cell-1", "tank-1"
TOPIC = telemetry_topic(SITE, ZONE, DEVICE)


@dataclass
class Platform:
    runtime: Runtime
    ca: CertificateAuthority
    recipient: ec.EllipticCurvePrivateKey
    clock: FixedClock

    def device(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A new enrolment of the device: a key and a certificate issued from a CSR."""
        key = new_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE)]))
            .sign(key, hashes.SHA256())
        )
        with self.runtime.ready_store().transaction() as session:
            issued = services.issue(
                session, self.runtime.context("test"), None, self.ca,
                identity=DeviceIdentity(SITE, DEVICE, ZONE, None, None), csr=csr,
            )  # fmt: skip
        self.clock.advance(timedelta(seconds=1))  # enrolments are ordered by when they were issued
        return key, issued.certificate

    def sealer(self, device: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], epoch: int) -> Sealer:
        key, certificate = device
        public = self.recipient.public_key()
        return Sealer(DEVICE, key, fingerprint(certificate), public, key_id(public), epoch)

    def secure(self, ingest: TelemetryIngest) -> SecureIngest:
        store = self.runtime.ready_store()
        opener = Opener(self.recipient, key_id(self.recipient.public_key()))
        return SecureIngest(store, ingest, SITE, opener, DeviceKeys(store, self.clock, ttl=0), self.clock)

    def levels(self) -> list[float]:
        rows = sample_rows(query_samples(self.runtime.records(), SampleQuery(SITE, variable="level")))
        return sorted(row["value"] for row in rows)


@pytest.fixture
def platform(tmp_path: Path, clock: FixedClock) -> Iterator[Platform]:
    runtime = Runtime(make_settings(tmp_path / "data"), clock)
    ca = CertificateAuthority.initialise(
        pki_directory(runtime.core.data_path), b"correct horse battery", clock=clock
    )
    yield Platform(runtime, ca, new_key(), clock)
    runtime.close()


def message(
    sealer: Sealer, counter: int, level: float, clock: FixedClock, packet_id: int | None = None
) -> Message:
    time_ns = int(clock.now().timestamp() * 1e9)
    payload = sealer.seal(payload_of({"level": level}), topic=TOPIC, counter=counter, time_ns=time_ns)
    return Message(TOPIC, payload, 1, False, packet_id)


class FailingOnce(TelemetryIngest):
    """A records plane whose first write fails (a full disk, a partition held too long)."""

    failed = False

    def write(self, site: str, samples: list[Sample]) -> int:  # type: ignore[override]
        if not self.failed and samples:
            self.failed = True
            raise OSError("No space left on device")
        return super().write(site, samples)


def test_a_failed_write_acknowledges_nothing_and_the_redelivery_is_stored(platform: Platform) -> None:
    sealer = platform.sealer(platform.device(), epoch=1)
    first = message(sealer, 1, 10.0, platform.clock, packet_id=1)
    with FailingOnce(platform.runtime.records(), "ingest-test") as ingest:
        secure = platform.secure(ingest)
        assert secure.handle(first) == "accepted"
        with pytest.raises(OSError, match="No space"):
            secure.flush()
        # the broker sends it again (DUP set): judged afresh, not as a duplicate of what was lost
        again = Message(first.topic, first.payload, 1, True, 7)
        assert secure.handle(again) == "accepted"
        assert secure.flush() == [7]
    assert platform.levels() == [10.0]
    with platform.runtime.ready_store().transaction() as session:
        (status,) = telemetry_status(session, site=SITE)
    assert (status.accepted, status.duplicates, status.replays) == (1, 0, 0)


def test_acknowledgements_are_due_in_batches(platform: Platform) -> None:
    sealer = platform.sealer(platform.device(), epoch=1)
    with TelemetryIngest(platform.runtime.records(), "ingest-test") as ingest:
        secure = platform.secure(ingest)
        for counter in range(1, ACK_BATCH):
            secure.handle(message(sealer, counter, float(counter), platform.clock, packet_id=counter))
        assert not secure.acks_due
        secure.handle(message(sealer, ACK_BATCH, 0.0, platform.clock, packet_id=ACK_BATCH))
        assert secure.acks_due
        assert secure.flush() == list(range(1, ACK_BATCH + 1)) and not secure.acks_due


def test_a_device_enrolled_again_starts_a_new_window_an_older_certificate_does_not(
    platform: Platform,
) -> None:
    first_enrolment = platform.device()
    old = platform.sealer(first_enrolment, epoch=40)
    with TelemetryIngest(platform.runtime.records(), "ingest-test") as ingest:
        secure = platform.secure(ingest)
        assert secure.handle(message(old, 1, 1.0, platform.clock)) == "accepted"
        replayable = message(old, 2, 2.0, platform.clock)
        assert secure.handle(replayable) == "accepted"
        secure.flush()
        # the device is replaced: a new enrolment, its sequence starts at epoch 1 again
        fresh = platform.sealer(platform.device(), epoch=1)
        assert secure.handle(message(fresh, 1, 3.0, platform.clock)) == "accepted"
        secure.flush()
        # the first enrolment's certificate is still in force, but cannot reset the window again
        assert (
            secure.handle(message(platform.sealer(first_enrolment, epoch=41), 1, 4.0, platform.clock))
            == "accepted"
        )
        assert secure.handle(replayable) == "replay"
        secure.flush()
    with TelemetryIngest(platform.runtime.records(), "ingest-test") as ingest:  # a restarted ingest
        again = message(platform.sealer(first_enrolment, epoch=40), 3, 5.0, platform.clock)
        assert platform.secure(ingest).handle(again) == "replay"
    assert platform.levels() == [1.0, 2.0, 3.0, 4.0]
