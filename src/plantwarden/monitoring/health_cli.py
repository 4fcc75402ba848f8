"""`plantwarden sensor status` and `plantwarden sensor watch`: the sensors' health, and the
watchdog that raises alerts for a silent sensor, lost packets and a skewed clock."""

from __future__ import annotations

import time

import click
from sqlalchemy import select

from plantwarden.core import migrate
from plantwarden.core.cli_values import FiniteFloatRange
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.monitoring.health import SILENT_AFTER, SKEW_LIMIT, check_sensors
from plantwarden.monitoring.models import SensorStatus


@click.command("status")
@click.pass_obj
def status_command(provider: RuntimeProvider) -> None:
    """Every sensor's last heartbeat: state, packets read and lost, clock skew."""
    runtime = provider.runtime()
    now = runtime.clock.now()
    with runtime.ready_store().transaction() as session:
        rows = session.scalars(select(SensorStatus).order_by(SensorStatus.site, SensorStatus.name)).all()
        if not rows:
            click.echo("no sensor has reported yet (sensor run reports every 15 s while it reads)")
        for row in rows:
            received = (
                row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=now.tzinfo)
            )
            age = (now - received).total_seconds()
            click.echo(
                f"{row.site}/{row.segment}  {row.name}  {row.state}  {row.source}  "
                f"last heartbeat {age:,.0f} s ago  packets {row.packets:,}  "
                f"lost {row.dropped:,} of {row.captured:,}  clock skew {row.clock_skew_s:+.1f} s"
            )


@click.command("watch")
@click.option("--once", is_flag=True, help="Check once and exit (for cron or a test).")
@click.option(
    "--every", type=FiniteFloatRange(min=1), default=30.0, show_default=True, help="Seconds between checks."
)
@click.option(
    "--silent-after",
    type=FiniteFloatRange(min=1),
    default=SILENT_AFTER,
    show_default=True,
    help="A running sensor with no heartbeat for this many seconds is silent.",
)
@click.option(
    "--skew-limit",
    type=FiniteFloatRange(min=0),
    default=SKEW_LIMIT,
    show_default=True,
    help="Seconds a sensor's clock may differ from the store's.",
)
@click.pass_obj
def watch_command(
    provider: RuntimeProvider, once: bool, every: float, silent_after: float, skew_limit: float
) -> None:
    """The watchdog: alerts for sensors that went silent, lost packets or whose clock is off."""
    runtime = provider.runtime()
    while not once and migrate.is_empty(runtime.store()):  # the server creates the schema: no race
        time.sleep(1.0)
    store = runtime.ready_store()
    while True:
        with store.transaction() as session:
            report = check_sensors(
                session, runtime.context("watchdog"), silent_after=silent_after, skew_limit=skew_limit
            )
        if once or report.silent or report.lossy or report.skewed:
            click.echo(
                f"{report.sensors} sensors: {report.silent} silent, {report.lossy} losing packets, "
                f"{report.skewed} with a skewed clock"
            )
        if once:
            return
        time.sleep(every)
