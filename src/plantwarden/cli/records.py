"""`plantwarden records`: look into the records plane (partitions, queries, retention)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import click

from plantwarden.cli.state import CliState
from plantwarden.core.cli_values import IntegerRange, time_ns
from plantwarden.core.clock import SECOND_NS, from_nanoseconds, iso_time
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import RecordQuery, enforce_retention, query
from plantwarden.core.records.schema import ADDRESS_DTYPE, KINDS, Operation, Protocol, address, address_text
from plantwarden.core.records.settings import RecordsSettings


def _address(_ctx: click.Context, _param: click.Parameter, value: str | None) -> bytes | None:
    try:
        return address(value) if value else None
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None


def _enum(kind: type[Protocol] | type[Operation]) -> click.Choice[str]:
    return click.Choice([member.name.lower() for member in kind], case_sensitive=False)


@click.group("records")
def records_group() -> None:
    """Protocol records, read aggregates, flows and telemetry."""


@records_group.command("partitions")
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="Only this kind.")
@click.pass_obj
def partitions_command(state: CliState, kind: str | None) -> None:
    """Every partition: kind, writer, interval (UTC) and size."""
    backend = state.runtime().records()
    refs = backend.partitions(kind)
    if not refs:
        click.echo("no partitions yet")
    for ref in refs:
        start = from_nanoseconds(ref.start_ns).strftime("%Y-%m-%d %H:%M:%S")
        seconds = (ref.end_ns - ref.start_ns) // SECOND_NS
        click.echo(f"{ref.kind:22} {ref.writer:16} {start} +{seconds}s {backend.size(ref):>12,} bytes")


@records_group.command("query")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--since", callback=time_ns, metavar="ISO", help="From this time (default: the last hour).")
@click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
@click.option("--asset", callback=_address, help="Source or destination address.")
@click.option("--protocol", type=_enum(Protocol), help="Only this protocol.")
@click.option("--operation", type=_enum(Operation), help="Only this operation.")
@click.option("--device", help="Telemetry: only this device.")
@click.option("--variable", help="Telemetry: only this variable.")
@click.option("--limit", type=IntegerRange(1, 1_000_000), default=100, show_default=True)
@click.option("--oldest-first", is_flag=True, help="Oldest records first (default: newest first).")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def query_command(
    state: CliState,
    kind: str,
    since: int | None,
    until: int | None,
    asset: bytes | None,
    protocol: str | None,
    operation: str | None,
    device: str | None,
    variable: str | None,
    limit: int,
    oldest_first: bool,
    output: str,
) -> None:
    """Records of one kind, newest first, filtered."""
    now = time.time_ns()
    request = RecordQuery(
        kind=kind,
        start_ns=since if since is not None else now - 3600 * SECOND_NS,
        end_ns=until if until is not None else now + 1,
        asset=asset,
        protocol=Protocol[protocol.upper()] if protocol else None,
        operation=Operation[operation.upper()] if operation else None,
        device=device,
        variable=variable,
        limit=limit,
        newest_first=not oldest_first,
    )
    rows = readable_rows(query(state.runtime().records(), request))
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
    elif not rows:
        click.echo("no records")
    else:
        _table(rows)


def readable_rows(batch: RecordBatch) -> list[dict[str, Any]]:
    """Rows with times in ISO 8601, addresses as text, and protocol and operation names."""
    addresses = [c.name for c in batch.kind.columns if c.dtype == ADDRESS_DTYPE]
    rows = []
    for row in batch.rows():
        for name in addresses:
            row[name] = address_text(row[name])
        for name in ("ts", "ts_end", "first_ts", "last_ts"):
            if name in row:
                row[name] = iso_time(row[name])
        if "protocol" in row:
            row["protocol"] = Protocol(row["protocol"]).name.lower()
        if "operation" in row:
            row["operation"] = Operation(row["operation"]).name.lower()
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return rows


def _table(rows: list[dict[str, Any]]) -> None:
    names = [n for n in rows[0] if n not in {"site", "transport"}]
    widths = {n: max(len(n), *(len(str(r[n])) for r in rows)) for n in names}
    click.echo("  ".join(n.ljust(widths[n]) for n in names))
    for row in rows:
        click.echo("  ".join(str(row[n]).ljust(widths[n]) for n in names))


@records_group.command("retention")
@click.pass_obj
def retention_command(state: CliState) -> None:
    """Drop partitions past the retention age or beyond the size limit, now."""
    runtime = state.runtime()
    settings = runtime.settings[RecordsSettings]
    report = enforce_retention(
        runtime.records(),
        now_ns=time.time_ns(),
        max_age_ns=int(settings.retention_days * 86_400 * SECOND_NS),
        max_bytes=settings.max_bytes,
    )
    for ref in report.dropped:
        click.echo(f"dropped {ref.kind} {ref.writer} {ref.location}")
    click.echo(
        f"{len(report.dropped)} partitions dropped, {report.skipped_open} open ones kept, "
        f"{report.kept_bytes:,} bytes kept"
    )
