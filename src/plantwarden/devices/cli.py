"""Commands of end-to-end device telemetry.

Device side (`plantwarden agent`): `enroll` with a one-time token, `publish` values, `renew` the
certificate before it expires, `status`.
Platform side (`plantwarden devices`): `broker-config` writes a Mosquitto TLS listener whose
certificates come from the platform CA (client certificates required, the CRL checked), `ingest`
receives, verifies, decrypts and stores the devices' messages, `telemetry` shows per device what
was accepted, redelivered, replayed and refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.parsing import host_port
from plantwarden.core.records.partitions import writer_name_of
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.core.settings import ENROLMENT_TOKEN_ENV
from plantwarden.devices.agent import Agent, AgentFiles, enroll, read_state, renew, renewal_due
from plantwarden.devices.broker import (
    BROKER,
    INGEST_PREFIX,
    BrokerConfig,
    ingest_identity,
    ingest_tls_context,
    reload_broker,
    write_broker_config,
)
from plantwarden.devices.envelope import Opener, key_id
from plantwarden.devices.ingest import SecureIngest
from plantwarden.devices.ingest_loop import run_ingest
from plantwarden.devices.mqtt_broker import MqttBroker, broker_tls_context
from plantwarden.devices.status import telemetry_status
from plantwarden.devices.trust import DeviceKeys
from plantwarden.monitoring.mqtt_publisher import MqttPublisher
from plantwarden.monitoring.telemetry import TelemetryIngest, check_site
from plantwarden.monitoring.telemetry_cli import until_stopped
from plantwarden.monitoring.telemetry_mqtt import Broker, parse_broker
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import renewal_starts
from plantwarden.pki.cli_support import duration as duration_option
from plantwarden.pki.revocation import crl_pem
from plantwarden.pki.service_certs import Purpose, ensure_service_identity

RECIPIENT = "telemetry-recipient"
CRL_EVERY = 3600.0
"""Seconds between two refreshes of the embedded broker's CRL (a CRL is valid for a day)."""
_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The device's directory (key, certificate, chain, sequence).",
)


@click.group("agent")
def agent_group() -> None:
    """The device agent: enrol with the platform, publish signed and encrypted telemetry."""


@agent_group.command("enroll")
@_DIR
@click.option("--api", required=True, help="The platform's base URL, e.g. https://plantwarden.plant:8443.")
@click.option("--token", required=True, envvar=ENROLMENT_TOKEN_ENV, help="The one-time token.")
@click.option(
    "--api-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="CA of the API's TLS."
)
@click.option("--force", is_flag=True, help="Enrol again, replacing the device's key and certificate.")
def enroll_command(directory: Path, api: str, token: str, api_ca: Path | None, force: bool) -> None:
    """Make this device's key and have the platform certify it (the token says who it is)."""
    _check_api_ca(api, api_ca)
    identity = enroll(directory, api, token, cafile=api_ca, force=force)
    role = f", role {identity.role}" if identity.role else ""
    click.echo(
        f"enrolled {identity.device} (site {identity.site}, zone {identity.zone}{role}) in {directory}"
    )


def _check_api_ca(api: str, api_ca: Path | None) -> None:
    """Refuse --api-ca with a plain http:// --api: there is no TLS for it to verify."""
    if api_ca is not None and urllib.parse.urlsplit(api).scheme.lower() != "https":
        raise click.UsageError("--api-ca goes with an https:// --api (it verifies the platform's TLS)")


def _values(pairs: tuple[str, ...]) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=NUMBER", param_hint="--value")
        try:
            values[name] = None if text in ("", "null") else float(text)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a number", param_hint="--value") from None
    return values


@agent_group.command("publish")
@_DIR
@click.option("--broker", "broker_text", required=True, help="HOST:PORT of the broker's TLS listener.")
@click.option("--value", "pairs", multiple=True, required=True, help="NAME=NUMBER (repeat for more values).")
@click.option("--count", type=IntegerRange(min=1), default=1, show_default=True, help="Messages to send.")
@click.option(
    "--interval", type=FiniteFloatRange(min=0), default=1.0, show_default=True, help="Seconds between."
)
@click.option("--qos", type=IntegerRange(0, 1), default=1, show_default=True)
def publish_command(
    directory: Path, broker_text: str, pairs: tuple[str, ...], count: int, interval: float, qos: int
) -> None:
    """Publish values (signed by the device, encrypted to the platform) over MQTT/TLS."""
    values = _values(pairs)
    agent = Agent.start(directory)
    if renewal_due(agent.files.certificate, datetime.now(UTC)):
        ends = agent.files.certificate.not_valid_after_utc
        click.echo(f"warning: the certificate expires {ends:%Y-%m-%d %H:%M} UTC: run `agent renew`", err=True)
    host, port = parse_broker(broker_text)

    async def send() -> None:
        broker = Broker(host, port, agent.files.tls_context())
        publisher = await MqttPublisher.open(
            broker, f"pw-agent-{agent.identity.site}-{agent.identity.device}"
        )
        try:
            for number in range(count):
                await publisher.send(
                    agent.topic,
                    agent.seal(values),
                    qos=qos,
                    packet_id=publisher.packet_id() if qos else None,
                )
                if number + 1 < count:
                    await asyncio.sleep(interval)
        finally:
            await publisher.close()

    try:
        asyncio.run(send())
    finally:
        agent.save()
    click.echo(
        f"published {count} message(s) on {agent.topic} (epoch {agent.epoch}, last counter {agent.counter})"
    )


