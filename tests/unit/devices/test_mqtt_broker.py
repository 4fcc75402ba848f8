"""The embedded MQTT broker (amqtt behind our listeners): a message goes from a publisher to a
subscriber on the plain and on the TLS listener; the TLS listener takes only clients with a
certificate of the platform CA that the CRL does not revoke: none, a foreign CA's or a revoked
one is refused during the handshake."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.runtime import Runtime
from plantwarden.devices.cli import devices_group
from plantwarden.devices.mqtt_broker import MqttBroker, broker_tls_context
from plantwarden.monitoring.mqtt_publisher import MqttPublisher
from plantwarden.monitoring.telemetry_mqtt import Broker, MqttSubscription
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.revocation import crl_pem
from tests.conftest import make_settings
from tests.helpers import plantwarden, taken_port
from tests.unit.gateway.peers import ClientFiles, Pki
from tests.unit.pki.support import PASSPHRASE


async def _round_trip(where: Broker, topic: str) -> bytes | None:
    subscription = await MqttSubscription.open(where, "sub-1", topic, timeout=5)
    publisher = await MqttPublisher.open(where, "pub-1", timeout=5)
    try:
        await publisher.publish(topic, b'{"level": 51.2}', qos=1, timeout=5)
        message = await subscription.next_message(5)
        return None if message is None else message.payload
    finally:
        await publisher.close()
        await subscription.close()


def test_a_message_crosses_the_plain_listener() -> None:
    async def scenario() -> bytes | None:
        broker = MqttBroker(("127.0.0.1", 0))
        await broker.start()
        try:
            host, port = broker.addresses["plain"]
            return await _round_trip(Broker(host, port), "riverside/cell-a/tank-1/telemetry")
        finally:
            await broker.stop()

    assert asyncio.run(scenario()) == b'{"level": 51.2}'


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


def _context(pki: Pki) -> ssl.SSLContext:
    with pki.store.transaction() as session:
        crl = crl_pem(session, pki.ca)
    return broker_tls_context(str(pki.server.certificate), str(pki.server.key), str(pki.server.chain), crl)


def test_the_tls_listener_takes_only_valid_certificates_of_the_platform_ca(pki: Pki) -> None:
    good, revoked = pki.client("tank-1", None), pki.client("tank-2", None)
    foreign = pki.foreign_client("tank-3", "operator")
    with pki.store.transaction() as session:
        services.revoke(session, Context(source="test"), None, serial=revoked.serial, reason="key_compromise")

    async def attempt(where: tuple[str, int], files: ClientFiles | None) -> bytes | Exception | None:
        context = pki.client_context(files)
        try:
            return await _round_trip(Broker(where[0], where[1], context), "riverside/cell-a/tank-1/telemetry")
        except Exception as error:  # refused in the handshake, or the stream ended during CONNECT
            return error

    async def scenario() -> dict[str, bytes | Exception | None]:
        broker = MqttBroker(tls_listen=("127.0.0.1", 0), tls=_context(pki))
        await broker.start()
        try:
            where = broker.addresses["tls"]
            return {
                name: await attempt(where, files)
                for name, files in (
                    ("good", good),
                    ("none", None),
                    ("foreign", foreign),
                    ("revoked", revoked),
                )
            }
        finally:
            await broker.stop()

    outcome = asyncio.run(scenario())
    assert outcome["good"] == b'{"level": 51.2}'
    for refused in ("none", "foreign", "revoked"):
        assert isinstance(outcome[refused], Exception), (refused, outcome[refused])


def test_a_broker_without_listeners_or_with_a_lax_context_is_refused(pki: Pki) -> None:
    with pytest.raises(ValueError, match="plain or a TLS listener"):
        MqttBroker()
    lax = _context(pki)
    lax.verify_mode = ssl.CERT_OPTIONAL
    with pytest.raises(ValueError, match="require client certificates"):
        MqttBroker(tls_listen=("127.0.0.1", 0), tls=lax)


def test_the_command_runs_both_listeners_with_the_data_directorys_ca(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    CertificateAuthority.initialise(pki_directory(runtime.core.data_path), PASSPHRASE)
    args = ["broker", "--listen", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--duration", "0.5"]
    result = CliRunner().invoke(devices_group, args, obj=Provider(runtime))
    runtime.close()
    assert result.exit_code == 0, result.output
    assert re.search(r"MQTT broker listening: plain 127\.0\.0\.1:\d+, tls 127\.0\.0\.1:\d+", result.output)
    assert CliRunner().invoke(devices_group, ["broker"], obj=Provider(runtime)).exit_code == 2


@pytest.mark.parametrize("option", ["--listen", "--tls"])
@pytest.mark.parametrize("listen", ["127.0.0.1:²", "127.0.0.1:١٢", "127.0.0.1:65536", "127.0.0.1"])
def test_a_listener_that_is_not_host_and_an_ascii_port_is_a_usage_error(
    tmp_path: Path, option: str, listen: str
) -> None:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    result = CliRunner().invoke(devices_group, ["broker", option, listen], obj=Provider(runtime))
    runtime.close()
    assert result.exit_code == 2
    assert f"Invalid value for {option}: {listen!r} is not HOST:PORT" in result.output


def test_a_host_without_a_tls_listener_is_a_usage_error(tmp_path: Path) -> None:
    # --host names the broker in its TLS certificate: with only --listen it was silently unused
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    args = ["broker", "--listen", "127.0.0.1:0", "--host", "broker.plant.example", "--duration", "0.5"]
    result = CliRunner().invoke(devices_group, args, obj=Provider(runtime))
    runtime.close()
    assert result.exit_code == 2, result.output
    assert "--host goes with --tls" in result.output and "listening" not in result.output


class Provider:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


def test_a_fresher_crl_refuses_a_certificate_revoked_while_the_broker_runs(pki: Pki) -> None:
    device = pki.client("tank-1", None)

    async def scenario() -> tuple[bytes | None, Exception | None]:
        broker = MqttBroker(tls_listen=("127.0.0.1", 0), tls=_context(pki))
        await broker.start()
        try:
            host, port = broker.addresses["tls"]
            where = Broker(host, port, pki.client_context(device))
            before = await _round_trip(where, "riverside/cell-a/tank-1/telemetry")
            with pki.store.transaction() as session:
                services.revoke(session, Context(source="test"), None, serial=device.serial, reason="retired")
            broker.replace_tls(_context(pki))  # the hourly refresh, now
            try:
                await _round_trip(where, "riverside/cell-a/tank-1/telemetry")
            except Exception as error:
                return before, error
            return before, None
        finally:
            await broker.stop()

    before, after = asyncio.run(scenario())
    assert before == b'{"level": 51.2}'
    assert after is not None, "the revoked certificate was still accepted after the refresh"


def test_a_listener_address_in_use_is_one_error_naming_it(tmp_path: Path) -> None:
    """It was a traceback of amqtt's broadcast loop, then the bind error without the option."""
    with taken_port() as port:
        result = plantwarden(
            "--data-dir", str(tmp_path), "devices", "broker", "--listen", f"127.0.0.1:{port}", cwd=tmp_path
        )
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"error [configuration_error]: cannot listen on 127.0.0.1:{port}: Address already in use"
        " (--listen; is another Plantwarden server running?)"
    ), result.stderr
    assert "Traceback" not in result.stderr
