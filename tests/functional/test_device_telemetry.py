"""End-to-end device telemetry through a real Mosquitto that the test configures for TLS with
client certificates from the platform CA and its CRL (`plantwarden devices broker-config`).

Devices get their certificates from the platform CA (the PKI services), publish with the device
agent, and the platform's ingest (`SecureIngest` under `run_ingest`) verifies, decrypts and stores.
An attacker here is a device with a valid certificate of its own: it can publish anything the
broker accepts, so every refusal below is the platform's, not the broker's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from plantwarden.core.clock import FixedClock, SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.devices.agent import Agent, AgentFiles, install
from plantwarden.devices.broker import ingest_identity, reload_broker
from plantwarden.devices.cli import RECIPIENT, devices_group
from plantwarden.devices.envelope import Opener, key_id
from plantwarden.devices.ingest import SecureIngest
from plantwarden.devices.ingest_loop import run_ingest
from plantwarden.devices.status import telemetry_status
from plantwarden.devices.trust import DeviceKeys
from plantwarden.monitoring.mqtt_publisher import MqttPublisher
from plantwarden.monitoring.telemetry import SampleQuery, TelemetryIngest, query_samples, sample_rows
from plantwarden.monitoring.telemetry_mqtt import Broker, Message, MqttError, MqttSubscription, tls_context
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DeviceIdentity
from plantwarden.pki.keys import new_key
from plantwarden.pki.service_certs import Purpose, ensure_service_identity
from tests.conftest import make_settings
from tests.helpers import free_port, wait_for
from tests.unit.devices.test_envelope import Party, craft

PASSPHRASE = b"correct horse battery staple"
ZONE = "cell-1"


def _mosquitto() -> str:
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if binary is None:
        pytest.skip("the mosquitto binary is not installed (Debian package mosquitto)")
    return binary


def _listening(port: int) -> bool | None:
    with socket.socket() as probe:
        return True if probe.connect_ex(("127.0.0.1", port)) == 0 else None


@dataclass
class _Holder:
    """What a click command's `obj` provides: the runtime."""

    held: Runtime

    def runtime(self) -> Runtime:
        return self.held


