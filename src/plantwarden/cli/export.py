"""`plantwarden export`: Plantwarden's data in standard formats (OCSF JSON lines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy.orm import Session

from plantwarden.alerts.models import Alert
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.cli.options import moment, output_option
from plantwarden.cli.state import CliState
from plantwarden.core.cli_values import IntegerRange, time_ns
from plantwarden.core.files import atomic_write
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.exports.ocsf import alert_to_ocsf, checked_line, protocol_records_to_ocsf
from plantwarden.exports.validate import OCSF_VERSION

PAGE = 500


@click.group("export")
def export_group() -> None:
    """Export data in standard formats."""


@export_group.group("ocsf")
def ocsf_group() -> None:
    """OCSF events, one JSON object per line, each validated against the pinned schema."""


@ocsf_group.command("alerts")
@click.option(
    "--since",
    callback=moment,
    metavar="ISO",
    help="Only alerts seen at or after this time (UTC unless it has an offset).",
)
@click.option("--site", help="Only alerts of this site.")
@output_option
@click.pass_obj
def export_alerts(state: CliState, since: datetime | None, site: str | None, output: Path | None) -> None:
    """Alerts as OCSF Detection Findings (class 2004), most recently seen first."""
    runtime = state.runtime()
    with runtime.ready_store().transaction() as session:
        lines = [checked_line(alert_to_ocsf(a), f"alert {a.id}") for a in _alerts(session, site, since)]
    _write(lines, output)
    target = output or "standard output"
    click.echo(
        f"exported {len(lines)} alerts as OCSF {OCSF_VERSION} Detection Findings to {target}", err=True
    )


def _alerts(session: Session, site: str | None, since: datetime | None) -> Iterator[Alert]:
    """Every matching alert, read page by page in one transaction."""
    offset = 0
    while True:
        page = list_alerts(session, AlertFilter(site=site, since=since, limit=PAGE, offset=offset))
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _write(lines: list[str], output: Path | None) -> None:
    """Every line has been validated before anything is written; a file is replaced only by the
    whole export."""
    text = "".join(f"{line}\n" for line in lines)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text)


@ocsf_group.command("records")
@click.option("--since", callback=time_ns, metavar="ISO", help="From this time (default: the last hour).")
@click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
@click.option("--limit", type=IntegerRange(1, 10_000_000), default=100_000, show_default=True)
@output_option
@click.pass_obj
def export_records(
    state: CliState, since: int | None, until: int | None, limit: int, output: Path | None
) -> None:
    """Protocol records (writes, programs, controls ... kept in full) as OCSF Network Activity
    (class 4001) with Plantwarden's ICS extension, oldest first."""
    now = time.time_ns()
    request = RecordQuery(
        kind="protocol",
        start_ns=since if since is not None else now - 3600 * 1_000_000_000,
        end_ns=until if until is not None else now + 1,
        limit=limit,
    )
    batch = query(state.runtime().records(), request)
    events = protocol_records_to_ocsf(batch)
    lines = [checked_line(event, f"record {number}") for number, event in enumerate(events, 1)]
    _write(lines, output)
    target = output or "standard output"
    click.echo(f"exported {len(lines)} records as OCSF {OCSF_VERSION} Network Activity to {target}", err=True)
