"""`plantwarden alerts`: list, show, acknowledge and close alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from plantwarden.alerts import services
from plantwarden.alerts.models import AlertStatus, Severity
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.alerts.schemas import AlertOut
from plantwarden.core.runtime import RuntimeProvider

SEVERITIES = [s.name.lower() for s in Severity]


@click.group("alerts")
def alerts_group() -> None:
    """Alerts raised by every detector."""


@alerts_group.command("list")
@click.option("--site", help="Only this site.")
@click.option("--status", type=click.Choice([s.value for s in AlertStatus]), help="Only this status.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), help="This severity or worse.")
@click.option("--since", type=click.DateTime(), help="Seen at or after this time (UTC).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_command(
    provider: RuntimeProvider,
    site: str | None,
    status: str | None,
    min_severity: str | None,
    since: datetime | None,
    limit: int,
    output: str,
) -> None:
    """List alerts, most recently seen first."""
    query = AlertFilter(
        site=site,
        status=AlertStatus(status) if status else None,
        min_severity=Severity[min_severity.upper()] if min_severity else None,
        since=since.replace(tzinfo=UTC) if since else None,
        limit=limit,
    )
    with provider.runtime().ready_store().transaction() as session:
        alerts = [AlertOut.of(a) for a in list_alerts(session, query)]
    if output == "json":
        click.echo(json.dumps([a.model_dump(mode="json") for a in alerts], indent=2))
        return
    if not alerts:
        click.echo("no alerts")
        return
    click.echo(f"{'id':36}  {'last seen (UTC)':19}  {'severity':8}  {'status':12}  {'n':>4}  title")
    for a in alerts:
        seen = a.last_seen.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{a.id!s:36}  {seen:19}  {a.severity:8}  {a.status:12}  {a.occurrences:>4}  {a.title}")


@alerts_group.command("show")
@click.argument("alert_id")
@click.pass_obj
def show_command(provider: RuntimeProvider, alert_id: str) -> None:
    """One alert with its evidence, as JSON."""
    with provider.runtime().ready_store().transaction() as session:
        alert = AlertOut.of(services.get_alert(session, alert_id))
    click.echo(json.dumps(alert.model_dump(mode="json"), indent=2))


@alerts_group.command("ack")
@click.argument("alert_id")
@click.option("--note", default="", help="Why, or who takes it.")
@click.option("--by", "actor", help="Who acknowledges (recorded with the alert).")
@click.pass_obj
def ack_command(provider: RuntimeProvider, alert_id: str, note: str, actor: str | None) -> None:
    """Acknowledge a new alert."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        alert = services.acknowledge(session, runtime.context(actor), alert_id, note)
        click.echo(f"acknowledged {alert.id}")


@alerts_group.command("close")
@click.argument("alert_id")
@click.option("--reason", required=True, help="Why it is closed (kept with the alert).")
@click.option("--by", "actor", help="Who closes it (recorded with the alert).")
@click.pass_obj
def close_command(provider: RuntimeProvider, alert_id: str, reason: str, actor: str | None) -> None:
    """Close an alert."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        alert = services.close(session, runtime.context(actor), alert_id, reason)
        click.echo(f"closed {alert.id}")