@dataclass
class Plant:
    """A platform (runtime, CA) and a TLS broker configured from it."""

    runtime: Runtime
    ca: CertificateAuthority
    site: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    devices: dict[str, Path] = field(default_factory=dict)

    def enrol(self, device: str, *, lifetime: timedelta | None = None) -> Path:
        """Issue `device` a certificate (as `pki enroll` does) and install it in its directory."""
        key = new_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
            .sign(key, hashes.SHA256())
        )
        with self.runtime.ready_store().transaction() as session:
            issued = services.issue(
                session,
                self.runtime.context("test"),
                None,
                self.ca,
                identity=DeviceIdentity(self.site, device, ZONE, None, None),
                csr=csr,
                lifetime=lifetime,
            )
        recipient = ensure_service_identity(self.ca, RECIPIENT, Purpose.RECIPIENT).load_certificate()
        directory = self.directory / "devices" / device
        install(directory, key, issued.certificate, self.ca.chain(), recipient)
        self.devices[device] = directory
        return directory

    def write_broker_config(self) -> Path:
        """Write the broker's files from the platform (`devices broker-config`: the current CRL,
        the ACL). The ACL then gains two clients of the test's: `sniffer` reads everything (what
        anyone with the broker's access sees) and `intruder` writes anywhere (a compromised broker
        or relay injecting messages)."""
        out = self.directory / "broker"
        where = ["--host", "127.0.0.1", "--port", str(self.port), "--bind", "127.0.0.1", "--site", self.site]
        result = CliRunner().invoke(
            devices_group, ["broker-config", "--out", str(out), *where], obj=_Holder(self.runtime)
        )
        assert result.exit_code == 0, result.output
        with (out / "acl").open("a") as acl:
            acl.write("\nuser sniffer\ntopic read #\n\nuser intruder\ntopic write #\n")
        config = out / "test.conf"  # as root, mosquitto would switch to its own user
        config.write_text((out / "mosquitto.conf").read_text() + f"user {os.getenv('USER') or 'root'}\n")
        return config

    def start_broker(self) -> None:
        """Write the broker's configuration and start it."""
        self.stop_broker()
        config = self.write_broker_config()
        with (self.directory / "mosquitto.log").open("ab") as log:  # the broker keeps its own descriptor
            self.process = subprocess.Popen(
                [_mosquitto(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(lambda: _listening(self.port), what="mosquitto")

    def refresh_broker(self) -> None:
        """Rewrite the files and have the running broker reload them (SIGHUP), as
        `broker-config --refresh-every` does."""
        self.write_broker_config()
        assert reload_broker(self.directory / "broker" / "mosquitto.pid") == self.process.pid  # type: ignore[union-attr]
        wait_for(
            lambda: "Reloading config" in (self.directory / "mosquitto.log").read_text() or None,
            what="reload",
        )

    def stop_broker(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def broker(self, context: ssl.SSLContext) -> Broker:
        return Broker("127.0.0.1", self.port, context)

    def ingest_broker(self) -> Broker:
        client = ingest_identity(self.ca, self.site)
        return self.broker(tls_context(client.chain, client.certificate, client.key))

    def secure_ingest(self, ingest: TelemetryIngest, *, clock: Any = None, **options: Any) -> SecureIngest:
        recipient = ensure_service_identity(self.ca, RECIPIENT, Purpose.RECIPIENT)
        opener = Opener(recipient.load_key(), key_id(recipient.load_key().public_key()))
        store = self.runtime.ready_store()
        clock = clock or SystemClock()
        return SecureIngest(store, ingest, self.site, opener, DeviceKeys(store, clock), clock, **options)

    def values(self, variable: str) -> list[float]:
        rows = sample_rows(query_samples(self.runtime.records(), SampleQuery(self.site, variable=variable)))
        return sorted(row["value"] for row in rows)


@pytest.fixture
def plant(tmp_path: Path, data_dir: Path) -> Iterator[Plant]:
    _mosquitto()
    runtime = Runtime(make_settings(data_dir))
    ca = CertificateAuthority.initialise(pki_directory(runtime.core.data_path), PASSPHRASE)
    made = Plant(runtime, ca, f"e2e-{uuid.uuid4().hex[:8]}", tmp_path, free_port())
    made.start_broker()
    try:
        yield made
    finally:
        made.stop_broker()
        runtime.close()


def _with_ingest(
    plant: Plant,
    secure_options: dict[str, Any],
    body: Callable[[SecureIngest], Awaitable[None]],
    *,
    settle: int,
) -> SecureIngest:
    """Run the ingest while `body` publishes; stop once it handled `settle` messages."""

    async def scenario(ingest: TelemetryIngest) -> SecureIngest:
        secure = plant.secure_ingest(ingest, **secure_options)
        statuses: list[str] = []
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_ingest(
                secure,
                plant.ingest_broker(),
                f"{plant.site}/+/+/telemetry",
                stop,
                client_id=f"pw-ingest-{plant.site}",
                on_status=statuses.append,
                flush_every=0.2,
            )
        )
        await _until(lambda: any(s.startswith("subscribed") for s in statuses), f"the ingest: {statuses}")
        await body(secure)
        await _until(
            lambda: secure.counts.messages >= settle, f"{settle} messages: {secure.counts.summary()}"
        )
        stop.set()
        await asyncio.wait_for(task, 10)
        return secure

    with TelemetryIngest(plant.runtime.records(), f"e2e-{plant.site}") as ingest:
        return asyncio.run(scenario(ingest))


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _publish(agent_dir: Path, plant: Plant, messages: list[tuple[str, bytes, dict[str, Any]]]) -> None:
    context = AgentFiles.load(agent_dir).tls_context()
    publisher = await MqttPublisher.open(plant.broker(context), f"pub-{uuid.uuid4().hex[:8]}")
    try:
        for topic, payload, options in messages:
            await publisher.send(topic, payload, **({"qos": 1, "packet_id": publisher.packet_id()} | options))
    finally:
        await publisher.close()


def test_a_device_publishes_its_values_arrive_and_the_broker_sees_no_plaintext(plant: Plant) -> None:
    agent = Agent.start(plant.enrol("tank-1"))
    marker = secrets.token_hex(16)
    sniffed: list[Message] = []

    async def body(secure: SecureIngest) -> None:
        sniffer_identity = ensure_service_identity(plant.ca, "sniffer", Purpose.CLIENT)
        context = tls_context(sniffer_identity.chain, sniffer_identity.certificate, sniffer_identity.key)
        sniffer = await MqttSubscription.open(plant.broker(context), "sniffer", "#")
        publisher = await MqttPublisher.open(plant.broker(agent.files.tls_context()), "tank-1")
        first = agent.seal({"level": 51.5, f"m_{marker}": 7.0})
        packet_id = await publisher.publish(agent.topic, first)
        # the same message again with the same packet id and DUP set: a QoS 1 redelivery
        await publisher.send(agent.topic, first, qos=1, packet_id=packet_id, dup=True)
        await publisher.publish(agent.topic, agent.seal({"level": 52.0}))
        # the ACL: a device writes its own topic only (the broker drops this one; MQTT 3.1.1 cannot say so)
        await publisher.publish(f"{plant.site}/{ZONE}/pump-1/telemetry", agent.seal({"level": 0.5}))
        await publisher.close()
        while (message := await sniffer.next_message(1.0)) is not None:
            sniffed.append(message)
        await sniffer.close()

    secure = _with_ingest(plant, {}, body, settle=3)
    assert secure.counts.outcomes == {"accepted": 2, "duplicate": 1}
    assert plant.values("level") == [51.5, 52.0]  # stored once, though delivered twice
    assert plant.values(f"m_{marker}") == [7.0]
    assert len(sniffed) == 3 and {m.topic for m in sniffed} == {agent.topic}
    for message in sniffed:  # what the broker delivered never holds the plaintext
        for needle in (marker.encode(), bytes.fromhex(marker), b"level"):
            assert needle not in message.payload
    with plant.runtime.ready_store().transaction() as session:
        (status,) = telemetry_status(session, site=plant.site)
    assert (status.device, status.accepted, status.duplicates, status.replays) == ("tank-1", 2, 1, 0)


def test_tampered_replayed_retopiced_unsigned_and_foreign_messages_are_refused_and_counted(
    plant: Plant,
) -> None:
    tank = Agent.start(plant.enrol("tank-1"))
    intruder_dir = plant.enrol("intruder")
    good = tank.seal({"level": 40.0})
    tampered = bytearray(tank.seal({"level": 41.0}))
    tampered[len(tampered) // 2] ^= 0x01
    pump_topic = f"{plant.site}/{ZONE}/pump-1/telemetry"
    recipient = ensure_service_identity(plant.ca, RECIPIENT, Purpose.RECIPIENT)
    platform = _Recipient(recipient.load_key(), key_id(recipient.load_key().public_key()))
    unsigned = craft(
        b'{"level": 99}', platform, device="tank-1", topic=tank.topic, epoch=tank.epoch, counter=50
    )

    async def body(secure: SecureIngest) -> None:
        await _publish(
            intruder_dir,
            plant,
            [
                (tank.topic, good, {}),
                (tank.topic, bytes(tampered), {}),
                (pump_topic, good, {}),  # moved onto another device's topic
                (tank.topic, unsigned, {}),
                (f"{plant.site}/{ZONE}/intruder/telemetry", good, {}),  # tank's message as the intruder's
                (tank.topic, b"\xa0not cose", {}),
            ],
        )
        await asyncio.sleep(0.5)  # later than the test's redelivery window: the same message is a replay
        await _publish(intruder_dir, plant, [(tank.topic, good, {})])

    secure = _with_ingest(plant, {"redelivery_window": timedelta(milliseconds=100)}, body, settle=7)
    outcomes = secure.counts.outcomes
    assert outcomes["accepted"] == 1 and outcomes["replay"] == 1
    assert outcomes["undecryptable"] == 3  # tampered, re-topiced, and moved to the intruder's topic
    assert outcomes["unsigned"] == 1 and outcomes["malformed"] == 1
    assert plant.values("level") == [40.0]
    with plant.runtime.ready_store().transaction() as session:
        rows = {row.device: row for row in telemetry_status(session, site=plant.site)}
    assert rows["tank-1"].replays == 1 and rows["tank-1"].refused == {
        "malformed": 1,
        "undecryptable": 1,
        "unsigned": 1,
    }
    assert rows["pump-1"].refused == {"undecryptable": 1}
    assert rows["intruder"].refused == {"undecryptable": 1}


@dataclass
class _Recipient(Party):
    """The platform's recipient as the envelope tests' `craft` wants it (key, certificate kid)."""

    fingerprint: bytes = b""

    def __init__(self, key: Any, kid: bytes) -> None:
        self.key, self.fingerprint = key, kid

    @property
    def kid(self) -> bytes:
        return self.fingerprint


def test_a_revoked_device_is_refused_by_the_platform_then_by_the_broker(plant: Plant) -> None:
    directory = plant.enrol("tank-1")
    agent = Agent.start(directory)
    before, after = agent.seal({"level": 1.0}), agent.seal({"level": 2.0})

    async def body(secure: SecureIngest) -> None:
        await _publish(directory, plant, [(agent.topic, before, {})])
        await _until(lambda: secure.counts.messages >= 1, "the first message")
        with plant.runtime.ready_store().transaction() as session:
            (record,) = services.list_certificates(session, site=plant.site, device="tank-1")
            services.revoke(
                session, plant.runtime.context("test"), None, serial=record.serial, reason="keyCompromise"
            )
        await asyncio.sleep(0.5)  # a flush: the revocation event reaches the ingest's key cache
        await _publish(directory, plant, [(agent.topic, after, {})])  # the broker still has the old CRL

    secure = _with_ingest(plant, {}, body, settle=2)
    assert secure.counts.outcomes == {"accepted": 1, "certificate_revoked": 1}
    assert plant.values("level") == [1.0]

    plant.refresh_broker()  # the new CRL, read by the running broker
    with pytest.raises((ssl.SSLError, OSError, MqttError)):
        asyncio.run(_publish(directory, plant, [(agent.topic, agent.seal({"level": 3.0}), {})]))
    pump = Agent.start(plant.enrol("pump-1"))  # while a device in good standing still gets through
    asyncio.run(_publish(pump.files.directory, plant, [(pump.topic, pump.seal({"flow": 1.0}), {})]))


def test_an_expired_device_is_refused_by_the_platform_and_by_the_broker(plant: Plant) -> None:
    directory = plant.enrol("tank-1", lifetime=timedelta(seconds=5))
    agent = Agent.start(directory)
    message = agent.seal({"level": 5.0})
    later = FixedClock(agent.files.certificate.not_valid_after_utc + timedelta(seconds=1))

    async def body(secure: SecureIngest) -> None:
        await _publish(directory, plant, [(agent.topic, message, {})])

    secure = _with_ingest(plant, {"clock": later}, body, settle=1)
    assert secure.counts.outcomes == {"certificate_expired": 1}

    wait_for(
        lambda: True if SystemClock().now() > agent.files.certificate.not_valid_after_utc else None,
        timeout=10,
    )
    with pytest.raises((ssl.SSLError, OSError, MqttError)):
        asyncio.run(_publish(directory, plant, [(agent.topic, agent.seal({"level": 6.0}), {})]))
    pump = Agent.start(plant.enrol("pump-1"))  # while a device in good standing still gets through
    asyncio.run(_publish(pump.files.directory, plant, [(pump.topic, pump.seal({"flow": 1.0}), {})]))