@agent_group.command("renew")
@_DIR
@click.option("--api", required=True, help="The platform's base URL (EST under /.well-known/est).")
@click.option(
    "--api-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="CA of the API's TLS."
)
@click.option(
    "--if-due", is_flag=True, help="Only when in the last third of the certificate's life (for cron)."
)
def renew_command(directory: Path, api: str, api_ca: Path | None, if_due: bool) -> None:
    """Renew the device's certificate with a new key (EST simplereenroll, the current certificate
    as TLS client certificate)."""
    _check_api_ca(api, api_ca)
    current = AgentFiles.load(directory).certificate
    if if_due and not renewal_due(current, datetime.now(UTC)):
        click.echo(f"not due: renewal starts {renewal_starts(current):%Y-%m-%d %H:%M} UTC")
        return
    renewed = renew(directory, api, cafile=api_ca)
    click.echo(
        f"renewed: certificate {renewed.serial_number:x}, "
        f"valid until {renewed.not_valid_after_utc:%Y-%m-%d} UTC"
    )


@agent_group.command("status")
@_DIR
def agent_status_command(directory: Path) -> None:
    """The device's identity, certificate validity and sequence."""
    files = AgentFiles.load(directory)
    agent = Agent(files, epoch=read_state(directory)["epoch"])
    identity, certificate = agent.identity, files.certificate
    click.echo(f"device      {identity.device} (site {identity.site}, zone {identity.zone})")
    click.echo(f"role        {identity.role or '-'}")
    click.echo(
        f"certificate {certificate.serial_number:x}, "
        f"valid until {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(f"topic       {agent.topic}")
    click.echo(f"epoch       {agent.epoch} (the next start uses {agent.epoch + 1})")


@click.group("devices")
def devices_group() -> None:
    """Device telemetry on the platform side: broker configuration, ingest, status."""


def _authority(runtime: Runtime) -> CertificateAuthority:
    return CertificateAuthority.load(pki_directory(runtime.core.data_path))


@devices_group.command("broker-config")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory to write."
)
@click.option("--host", "hosts", multiple=True, required=True, help="Name or address of the broker (repeat).")
@click.option(
    "--site", "sites", multiple=True, required=True, help="A site whose ingest reads here (repeat)."
)
@click.option("--port", type=IntegerRange(1, 65535), default=8883, show_default=True)
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address the listener binds to.")  # noqa: S104
@click.option(
    "--refresh-every",
    callback=lambda ctx, param, value: None if value is None else duration_option(ctx, param, value),
    help="Rewrite the CRL and certificates at this interval and have Mosquitto reload them (e.g. 1h).",
)
@click.pass_obj
def broker_config_command(
    provider: RuntimeProvider,
    out: Path,
    hosts: tuple[str, ...],
    sites: tuple[str, ...],
    port: int,
    bind: str,
    refresh_every: timedelta | None,
) -> None:
    """Write a Mosquitto TLS listener: certificate from the platform CA, client certificates
    required, the current CRL, an ACL. A CRL is valid for a day: keep it fresh with
    --refresh-every (Mosquitto reloads on SIGHUP)."""
    runtime = provider.runtime()
    config = BrokerConfig(out, hosts, sites, port, bind)
    write_broker_config(runtime, config)
    click.echo(f"wrote {config.conf} (listener {bind}:{port}, client certificates required, CRL, ACL)")
    if refresh_every is None:
        return
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(refresh_every.total_seconds()):
        try:
            write_broker_config(runtime, config)
        except PlantwardenError as error:
            click.echo(
                f"refreshing the broker's files failed ({error.message}); trying again later", err=True
            )
            continue
        pid = reload_broker(config.pidfile)
        told = f"Mosquitto (pid {pid}) reloaded" if pid else f"no Mosquitto running ({config.pidfile})"
        click.echo(f"refreshed the CRL and certificates; {told}", err=True)


def _listener(text: str, option: str) -> tuple[str, int]:
    """HOST:PORT to listen on (port 0: a free one)."""
    found = host_port(text)
    if found is None:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:1883)", param_hint=option)
    return found


