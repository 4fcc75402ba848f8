"""`plantwarden detect train|check|models|forget`: process models over stored telemetry.

`train` fits a model per device on the site's telemetry of a learning window (and keeps it, as
a running sensor would once its window is over); `check` scores stored telemetry with the saved
models and can raise the episodes it finds as alerts; `models` lists them; `forget` drops one so
its device learns afresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from plantwarden.core.cli_values import IntegerRange, duration_ns, none_at_site, time_ns
from plantwarden.core.clock import SECOND_NS
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.detection.cli import time_range
from plantwarden.detection.process_watch.alerts import draft, episode_reporter
from plantwarden.detection.process_watch.episodes import Episode
from plantwarden.detection.process_watch.limits import WatchedModel
from plantwarden.detection.process_watch.live import counter_marks
from plantwarden.detection.process_watch.saved import forget_model, load_models, model_sites, save_model
from plantwarden.detection.process_watch.watch import ProcessWatch
from plantwarden.zones.applied import current_model

HOUR_NS = 3600 * SECOND_NS

_since = click.option(
    "--since", callback=time_ns, metavar="ISO", help="From this time (UTC unless an offset is given)."
)
_until = click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
_last = click.option(
    "--last", callback=duration_ns, metavar="DURATION", help="The last 15m, 1h, 7d ... (default: 1h)."
)
_site = click.option("--site", required=True, help="The site whose telemetry is read.")


def telemetry_hours(
    backend: PartitionBackend, site: str, start: int, end: int, device: str | None
) -> Iterator[RecordBatch]:
    """The site's stored telemetry in [start, end), an hour at a time, in time order. Only the
    hours some telemetry partition covers are read: `--since 2000-01-01` on a store of one week
    asked for each of 230,000 empty hours (17 s on an empty store)."""
    hours = sorted(
        {
            low
            for ref in backend.partitions("telemetry")
            if ref.end_ns > start and ref.start_ns < end
            for low in _hours(max(ref.start_ns, start), min(ref.end_ns, end))
        }
    )
    for low in hours:
        batch = query(
            backend,
            RecordQuery("telemetry", max(low, start), min(low + HOUR_NS, end), site=site, device=device),
        )
        if len(batch):
            yield batch


def _hours(start: int, end: int) -> range:
    """The starts of the hours that [start, end) touches."""
    return range(start - start % HOUR_NS, end, HOUR_NS)


@click.command("train")
@_site
@_since
@_until
@_last
@click.option("--device", help="Only this device (default: every device with telemetry).")
@click.option(
    "--min-rows",
    type=IntegerRange(10),
    default=300,
    show_default=True,
    help="Seconds of telemetry a device needs.",
)
@click.pass_obj
def train_command(
    provider: RuntimeProvider,
    site: str,
    since: int | None,
    until: int | None,
    last: int | None,
    device: str | None,
    min_rows: int,
) -> None:
    """Train each device's process model on the site's stored telemetry of a learning window (only
    normal operation belongs in it) and keep it, replacing the device's earlier model."""
    start, end = time_range(since, until, last)
    runtime = provider.runtime()
    trained: list[tuple[str, WatchedModel, int]] = []

    def keep(name: str, model: WatchedModel, step_ns: int, rows: int, window: tuple[int, int]) -> None:
        with runtime.ready_store().transaction() as session:
            save_model(
                session,
                runtime.context(),
                site=site,
                device=name,
                model=model,
                step_ns=step_ns,
                rows=rows,
                trained_ns=window,
                created_by=runtime.context().actor or "cli",
            )
        trained.append((name, model, rows))

    with runtime.ready_store().transaction() as session:
        marks = counter_marks(current_model(session), site)  # the applied plant's `counter:` marks
    watch = ProcessWatch(
        site, None, lambda _found: None, keep, learn_ns=end - start, min_rows=min_rows, marks=marks
    )
    for batch in telemetry_hours(runtime.records(), site, start, end, device):
        watch.write(batch)
    watch.fit_now()
    for name, model, rows in trained:
        names = ", ".join(model.names)
        left = f"; left out (counters): {', '.join(model.left_out)}" if model.left_out else ""
        click.echo(
            f"trained {name}: {rows:,} rows, threshold {model.model.threshold:.4g}; variables: {names}{left}"
        )
    short = {name: item.rows for name, item in watch.learning.items()}
    for name, rows in sorted(short.items()):
        why = watch.not_trained.get(name, f"fewer than --min-rows {min_rows}")
        click.echo(f"not trained {name}: {rows:,} rows, {why}", err=True)
    if not trained:
        raise click.ClickException(
            f"no device of site {site!r} could be trained on the window"
            + ("" if watch.not_trained else f": none has {min_rows} rows of telemetry in it")
        )


