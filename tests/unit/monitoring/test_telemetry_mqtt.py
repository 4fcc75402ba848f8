"""Device telemetry over MQTT into the records plane, against the machine's real Mosquitto
(127.0.0.1:1883, each test on topics of its own) and, for TLS, a Mosquitto of the test's own.

Messages are made by the simulated plant's own code (`sim.behaviour.telemetry_payload`), so the
subscriber is held to the format the devices really publish."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import Settings
from plantwarden.monitoring.telemetry import SampleQuery, TelemetryIngest, query_samples, sample_rows
from plantwarden.monitoring.telemetry_cli import telemetry_group
from plantwarden.monitoring.telemetry_devices import Decoded, TelemetrySubscriber, Verdict, decode_message
from plantwarden.monitoring.telemetry_mqtt import Broker, tls_context
from plantwarden.sim import mqtt
from plantwarden.sim.behaviour import device_key, telemetry_payload
from tests.conftest import make_settings
from tests.helpers import free_port, wait_for
from tests.unit.monitoring.test_telemetry import Provider
from tests.unit.workers.notify_support import Pki, make_pki

BROKER = ("127.0.0.1", 1883)
IN_CI = os.environ.get("CI", "").lower() == "true"
KEY = device_key(7, "tank-1")


def _broker_problem() -> str | None:
    try:
        socket.create_connection(BROKER, timeout=2).close()
    except OSError as error:
        return str(error)
    return None


@pytest.fixture
def broker() -> tuple[str, int]:
    problem = _broker_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"Mosquitto is required in CI and unreachable at 127.0.0.1:1883: {problem}")
        pytest.skip(f"no MQTT broker at 127.0.0.1:1883: {problem}")
    return BROKER


def good(sequence: int, level: float) -> bytes:
    return telemetry_payload("tank-1", sequence, time.time(), {"level": level, "flow": 2.5}, KEY)


def forged(sequence: int) -> bytes:
    """A device's message with its values changed and its tag kept (what a broker in the middle does)."""
    body = json.loads(good(sequence, 1.0))
    body["values"]["level"] = 9999.0
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def publish_qos1(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = struct.pack(">H", len(topic)) + topic.encode() + struct.pack(">H", packet_id) + payload
    return bytes((0x32,)) + mqtt.remaining_length(len(body)) + body


def publish_all(
    address: tuple[str, int], packets: list[bytes], context: ssl.SSLContext | None = None
) -> None:
    """Connect, publish the packets (a QoS 1 one is acknowledged), disconnect."""
    plain = socket.create_connection(address, timeout=5)
    with context.wrap_socket(plain, server_hostname="localhost") if context else plain as connection:
        connection.sendall(mqtt.connect(f"pub-{uuid.uuid4().hex[:8]}"))
        assert connection.recv(4)[3] == 0
        for packet in packets:
            connection.sendall(packet)
            if packet[0] >> 1 & 3:
                assert connection.recv(4)[0] >> 4 == 4  # PUBACK
        connection.sendall(mqtt.disconnect())


def run_subscriber(
    subscriber: TelemetrySubscriber, broker: tuple[str, int], site: str, packets: list[bytes]
) -> TelemetrySubscriber:
    """Subscribe to the site's telemetry on the real broker, publish `packets`, and return once the
    subscriber has taken as many messages."""
    statuses: list[str] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            subscriber.run(
                Broker(*broker),
                f"{site}/+/+/telemetry",
                stop,
                client_id=f"t-{uuid.uuid4().hex[:8]}",
                on_status=statuses.append,
                max_messages=len(packets),
            )
        )
        while not any(s.startswith("subscribed") for s in statuses):
            await asyncio.sleep(0.02)
        await asyncio.to_thread(publish_all, broker, packets)
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    return subscriber


