"""`plantwarden zones check`: stored traffic checked against plant.yaml's zones and conduits."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click

from plantwarden.core.cli_values import duration_ns, time_ns
from plantwarden.core.clock import SECOND_NS, iso_time
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.detection.pending import PENDING_LIMIT
from plantwarden.detection.violations import Violation
from plantwarden.detection.zone_check import CheckReport, check_stored, raise_alerts
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import PlantModel, SiteModel


def time_range(since: int | None, until: int | None, last: int | None) -> tuple[int, int]:
    """[start, end) in nanoseconds from --since/--until/--last (default: the last hour)."""
    if last is not None and since is not None:
        raise click.UsageError("give --since or --last, not both")
    end = until if until is not None else time.time_ns()
    start = since if since is not None else end - (last or 3600 * SECOND_NS)
    if start >= end:
        raise click.UsageError("the time range is empty: --since must be before --until")
    return start, end


@click.group("zones")
def zones_group() -> None:
    """The plant's zones and conduits (plant.yaml) against what the sensor saw."""


@zones_group.command("check")
@click.option(
    "--plant",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The plant model (plant.yaml).",
)
@click.option(
    "--since", callback=time_ns, metavar="ISO", help="From this time (UTC unless an offset is given)."
)
@click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
@click.option(
    "--last", callback=duration_ns, metavar="DURATION", help="The last 15m, 1h, 7d ... (default: 1h)."
)
@click.option("--site", "site_id", help="Only this site of the plant (default: every site).")
@click.option(
    "--window",
    callback=duration_ns,
    default="1h",
    show_default=True,
    help="One violation per window of this length.",
)
@click.option(
    "--raise-alerts/--no-raise-alerts",
    "raise_alerts_",
    default=False,
    show_default=True,
    help="Raise an alert per violation (an open alert with the same key counts another occurrence).",
)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def check_command(
    provider: RuntimeProvider,
    plant: Path,
    since: int | None,
    until: int | None,
    last: int | None,
    site_id: str | None,
    window: int,
    raise_alerts_: bool,
    output: str,
) -> None:
    """Check stored protocol records, read aggregates and flows against the zones and conduits."""
    start, end = time_range(since, until, last)
    runtime = provider.runtime()
    backend = runtime.records()
    reports = [
        (site, check_stored(backend, site, start, end, window_ns=window))
        for site in _sites(load_plant(plant), site_id)
    ]
    if raise_alerts_:
        with runtime.ready_store().transaction() as session:
            counts = [raise_alerts(session, runtime.context(), report.violations) for _, report in reports]
    if output == "json":
        click.echo(json.dumps([_json(v) for _, report in reports for v in report.violations], indent=1))
    else:
        for site, report in reports:
            _table(site, report, start, end)
    if raise_alerts_:
        opened, repeated = sum(c.opened for c in counts), sum(c.repeated for c in counts)
        click.echo(
            f"alerts: {opened:,} opened, {repeated:,} already open (counted again)", err=output == "json"
        )


def _sites(model: PlantModel, site_id: str | None) -> list[SiteModel]:
    if site_id is None:
        return list(model.sites)
    try:
        return [model.site(site_id)]
    except KeyError:
        known = ", ".join(s.id for s in model.sites) or "none"
        raise click.BadParameter(
            f"the plant has no site {site_id!r} (its sites: {known})", param_hint="--site"
        ) from None


def _table(site: SiteModel, report: CheckReport, start: int, end: int) -> None:
    read = ", ".join(f"{count:,} {kind}" for kind, count in report.records.items())
    click.echo(f"site {site.id}: {iso_time(start)} to {iso_time(end)}; read {read}")
    if not report.violations:
        click.echo("no violations")
        return
    click.echo(_line(("window (UTC)", "rule", "source", "destination", "operation", "service", "count")))
    for v in report.violations:
        window = iso_time(v.window_start_ns)[:16].replace("T", " ")
        src = f"{v.src} ({v.src_zone or 'no zone'})"
        dst = f"{v.dst} ({v.dst_zone or 'no zone'})"
        click.echo(_line((window, v.rule, src, dst, v.operation, f"{v.protocol} {v.port}", f"{v.count:,}")))
        click.echo(f"{'':18}{v.reason}")
    if report.folded:
        click.echo(
            f"{report.folded:,} violations folded into many-source ones"
            f" (more than {PENDING_LIMIT:,} distinct)"
        )
    click.echo(f"{len(report.violations):,} violations")


_WIDTHS = (16, 26, 30, 30, 10, 14, 9)


def _line(cells: tuple[str, ...]) -> str:
    """One row of the table: cells padded to their columns, the count right-aligned."""
    padded = [cell.ljust(width) for cell, width in zip(cells[:-1], _WIDTHS, strict=False)]
    return "  ".join([*padded, cells[-1].rjust(_WIDTHS[-1])])


def _json(violation: Violation) -> dict[str, object]:
    shown = {"shown", "shown_span"}
    fields = {
        f.name: getattr(violation, f.name) for f in dataclasses.fields(violation) if f.name not in shown
    }
    fields["rows"] = list(violation.rows)
    fields.update(
        window_start=iso_time(violation.window_start_ns),
        first=iso_time(violation.first_ns),
        last=iso_time(violation.last_ns),
        dedup_key=violation.dedup_key,
    )
    return fields
