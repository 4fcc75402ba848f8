"""`plantwarden sensor evidence`: a pcap slice of the packets a sensor keeps in its evidence ring."""

from __future__ import annotations

from pathlib import Path

import click

from plantwarden.capture.evidence import EvidenceRing
from plantwarden.core.cli_values import IntegerRange, output_file_option, time_ns
from plantwarden.core.clock import iso_time
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.monitoring.cli import evidence_directory


@click.command("evidence")
@click.option("--site", default="default", show_default=True, help="The site of the sensor.")
@click.option("--segment", default="default", show_default=True, help="The segment of the sensor.")
@click.option("--since", callback=time_ns, metavar="ISO", help="From this time (default: the oldest kept).")
@click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: the newest).")
@click.option("--host", "hosts", multiple=True, metavar="IP", help="Only packets of this IP (repeatable).")
@click.option("--limit", type=IntegerRange(min=1), help="At most this many packets (the first ones).")
@output_file_option(
    "-o", "--output", required=True, help="The pcap file to write (pcapng when the slice mixes link types)."
)
@click.pass_obj
def evidence_command(
    state: RuntimeProvider,
    site: str,
    segment: str,
    since: int | None,
    until: int | None,
    hosts: tuple[str, ...],
    limit: int | None,
    output: Path,
) -> None:
    """Write the packets the sensor of SITE/SEGMENT kept, in a time window and for some hosts."""
    directory = evidence_directory(state.runtime(), site, segment)
    with EvidenceRing(directory, readonly=True) as ring:
        segments = ring.segments()
        if not segments:
            raise click.ClickException(f"the evidence ring in {directory} holds no packets")
        start = since if since is not None else min(s.first_ns for s in segments)
        end = until if until is not None else max(s.last_ns for s in segments) + 1
        written = ring.write_slice(output, start, end, hosts, limit)
    click.echo(
        f"{written.packets:,} packets ({written.size:,} bytes, {written.format}) from {iso_time(start)} "
        f"to {iso_time(end)} written to {written.path}; sha256 {written.sha256}"
    )