def test_messages_are_decoded_verified_and_dropped_for_a_reason() -> None:
    now = time.time_ns()
    topic = "plant-a/cell-1/tank-1/telemetry"
    accepted = decode_message(topic, good(1, 50.0), {"tank-1": KEY}, now)
    assert accepted.verdict is Verdict.ACCEPTED
    assert {(s.variable, s.value) for s in accepted.samples} == {("level", 50.0), ("flow", 2.5)}
    assert decode_message(topic, forged(2), {"tank-1": KEY}, now).verdict is Verdict.FORGED
    assert decode_message(topic, forged(2), None, now).verdict is Verdict.ACCEPTED  # no keys: unchecked
    assert decode_message(topic, good(3, 1.0), {"mixer-1": KEY}, now).verdict is Verdict.UNKNOWN_DEVICE
    other = decode_message("plant-a/cell-1/boiler-1/telemetry", good(4, 1.0), None, now)
    assert other.verdict is Verdict.WRONG_TOPIC
    for payload in (b"\xff", b"[1]", b'{"device": "tank-1", "ts": "x", "values": {}}', b"[" * 5000):
        assert decode_message(topic, payload, None, now).verdict is Verdict.MALFORMED
    bad_value = telemetry_payload("tank-1", 5, time.time(), {"level": "high"}, KEY)  # type: ignore[dict-item]  # a device sending text
    assert decode_message(topic, bad_value, {"tank-1": KEY}, now).reason == "value 'high' is not a number"


def test_the_subscriber_stores_good_messages_and_drops_forged_ones(
    broker: tuple[str, int], settings: Settings, store: Store
) -> None:
    site = f"test-{uuid.uuid4().hex[:10]}"
    topic = f"{site}/cell-1/tank-1/telemetry"
    backend = open_backend(settings[CoreSettings], settings[RecordsSettings], store)
    rejected: list[Decoded] = []
    first = good(1, 50.0)
    packets = [
        mqtt.publish(topic, first),
        mqtt.publish(topic, forged(2)),
        publish_qos1(topic, good(3, 51.0), 7),
        mqtt.publish(topic, first),  # a repeat
        mqtt.publish(f"{site}/cell-1/boiler-1/telemetry", good(4, 52.0)),
    ]

    with TelemetryIngest(backend, "mqtt-test") as ingest:
        subscriber = run_subscriber(
            TelemetrySubscriber(ingest, site, {"tank-1": KEY}, lambda d, _t: rejected.append(d)),
            broker, site, packets,
        )  # fmt: skip
    counts = subscriber.counters.by_verdict
    assert (counts[Verdict.ACCEPTED], counts[Verdict.FORGED]) == (2, 1)
    assert (counts[Verdict.DUPLICATE], counts[Verdict.WRONG_TOPIC]) == (1, 1)
    assert [d.verdict for d in rejected] == [Verdict.FORGED, Verdict.DUPLICATE, Verdict.WRONG_TOPIC]
    rows = list(sample_rows(query_samples(backend, SampleQuery(site, variable="level", newest_first=False))))
    assert [(r["device"], r["value"]) for r in rows] == [("tank-1", 50.0), ("tank-1", 51.0)]
    assert subscriber.counters.samples_written == 4  # level and flow of two messages


def test_subscribe_command_reports_forged_messages(
    broker: tuple[str, int], data_dir: Path, tmp_path: Path
) -> None:
    site = f"test-{uuid.uuid4().hex[:10]}"
    topic = f"{site}/cell-1/tank-1/telemetry"
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"tank-1": KEY.hex()}))
    provider = Provider(make_settings(data_dir))
    stop = threading.Event()

    def publisher() -> None:  # pairs of good and forged messages until the command ends
        sequence = 0
        while not stop.is_set():
            sequence += 2
            publish_all(
                broker, [mqtt.publish(topic, good(sequence, 40.0)), mqtt.publish(topic, forged(sequence + 1))]
            )
            time.sleep(0.1)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    try:
        result = CliRunner().invoke(
            telemetry_group,
            [
                "subscribe",
                "--broker",
                f"{broker[0]}:{broker[1]}",
                "--site",
                site,
                "--keys",
                str(keys),
                "--max-messages",
                "6",
                "--duration",
                "20",
            ],
            obj=provider,
        )
    finally:
        stop.set()
        thread.join(5)
        provider.runtime().close()
    assert result.exit_code == 0, result.output
    assert "dropped forged message of device 'tank-1'" in result.stderr
    assert "its tag does not verify" in result.stderr and "failed authentication" in result.stderr
    assert result.stdout.startswith("6 messages (")
    query = CliRunner().invoke(
        telemetry_group, ["query", "--site", site, "--format", "json"], obj=Provider(make_settings(data_dir))
    )
    values = {row["value"] for row in json.loads(query.stdout)}
    assert values == {40.0, 2.5}  # stored: the good ones' level and flow, never 9999


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[tuple[str, int], Pki]]:
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if binary is None:
        pytest.skip("the mosquitto binary is not installed (Debian package mosquitto)")
    pki = make_pki(tmp_path)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    user = os.getenv("USER") or "root"  # as root, mosquitto would switch to its own user
    config.write_text(
        f"listener {port} 127.0.0.1\ncafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        f"require_certificate true\nallow_anonymous true\npersistence false\nuser {user}\n"
    )
    with (tmp_path / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: _listening(port), what="mosquitto")
            yield ("127.0.0.1", port), pki
        finally:
            process.terminate()
            process.wait(10)


