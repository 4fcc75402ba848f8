"""`plantwarden baseline`: scopes and their state, their facts, learning and checking stored
records, protecting, accepting a deviation, resetting a scope."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import click

from plantwarden.alerts.evidence import PLACE_NAME
from plantwarden.core.auditlog import AuditLog, AuditSettings
from plantwarden.core.cli_values import actor_name, duration_ns, none_at_site, time_ns
from plantwarden.core.context import host_actor
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.live import KINDS, BaselineTee
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.detection.cli import time_range
from plantwarden.zones.applied import current_model

HOUR_NS = 3600 * 1_000_000_000


@click.group("baseline")
def baseline_group() -> None:
    """Learned baselines per asset and conduit: learning, then protecting."""


def _audit(runtime: Runtime) -> AuditLog:
    return AuditLog.open(runtime.core, runtime.settings[AuditSettings])


def _site_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Click callback: refuse what is no site name, as `sensor run --site` does."""
    if value is not None and not PLACE_NAME.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a site name: 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _by(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`--by NAME` (who acts, for the audit log; default: host:<login name>), and `--actor`, its
    older spelling, hidden."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        same = "The same as --by."
        command = click.option("--actor", "actor", hidden=True, callback=actor_name, help=same)(command)
        text = f"Who {what} (for the audit log); default: host:<login name>."
        return click.option("--by", "by", metavar="NAME", callback=actor_name, help=text)(command)

    return decorate


@baseline_group.command("status")
@click.option("--site", callback=_site_name, help="Only this site.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def status_command(provider: RuntimeProvider, site: str | None, output: str) -> None:
    """Scopes, their state, how many facts they hold and when learning ends."""
    with provider.runtime().ready_store().transaction() as session:
        rows = [
            {
                "site": r.site,
                "scope": r.scope,
                "state": r.state,
                "facts": r.facts,
                "learning_started": r.learning_started.isoformat(),
                "learning_ends": r.learning_ends.isoformat(),
                "protected_at": r.protected_at.isoformat() if r.protected_at else None,
            }
            for r in services.scopes(session, site)
        ]
        elsewhere = services.scope_sites(session) if site is not None and not rows else []
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        ends = str(r["learning_ends"])[:16].replace("T", " ")
        click.echo(
            f"{r['site']:<16}{r['scope']:<40}{r['state']:<12}{r['facts']:>7} facts  learning ends {ends}"
        )
    if elsewhere:  # a misspelt site, rather than one no sensor has learned yet
        click.echo(none_at_site("baseline scopes", site, elsewhere))
        return
    click.echo(f"{len(rows)} scopes")


@baseline_group.command("show")
@click.argument("scope")
@click.option("--site", required=True, callback=_site_name, help="The site of the scope.")
@click.pass_obj
def show_command(provider: RuntimeProvider, scope: str, site: str) -> None:
    """The facts of a scope (asset:<address>, conduit:<id> or site)."""
    with provider.runtime().ready_store().transaction() as session:
        for fact in services.facts_of(session, site, scope):
            accepted = f"  accepted by {fact.accepted_by}: {fact.reason}" if fact.source == "accepted" else ""
            click.echo(f"{fact.kind:<14}{fact.key:<60}{json.dumps(fact.value)}  x{fact.count}{accepted}")


_SINCE = click.option(
    "--since", callback=time_ns, metavar="ISO", help="From this time (UTC unless an offset)."
)
_UNTIL = click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
_LAST = click.option("--last", callback=duration_ns, metavar="DURATION", help="The last 15m, 1h, 7d ...")


def stored_batches(backend: PartitionBackend, site: str, start: int, end: int) -> Iterator[RecordBatch]:
    """The site's protocol records, read aggregates and flows in [start, end), an hour at a time."""
    hours: set[int] = set()
    for kind in KINDS:
        for ref in backend.partitions(kind):
            low, high = max(ref.start_ns, start), min(ref.end_ns, end)
            if low < high:
                hours.update(range(low - low % HOUR_NS, high, HOUR_NS))
    for hour in sorted(hours):
        for kind in KINDS:
            batch = query(backend, RecordQuery(kind, max(hour, start), min(hour + HOUR_NS, end), site=site))
            if len(batch):
                yield batch


def _run(provider: RuntimeProvider, site: str, start: int, end: int, raise_alerts: bool) -> BaselineTee:
    runtime = provider.runtime()
    store = runtime.ready_store()
    with store.transaction() as session:
        model = current_model(session)
    sites = [s for s in model.sites if s.id == site] if model is not None else []
    tee = BaselineTee(store, runtime.context(), site, None, scoper=Scoper(sites), raise_alerts=raise_alerts)
    for batch in stored_batches(runtime.records(), site, start, end):
        tee.write(batch)
    tee.close()
    click.echo(
        f"{tee.checked:,} records; {tee.deviations:,} deviations"
        + (" raised as alerts" if raise_alerts else " (not raised as alerts: `baseline check` does)")
    )
    return tee


@baseline_group.command("learn")
@click.option("--site", required=True, callback=_site_name)
@_SINCE
@_UNTIL
@_LAST
@click.pass_obj
def learn_command(
    provider: RuntimeProvider, site: str, since: int | None, until: int | None, last: int | None
) -> None:
    """Learn from stored records (scopes already protecting only count their deviations)."""
    start, end = time_range(since, until, last)
    click.echo(_run(provider, site, start, end, raise_alerts=False).summary())


@baseline_group.command("check")
@click.option("--site", required=True, callback=_site_name)
@_SINCE
@_UNTIL
@_LAST
@click.pass_obj
def check_command(
    provider: RuntimeProvider, site: str, since: int | None, until: int | None, last: int | None
) -> None:
    """Check stored records against the protecting scopes, raising an alert per broken fact."""
    start, end = time_range(since, until, last)
    click.echo(_run(provider, site, start, end, raise_alerts=True).summary())


@baseline_group.command("protect")
@click.argument("scope", required=False)
@click.option("--site", required=True, callback=_site_name)
@_by("protects")
@click.pass_obj
def protect_command(
    provider: RuntimeProvider, scope: str | None, site: str, by: str | None, actor: str | None
) -> None:
    """Start protecting one scope now (default: every learning scope of the site)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        ctx = runtime.context(host_actor(by or actor))
        turned = services.protect(session, ctx, _audit(runtime), site, scope)
    click.echo(f"protecting now: {', '.join(turned) or 'nothing (no learning scope)'}")


@baseline_group.command("accept")
@click.argument("alert_id")
@click.option(
    "--reason",
    required=True,
    help="Why the deviation is normal (kept in the audit log): 1-1000 printable characters on one line.",
)
@_by("accepts")
@click.pass_obj
def accept_command(
    provider: RuntimeProvider, alert_id: str, reason: str, by: str | None, actor: str | None
) -> None:
    """Accept the deviation an alert reports into the baseline (close the alert with a verdict
    with `plantwarden alerts close`)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        ctx = runtime.context(host_actor(by or actor))
        fact = services.accept_alert(session, ctx, _audit(runtime), alert_id, reason)
        click.echo(f"accepted into {fact.scope}: {fact.kind} {fact.key} {json.dumps(fact.value)}")


@baseline_group.command("reset")
@click.argument("scope")
@click.option("--site", required=True, callback=_site_name)
@_by("resets")
@click.option(
    "--learning",
    callback=duration_ns,
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="How long the scope learns again from now (as `sensor run --baseline-learning`).",
)
@click.pass_obj
def reset_command(
    provider: RuntimeProvider, scope: str, site: str, by: str | None, actor: str | None, learning: int
) -> None:
    """Forget a scope's facts and learn it again from now (this host's clock)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        ctx = runtime.context(host_actor(by or actor))
        forgotten = services.reset(session, ctx, _audit(runtime), site, scope, learning)
        ends = services.get_scope(session, site, scope).learning_ends
    click.echo(f"{scope}: {forgotten:,} facts forgotten, learning again until {ends:%Y-%m-%d %H:%M} UTC")
