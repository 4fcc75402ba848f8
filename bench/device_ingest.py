"""The platform's telemetry ingest end to end, per second, against the HMAC-tagged JSON subscriber.

Input: 20,000 messages (2,000 with --quick) from 8 devices enrolled with a platform CA (real
certificates in a store), each carrying the same two values; prepared before the clock starts.
1. Ours: `SecureIngest.handle` on every message (decrypt, verify the device signature, check the
   certificate, topic, device, zone and validity, judge the replay window, make the samples) and
   `flush` every 500 messages (the samples into the records plane, the windows into the store, the
   acknowledgements released), as the ingest does under load. SQLite store and records plane in a
   temporary data directory, as the embedded default.
2. The reference: the telemetry subscriber for devices without certificates
   (`TelemetrySubscriber`: JSON with an HMAC-SHA256 tag under a shared key, the simulated plant's
   format) on the same values, flushed as often. What end-to-end security costs is the ratio.
Both must store every value. Rates are per second of wall-clock time on one core (the store's
writes are part of the work); the load average is printed with them.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Settings, load_settings
from plantwarden.devices.envelope import Opener, Sealer, key_id
from plantwarden.devices.ingest import ACK_BATCH, SecureIngest, payload_of, telemetry_topic
from plantwarden.devices.trust import DeviceKeys
from plantwarden.monitoring.telemetry import TelemetryIngest
from plantwarden.monitoring.telemetry_devices import TelemetrySubscriber
from plantwarden.monitoring.telemetry_mqtt import Message
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DeviceIdentity, fingerprint
from plantwarden.pki.keys import new_key
from plantwarden.sim.behaviour import telemetry_payload

MESSAGES = 20_000
DEVICES = 8
SITE, ZONE = "bench", "cell-1"
KEY = bytes(range(32))


@dataclass
class Prepared:
    runtime: Runtime
    recipient: ec.EllipticCurvePrivateKey
    sealed: list[Message]
    tagged: list[tuple[str, bytes]]


def _settings(data_dir: Path) -> Settings:
    return load_settings(SECTIONS, environ={}, cwd=data_dir, overrides={"data_dir": str(data_dir)})


def prepare(data_dir: Path, count: int) -> Prepared:
    runtime = Runtime(_settings(data_dir))
    ca = CertificateAuthority.initialise(pki_directory(runtime.core.data_path), b"benchmark passphrase")
    recipient = new_key()
    sealers = []
    for number in range(DEVICES):
        device = f"tank-{number}"
        key = new_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
            .sign(key, hashes.SHA256())
        )
        with runtime.ready_store().transaction() as session:
            issued = services.issue(
                session, runtime.context("bench"), None, ca,
                identity=DeviceIdentity(SITE, device, ZONE, None, None), csr=csr,
            )  # fmt: skip
        public = recipient.public_key()
        sealers.append(Sealer(device, key, fingerprint(issued.certificate), public, key_id(public), 1))
    sealed, tagged = [], []
    start_ns = time.time_ns()
    for index in range(count):
        sealer = sealers[index % DEVICES]
        counter = index // DEVICES + 1
        values = {"level": float(index), "flow": 2.5}
        at = start_ns + index * 1000
        topic = telemetry_topic(SITE, ZONE, sealer.device)
        message = sealer.seal(payload_of(dict(values)), topic=topic, counter=counter, time_ns=at)
        sealed.append(Message(topic, message, 1, False, index % 65535 + 1))
        tagged.append((topic, telemetry_payload(sealer.device, counter, at / 1e9, values, KEY)))
    return Prepared(runtime, recipient, sealed, tagged)


def ours(prepared: Prepared) -> float:
    runtime = prepared.runtime
    store = runtime.ready_store()
    recipient = prepared.recipient
    with TelemetryIngest(runtime.records(), "bench-secure") as ingest:
        opener = Opener(recipient, key_id(recipient.public_key()))
        secure = SecureIngest(store, ingest, SITE, opener, DeviceKeys(store, runtime.clock), runtime.clock)
        started = time.perf_counter()
        for message in prepared.sealed:
            secure.handle(message)
            if secure.acks_due:
                secure.flush()
        secure.flush()
        seconds = time.perf_counter() - started
    assert secure.counts.outcomes == {"accepted": len(prepared.sealed)}, secure.counts.summary()
    assert secure.counts.samples == 2 * len(prepared.sealed)
    return seconds


def reference(prepared: Prepared) -> float:
    keys = {f"tank-{number}": KEY for number in range(DEVICES)}
    with TelemetryIngest(prepared.runtime.records(), "bench-hmac") as ingest:
        subscriber = TelemetrySubscriber(ingest, SITE, keys, lambda _decoded, _topic: None)
        started = time.perf_counter()
        for number, (topic, payload) in enumerate(prepared.tagged, 1):
            subscriber.handle(topic, payload)
            if number % ACK_BATCH == 0:
                subscriber.flush()
        subscriber.flush()
        seconds = time.perf_counter() - started
    assert subscriber.counters.samples_written == 2 * len(prepared.tagged), subscriber.counters.summary()
    return seconds


def run(*, quick: bool = False) -> None:
    count = MESSAGES // 10 if quick else MESSAGES
    with tempfile.TemporaryDirectory(prefix="pw-bench-ingest-") as directory:
        prepared = prepare(Path(directory), count)
        try:
            seconds = ours(prepared)
            reference_seconds = reference(prepared)
        finally:
            prepared.runtime.close()
    load = os.getloadavg()[0]
    print(f"## device ingest: {count:,} messages from {DEVICES} devices, 2 values each, one core")
    print(f"   wall-clock rates, SQLite store and records plane; load average {load:.1f}")
    print(f"{'ours: SecureIngest (COSE, certificates, replay)':50} {count / seconds:>10,.0f} messages/s")
    print(f"{'reference: TelemetrySubscriber (HMAC JSON)':50} {count / reference_seconds:>10,.0f} messages/s")
    print(f"{'ours / reference':50} {reference_seconds / seconds:>10.2f} x")


if __name__ == "__main__":
    run()
