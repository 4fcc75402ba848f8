"""`plantwarden alerts`: list, show, acknowledge, assign and close alerts; suppress a rule for a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from plantwarden.alerts import services, suppressions
from plantwarden.alerts.models import AlertStatus, Severity, Verdict
from plantwarden.alerts.queries import AlertFilter, alert_sites, count_suppressed, list_alerts
from plantwarden.alerts.schemas import AlertOut, SuppressionOut
from plantwarden.core.cli_values import IntegerRange, actor_name, none_at_site
from plantwarden.core.runtime import RuntimeProvider

SEVERITIES = [s.name.lower() for s in Severity]
VERDICTS = [v.value for v in Verdict]


@click.group("alerts")
def alerts_group() -> None:
    """Alerts raised by every detector."""


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@alerts_group.command("list")
@click.option("--site", help="Only this site.")
@click.option("--status", type=click.Choice([s.value for s in AlertStatus]), help="Only this status.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Only this severity.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), help="This severity or worse.")
@click.option("--rule", "rule_id", help="Only alerts of this rule id.")
@click.option("--technique", help="Only alerts mapped to this ATT&CK technique id.")
@click.option("--asset", help="Only alerts about this asset (IP address).")
@click.option("--assignee", help="Only alerts assigned to this user.")
@click.option("--verdict", type=click.Choice(VERDICTS), help="Only closed alerts with this verdict.")
@click.option("--since", type=click.DateTime(), help="Seen at or after this time (UTC).")
@click.option("--until", type=click.DateTime(), help="First seen before this time (UTC).")
@click.option("--suppressed", is_flag=True, help="List the suppressed alerts instead.")
@click.option("--limit", type=IntegerRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_command(
    provider: RuntimeProvider, /, output: str, **options: str | datetime | int | bool | None
) -> None:
    """List alerts, most recently seen first (suppressed ones are counted, not listed)."""
    query = _filter(options)
    with provider.runtime().ready_store().transaction() as session:
        alerts = [AlertOut.of(a) for a in list_alerts(session, query)]
        hidden = 0 if query.suppressed else count_suppressed(session, query)
        empty = none_at_site("alerts", query.site, alert_sites(session)) if not alerts else ""
    if output == "json":
        click.echo(json.dumps([a.model_dump(mode="json") for a in alerts], indent=2))
        return
    if empty:
        click.echo(empty)
    _table(alerts)
    if hidden:
        click.echo(f"({hidden} suppressed alert(s) not listed: --suppressed lists them)")


def _filter(options: dict[str, str | datetime | int | bool | None]) -> AlertFilter:
    def text(name: str) -> str | None:
        value = options.get(name)
        return value if isinstance(value, str) else None

    def moment(name: str) -> datetime | None:
        value = options.get(name)
        return _utc(value) if isinstance(value, datetime) else None

    severity, minimum, status = text("severity"), text("min_severity"), text("status")
    limit = options.get("limit")
    return AlertFilter(
        site=text("site"),
        status=AlertStatus(status) if status else None,
        severity=Severity[severity.upper()] if severity else None,
        min_severity=Severity[minimum.upper()] if minimum else None,
        rule_id=text("rule_id"),
        technique=text("technique"),
        asset=text("asset"),
        assignee=text("assignee"),
        verdict=text("verdict"),
        suppressed=bool(options.get("suppressed")),
        since=moment("since"),
        until=moment("until"),
        limit=limit if isinstance(limit, int) else 50,
    )


def _table(alerts: list[AlertOut]) -> None:
    if not alerts:
        return
    click.echo(
        f"{'id':36}  {'last seen (UTC)':19}  {'severity':8}  {'status':12}  {'assignee':12}  {'n':>4}  title"
    )
    for a in alerts:
        seen = a.last_seen.strftime("%Y-%m-%d %H:%M:%S")
        who = a.assignee or "-"
        click.echo(
            f"{a.id!s:36}  {seen:19}  {a.severity:8}  {a.status:12}  {who:12}  {a.occurrences:>4}  {a.title}"
        )


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
@click.option("--note", default="", help="Why, or who takes it (at most 2000 characters).")
@click.option("--by", "actor", callback=actor_name, help="Who acknowledges (recorded with the alert).")
@click.pass_obj
def ack_command(provider: RuntimeProvider, alert_id: str, note: str, actor: str | None) -> None:
    """Acknowledge a new alert."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        alert = services.acknowledge(session, runtime.context(actor), alert_id, note)
        click.echo(f"acknowledged {alert.id}")


@alerts_group.command("assign")
@click.argument("alert_id")
@click.argument("username", required=False)
@click.option("--unassign", is_flag=True, help="Take the alert back from whoever has it.")
@click.option("--by", "actor", callback=actor_name, help="Who assigns (recorded with the event).")
@click.pass_obj
def assign_command(
    provider: RuntimeProvider, alert_id: str, username: str | None, unassign: bool, actor: str | None
) -> None:
    """Give an open alert to USERNAME, or take it back with --unassign."""
    if (username is None) == (not unassign):
        raise click.UsageError("give either a USERNAME or --unassign")
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        alert = services.assign(session, runtime.context(actor), alert_id, None if unassign else username)
        click.echo(f"assigned {alert.id} to {alert.assignee}" if alert.assignee else f"unassigned {alert.id}")


@alerts_group.command("close")
@click.argument("alert_id")
@click.option(
    "--verdict", required=True, type=click.Choice(VERDICTS), help="What the alert turned out to be."
)
@click.option("--reason", default="", help="Why (kept with the alert; at most 2000 characters).")
@click.option("--by", "actor", callback=actor_name, help="Who closes it (recorded with the alert).")
@click.pass_obj
def close_command(
    provider: RuntimeProvider, alert_id: str, verdict: str, reason: str, actor: str | None
) -> None:
    """Close an alert with a verdict."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        alert = services.close(session, runtime.context(actor), alert_id, reason, verdict=verdict)
        click.echo(f"closed {alert.id} as {alert.verdict}")


@alerts_group.command("suppress")
@click.argument("rule_id")
@click.option("--site", help="Only at this site (default: every site).")
@click.option("--asset", metavar="IP", help="Only alerts about this asset.")
@click.option(
    "--for", "duration", required=True, metavar="DURATION", help="How long: 30m, 8h, 2d (at most 90d)."
)
@click.option("--reason", required=True, help="Why (shown with the suppression; at most 2000 characters).")
@click.option("--by", "actor", callback=actor_name, help="Who suppresses (recorded with it).")
@click.pass_obj
def suppress_command(
    provider: RuntimeProvider,
    rule_id: str,
    site: str | None,
    asset: str | None,
    duration: str,
    reason: str,
    actor: str | None,
) -> None:
    """Store alerts of RULE_ID suppressed for a time: kept and counted, not listed by default."""
    runtime = provider.runtime()
    length = suppressions.parse_duration(duration)
    with runtime.ready_store().transaction() as session:
        made = suppressions.suppress(
            session, runtime.context(actor), rule_id, length, reason, site=site, asset=asset
        )
        click.echo(f"suppressed {rule_id} until {made.until.isoformat()} ({made.id})")


@alerts_group.command("suppressions")
@click.pass_obj
def suppressions_command(provider: RuntimeProvider) -> None:
    """The suppressions in force, as JSON."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        found = suppressions.active_suppressions(session, runtime.context(None).clock.now())
        rows = [SuppressionOut.of(s).model_dump(mode="json") for s in found]
    click.echo(json.dumps(rows, indent=2))
