"""`plantwarden notify`: run the notifier process, and see how far each target is."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType

import click

from plantwarden.core import eventlog
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.workers.notify.delivery import TargetWorker, cursor_name, drain, run_workers
from plantwarden.workers.notify.settings import FACILITIES, NotifySettings, parse_syslog_address
from plantwarden.workers.notify.syslog import SyslogTarget
from plantwarden.workers.notify.target import DeliveryFailed, Target
from plantwarden.workers.notify.tls import client_context
from plantwarden.workers.notify.webhook import WebhookTarget

log = logging.getLogger(__name__)


def targets_from(settings: NotifySettings) -> list[Target]:
    """The targets the settings configure (their TLS files are read here: errors show at start)."""
    targets: list[Target] = []
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        secret = settings.webhook_secret.reveal().encode()
        targets.append(
            WebhookTarget(
                settings.webhook_url,
                secret,
                timeout=settings.webhook_timeout,
                ca_file=settings.webhook_ca_file,
            )
        )
    if settings.syslog_address is not None:
        address = parse_syslog_address(settings.syslog_address)
        context = None
        if address.transport == "tls":
            context = client_context(
                settings.syslog_ca_file, settings.syslog_client_cert, settings.syslog_client_key
            )
        targets.append(
            SyslogTarget(
                address,
                context=context,
                facility=FACILITIES[settings.syslog_facility],
                hostname=settings.syslog_hostname or socket.gethostname(),
                timeout=settings.syslog_timeout,
                max_bytes=settings.syslog_max_bytes,
            )
        )
    return targets


@click.group("notify")
def notify_group() -> None:
    """Alert notifications: a signed webhook and syslog (RFC 5424 over TLS)."""


@notify_group.command("run")
@click.option(
    "--drain", is_flag=True, help="Deliver what is pending to every target, then exit (1 if one refused)."
)
@click.pass_obj
def run_command(provider: RuntimeProvider, drain: bool) -> None:
    """Deliver alert events to the configured targets until Ctrl-C or SIGTERM."""
    runtime = provider.runtime()
    settings = runtime.settings[NotifySettings]
    targets = targets_from(settings)
    if not targets:
        raise ConfigurationError("no notification target: set notify.webhook_url or notify.syslog_address")
    store = runtime.ready_store()
    workers = [TargetWorker(store, target, settings, clock=runtime.clock) for target in targets]
    if drain:
        _drain_all(workers)
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    for worker in workers:
        log.info("notifying %s from log position %d", worker.target.name, worker.start())
    run_workers(workers, stop)
    log.info("notifier stopped")


def _drain_all(workers: list[TargetWorker]) -> None:
    refused = []
    for worker in workers:
        try:
            click.echo(f"{worker.target.name}: delivered {drain(worker)}, cursor at {worker.position()}")
        except DeliveryFailed as error:
            refused.append(worker.target.name)
            click.echo(f"{worker.target.name}: {error.message} (cursor at {worker.position()})", err=True)
    if refused:
        raise click.exceptions.Exit(1)


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current delivery", signal.Signals(signum).name)
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handle)


@notify_group.command("status")
@click.pass_obj
def status_command(provider: RuntimeProvider) -> None:
    """Each configured target with its cursor against the head of the event log."""
    runtime = provider.runtime()
    settings = runtime.settings[NotifySettings]
    if not settings.targets:
        click.echo("no notification target configured")
        return
    with runtime.ready_store().transaction() as session:
        head = eventlog.head_position(session)
        for name in settings.targets:
            if session.get(eventlog.ConsumerCursor, cursor_name(name)) is None:
                click.echo(f"{name:8} not started yet (log head {head})")
                continue
            position = eventlog.cursor_position(session, cursor_name(name))
            click.echo(f"{name:8} cursor {position}, log head {head}, {head - position} events behind")