def _listening(port: int) -> bool | None:
    with socket.socket() as probe:
        return True if probe.connect_ex(("127.0.0.1", port)) == 0 else None


def test_subscribe_over_tls_with_a_client_certificate(
    tls_broker: tuple[tuple[str, int], Pki], settings: Settings, store: Store
) -> None:
    address, pki = tls_broker
    site = f"test-{uuid.uuid4().hex[:10]}"
    topic = f"{site}/cell-1/tank-1/telemetry"
    backend = open_backend(settings[CoreSettings], settings[RecordsSettings], store)
    statuses: list[str] = []
    context = tls_context(pki.ca, pki.client_cert, pki.client_key)

    async def scenario(ingest: TelemetryIngest) -> TelemetrySubscriber:
        subscriber = TelemetrySubscriber(ingest, site, {"tank-1": KEY}, lambda _d, _t: None)
        stop = asyncio.Event()
        task = asyncio.create_task(
            subscriber.run(
                Broker(*address, tls=context),
                f"{site}/#",
                stop,
                client_id="tls-test",
                on_status=statuses.append,
                max_messages=1,
            )
        )
        while not any(s.startswith("subscribed") for s in statuses):
            await asyncio.sleep(0.02)
        await asyncio.to_thread(publish_all, address, [mqtt.publish(topic, good(1, 33.0))], context)
        await asyncio.wait_for(task, 10)
        return subscriber

    with TelemetryIngest(backend, "mqtt-tls-test") as ingest:
        asyncio.run(scenario(ingest))
    rows = list(sample_rows(query_samples(backend, SampleQuery(site, variable="level"))))
    assert [r["value"] for r in rows] == [33.0]

    async def without_certificate() -> list[str]:
        seen: list[str] = []
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.5, stop.set)
        plain = TelemetrySubscriber(
            TelemetryIngest(backend, "mqtt-tls-refused"), site, None, lambda _d, _t: None
        )
        await plain.run(
            Broker(*address, tls=tls_context(pki.ca, None, None)),
            f"{site}/#",
            stop,
            client_id="no-cert",
            on_status=seen.append,
        )
        plain.ingest.close()
        return seen

    refused = asyncio.run(without_certificate())
    assert refused and refused[0].startswith(f"cannot subscribe at {address[0]}:{address[1]}")


def test_a_tls_key_alone_is_refused_never_a_plain_connection(
    broker: tuple[str, int], data_dir: Path, tmp_path: Path
) -> None:
    # any --tls-* option means TLS: a key without its certificate used to subscribe over plain MQTT
    key = tmp_path / "client.key"
    key.write_text("not read: refused before")
    provider = Provider(make_settings(data_dir))
    site = f"test-{uuid.uuid4().hex[:10]}"
    arguments = ["subscribe", "--broker", f"{broker[0]}:{broker[1]}", "--site", site, "--tls-key", str(key)]
    try:
        result = CliRunner().invoke(telemetry_group, [*arguments, "--duration", "2"], obj=provider)
    finally:
        provider.runtime().close()
    assert isinstance(result.exception, InvalidInput), result.output
    assert "a TLS key needs its certificate (--tls-cert)" in str(result.exception)
    assert "subscribed" not in result.output


def test_tls_files_that_hold_no_certificate_are_refused_naming_them(tmp_path: Path) -> None:
    # they ended as "error [os_error]: [X509: NO_CERTIFICATE_OR_CRL_FOUND] ... (_ssl.c:4154)"
    empty, binary = tmp_path / "ca.pem", tmp_path / "client.pem"
    empty.write_bytes(b"")
    binary.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")
    with pytest.raises(InvalidInput, match=f"^--tls-ca {empty}: no CA certificate in it"):
        tls_context(empty, None, None)
    with pytest.raises(
        InvalidInput, match=f"^--tls-cert {binary}: not a PEM certificate and its private key"
    ):
        tls_context(None, binary, None)