@click.command("check")
@_site
@_since
@_until
@_last
@click.option("--device", help="Only this device.")
@click.option(
    "--raise-alerts/--no-raise-alerts",
    "raise_alerts_",
    default=False,
    show_default=True,
    help="Raise an alert per episode.",
)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def check_command(
    provider: RuntimeProvider,
    site: str,
    since: int | None,
    until: int | None,
    last: int | None,
    device: str | None,
    raise_alerts_: bool,
    output: str,
) -> None:
    """Score the site's stored telemetry with its saved process models; list the episodes."""
    start, end = time_range(since, until, last)
    runtime = provider.runtime()
    models = _models(runtime, site, device)
    found: list[Episode] = []
    watch = ProcessWatch(site, None, found.extend, lambda *_: None, models=models, learn=False)
    for batch in telemetry_hours(runtime.records(), site, start, end, device):
        watch.write(batch)
    watch.close()
    if raise_alerts_ and found:
        counts = episode_reporter(runtime.ready_store(), runtime.context(), site)(found)
    if output == "json":
        click.echo(json.dumps([_json(site, episode) for episode in found], indent=1))
    else:
        click.echo(watch.summary(raised=raise_alerts_))
        for episode in found:
            click.echo(draft(site, episode).title + f"  [{_span(episode)}]")
    if raise_alerts_ and found:
        click.echo(
            f"alerts: {counts.opened:,} opened, {counts.repeated:,} already open (counted again)",
            err=output == "json",
        )


@click.command("models")
@click.option("--site", required=True)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def models_command(provider: RuntimeProvider, site: str, output: str) -> None:
    """The site's saved process models: device, variables, training window, threshold."""
    with provider.runtime().ready_store().transaction() as session:
        saved = load_models(session, site)
        elsewhere = model_sites(session) if not saved else []
    rows: list[dict[str, Any]] = [
        {
            "device": item.device,
            "variables": list(item.model.names),
            "left_out": list(item.model.left_out),
            "rows": item.rows,
            "trained_from": item.trained_from.isoformat(),
            "trained_until": item.trained_until.isoformat(),
            "threshold": item.model.model.threshold,
            "created_by": item.created_by,
        }
        for item in sorted(saved.values(), key=lambda t: t.device)
    ]
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows and elsewhere:  # a misspelt site, rather than one not trained yet
        click.echo(none_at_site("process models", site, elsewhere))
    elif not rows:
        click.echo(
            f"no process model at site {site!r} yet: a sensor with --plant learns them, "
            "or run `plantwarden detect train`"
        )
    for row in rows:
        window = f"{row['trained_from'][:19]} .. {row['trained_until'][:19]}"
        click.echo(f"{row['device']:20} {row['rows']:>8,} rows  {window}  threshold {row['threshold']:.4g}")
        click.echo(f"  {', '.join(row['variables'])}")
        if row["left_out"]:
            click.echo(f"  left out (counters): {', '.join(row['left_out'])}")


@click.command("forget")
@click.option("--site", required=True)
@click.argument("device")
@click.pass_obj
def forget_command(provider: RuntimeProvider, site: str, device: str) -> None:
    """Drop a device's process model: it learns afresh from the next telemetry a sensor sees."""
    with provider.runtime().ready_store().transaction() as session:
        forget_model(session, site, device)
    click.echo(f"forgot the process model of {device} at {site}")


def _models(runtime: Runtime, site: str, device: str | None) -> dict[str, WatchedModel]:
    with runtime.ready_store().transaction() as session:
        saved = load_models(session, site)
    models = {name: item.model for name, item in saved.items() if device is None or name == device}
    if not models:
        raise click.ClickException(
            f"no saved process model at site {site!r}{f' for {device!r}' if device else ''}: "
            "train one first (plantwarden detect train)"
        )
    return models


def _span(episode: Episode) -> str:
    seconds = (episode.end_ns - episode.start_ns) / SECOND_NS
    return f"{seconds:.0f} s, {episode.rows} rows"


def _json(site: str, episode: Episode) -> dict[str, Any]:
    item = draft(site, episode)
    return {"device": episode.device, "title": item.title, "evidence": list(item.evidence)}


PROCESS_COMMANDS = (train_command, check_command, models_command, forget_command)
"""The commands this module adds to `plantwarden detect`."""