@devices_group.command("broker")
@click.option("--listen", help="HOST:PORT of a plain MQTT listener (devices that sign their messages).")
@click.option(
    "--tls", "tls_listen", help="HOST:PORT of a TLS listener: client certificates of the platform CA."
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Names of the broker in its TLS certificate (default: the --tls host); only with --tls.",
)
@click.option("--duration", type=FiniteFloatRange(min=0.1), help="Stop after this many seconds.")
@click.pass_obj
def broker_command(
    provider: RuntimeProvider,
    listen: str | None,
    tls_listen: str | None,
    hosts: tuple[str, ...],
    duration: float | None,
) -> None:
    """Run an MQTT 3.1.1 broker in this process (amqtt; for the demo and small sites): a plain
    listener, a TLS listener that requires a client certificate of the platform CA (CRL checked,
    refreshed every hour), or both; until Ctrl-C, SIGTERM or --duration."""
    if listen is None and tls_listen is None:
        raise click.UsageError("give --listen, --tls or both")
    if hosts and tls_listen is None:
        raise click.UsageError("--host goes with --tls (it names the broker in its TLS certificate)")
    runtime = provider.runtime()
    plain = None if listen is None else _listener(listen, "--listen")
    secure, context, refresh = None, None, None
    files: tuple[str, str, str] = ("", "", "")
    if tls_listen is not None:
        secure = _listener(tls_listen, "--tls")
        ca = _authority(runtime)
        identity = ensure_service_identity(ca, BROKER, Purpose.SERVER, hosts=hosts or (secure[0],))
        store = runtime.ready_store()

        def refresh() -> bytes:
            with store.transaction() as session:
                return crl_pem(session, ca)

        files = (str(identity.certificate), str(identity.key), str(identity.chain))
        context = broker_tls_context(*files, refresh())
    broker = MqttBroker(plain, secure, context)

    async def run(stop: asyncio.Event) -> None:
        await broker.start()
        where = ", ".join(f"{name} {host}:{port}" for name, (host, port) in broker.addresses.items())
        click.echo(f"MQTT broker listening: {where}", err=True)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CRL_EVERY):
                        await stop.wait()
                if refresh is not None and not stop.is_set():
                    try:
                        fresh = await asyncio.to_thread(refresh)
                        broker.replace_tls(broker_tls_context(*files, fresh))
                    except Exception as error:  # the CRL in force stays; said, tried again
                        click.echo(f"cannot refresh the broker's CRL: {error}", err=True)
        finally:
            await broker.stop()

    asyncio.run(until_stopped(run, duration))
    click.echo("MQTT broker stopped")


@devices_group.command("ingest")
@click.option("--site", required=True, help="The site whose devices' telemetry to receive.")
@click.option("--broker", "broker_text", required=True, help="HOST:PORT of the broker's TLS listener.")
@click.option("--duration", type=FiniteFloatRange(min=0.1), help="Stop after this many seconds.")
@click.option("--max-messages", type=IntegerRange(min=1), help="Stop after this many messages.")
@click.pass_obj
def ingest_command(
    provider: RuntimeProvider, site: str, broker_text: str, duration: float | None, max_messages: int | None
) -> None:
    """Receive the devices' messages, verify and decrypt them, and store their values; refused
    messages, duplicates and replays are counted (`devices telemetry`)."""
    check_site(site)
    runtime = provider.runtime()
    ca = _authority(runtime)
    client = ingest_identity(ca, site)
    recipient = ensure_service_identity(ca, RECIPIENT, Purpose.RECIPIENT)
    recipient_key = recipient.load_key()
    opener = Opener(recipient_key, key_id(recipient_key.public_key()))
    host, port = parse_broker(broker_text)
    broker = Broker(host, port, ingest_tls_context(client))
    store = runtime.ready_store()
    with TelemetryIngest(runtime.records(), writer_name_of("devices", site)) as ingest:
        secure = SecureIngest(store, ingest, site, opener, DeviceKeys(store, runtime.clock), runtime.clock)
        asyncio.run(_ingest(secure, broker, f"{site}/+/+/telemetry", duration, max_messages))
    click.echo(secure.counts.summary())


async def _ingest(
    secure: SecureIngest, broker: Broker, topic_filter: str, duration: float | None, max_messages: int | None
) -> None:
    await until_stopped(
        lambda stop: run_ingest(
            secure,
            broker,
            topic_filter,
            stop,
            client_id=f"{INGEST_PREFIX}{secure.site}",
            on_status=lambda text: click.echo(text, err=True),
            max_messages=max_messages,
        ),
        duration,
    )


@devices_group.command("telemetry")
@click.option("--site", help="Only this site.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def telemetry_command(provider: RuntimeProvider, site: str | None, output: str) -> None:
    """Per device: messages accepted, duplicates (QoS 1 redeliveries), replays, refusals by reason."""
    with provider.runtime().ready_store().transaction() as session:
        rows = telemetry_status(session, site=site)
    if output == "json":
        documents = [
            {**vars(row), "last_seen": row.last_seen.isoformat() if row.last_seen else None} for row in rows
        ]
        click.echo(json.dumps(documents, indent=2))
        return
    if not rows:
        click.echo("no device telemetry yet")
        return
    click.echo(f"{'SITE':<16} {'DEVICE':<20} {'ACCEPTED':>9} {'DUPL':>6} {'REPLAY':>6}  REFUSED")
    for row in rows:
        refused = ", ".join(f"{reason} {count}" for reason, count in row.refused.items()) or "-"
        click.echo(
            f"{row.site:<16} {row.device:<20} {row.accepted:>9} {row.duplicates:>6} "
            f"{row.replays:>6}  {refused}"
        )
