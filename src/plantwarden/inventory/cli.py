"""`plantwarden assets`: list, show and export the stored inventory."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import click

from plantwarden.core.cli_values import IntegerRange, none_at_site, output_file_option
from plantwarden.core.files import atomic_write
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.inventory.queries import (
    AssetFilter,
    EdgeFilter,
    asset_sites,
    get_asset,
    list_assets,
    list_edges,
)
from plantwarden.inventory.schemas import AddressOut, AssetOut, CommunicationOut

EXPORT_LIMIT = 1_000_000
CSV_COLUMNS = (
    "id", "site", "segment", "zone", "ips", "macs", "role", "role_confidence", "vendor",
    "product", "firmware", "client_protocols", "server_protocols", "first_seen", "last_seen",
)  # fmt: skip


@click.group("assets")
def assets_group() -> None:
    """The asset inventory: what is on the plant network."""


@assets_group.command("list")
@click.option("--site", help="Only this site.")
@click.option("--role", help="Only assets of this role (plc, hmi, ...).")
@click.option("--limit", type=IntegerRange(1, 100_000), default=500, show_default=True)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_command(
    provider: RuntimeProvider, site: str | None, role: str | None, limit: int, output: str
) -> None:
    """List assets by site and first seen."""
    with provider.runtime().ready_store().transaction() as session:
        assets = [
            AssetOut.of(a) for a in list_assets(session, AssetFilter(site=site, role=role, limit=limit))
        ]
        empty = none_at_site("assets", site, asset_sites(session)) if not assets else ""
    if output == "json":
        click.echo(json.dumps([a.model_dump(mode="json") for a in assets], indent=2))
        return
    if empty:
        click.echo(empty)
        return
    click.echo(f"{'id':36}  {'site':12}  {'ip':15}  {'mac':17}  {'role':24}  {'last seen (UTC)':19}  vendor")
    for a in assets:
        ip = a.ips[0].address if a.ips else "-"
        mac = a.macs[0].address if a.macs else "-"
        vendor = printable(_value(a, "vendor") or _value(a, "device_vendor") or "-")
        seen = a.last_seen.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{a.id!s:36}  {a.site:12}  {ip:15}  {mac:17}  {a.role or '-':24}  {seen:19}  {vendor}")


@assets_group.command("show")
@click.argument("asset")
@click.option("--site", help="The site, when the IP is current in several.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def show_command(provider: RuntimeProvider, asset: str, site: str | None, output: str) -> None:
    """One asset (by id or current IP): facts, role, addresses, protocols and its communications."""
    with provider.runtime().ready_store().transaction() as session:
        found = AssetOut.of(get_asset(session, asset, site=site))
        edges = [
            CommunicationOut.of(e) for e in list_edges(session, EdgeFilter(asset=found.id, limit=10_000))
        ]
    if output == "json":
        body = found.model_dump(mode="json") | {"communications": [e.model_dump(mode="json") for e in edges]}
        click.echo(json.dumps(body, indent=2))
        return
    for line in _describe(found, edges):
        click.echo(printable(line))


@assets_group.command("export")
@click.option("--site", help="Only this site.")
@click.option("--format", "output", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@output_file_option("-o", "--output-file", stdout=True, help="Write here, not stdout (-: stdout).")
@click.pass_obj
def export_command(
    provider: RuntimeProvider, site: str | None, output: str, output_file: Path | None
) -> None:
    """Every asset: JSON with all facts, or CSV with one row per asset."""
    with provider.runtime().ready_store().transaction() as session:
        assets = [AssetOut.of(a) for a in list_assets(session, AssetFilter(site=site, limit=EXPORT_LIMIT))]
    text = _json(assets) if output == "json" else _csv(assets)
    if output_file is None:
        click.echo(text, nl=False)
        return
    atomic_write(output_file, text)
    click.echo(f"wrote {len(assets)} assets to {output_file}", err=True)


def _value(asset: AssetOut, attribute: str) -> str:
    fact = asset.facts.get(attribute)
    return fact.value if fact else ""


def _describe(a: AssetOut, edges: list[CommunicationOut]) -> list[str]:
    def addresses(items: list[AddressOut]) -> str:
        return ", ".join(f"{i.address} ({i.segment})" for i in items) or "-"

    def stamp(value: datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S")

    lines = [
        f"asset {a.id}",
        f"  site {a.site}, segment {a.segment}, zone {a.zone or '-'}",
        f"  seen {stamp(a.first_seen)} .. {stamp(a.last_seen)} UTC; sources {', '.join(a.sources) or '-'}",
        f"  ips: {addresses(list(a.ips))}",
        f"  past ips: {addresses(list(a.past_ips))}",
        f"  macs: {addresses(list(a.macs))}",
    ]
    if a.role is None:
        lines.append("  role: not inferred")
    else:
        lines.append(f"  role: {a.role} (confidence {a.role_confidence:.2f})")
        lines += [f"    - {reason}" for reason in a.role_evidence]
    lines.append(f"  protocols as client: {', '.join(a.client_protocols) or '-'}")
    lines.append(f"  protocols as server: {', '.join(a.server_protocols) or '-'}")
    lines.append("  facts:" if a.facts else "  facts: none")
    for name, fact in a.facts.items():
        lines.append(
            f"    {name} = {fact.value}  [{fact.source}, {fact.confidence:.2f},"
            f" {stamp(fact.first_seen)} .. {stamp(fact.last_seen)}]"
        )
        for old in a.history.get(name, []):
            lines.append(
                f"      was {old.value}  [{old.source}, {old.confidence:.2f},"
                f" {stamp(old.first_seen)} .. {stamp(old.last_seen)}]"
            )
    lines.append("  communications:" if edges else "  communications: none")
    for e in edges:
        lines.append(
            f"    {e.client} -> {e.server} {e.protocol}: {e.requests} requests, {e.flows} flows,"
            f" {e.packets} packets, {e.bytes} bytes; {', '.join(e.operations) or '-'}"
        )
        for f in e.functions:
            period = f"{f.period_ns / 1e9:.3f} s" if f.period_ns is not None else "-"
            median = f"{f.response_median_ns / 1e6:.1f} ms" if f.response_median_ns is not None else "-"
            p95 = f"{f.response_p95_ns / 1e6:.1f} ms" if f.response_p95_ns is not None else "-"
            lines.append(
                f"      function {f.function}: {f.requests} requests, {f.unanswered} unanswered,"
                f" {f.one_way} one-way, {f.exceptions} exceptions, response median {median}, p95 {p95},"
                f" period {period}"
            )
    return lines


def _json(assets: list[AssetOut]) -> str:
    return json.dumps([a.model_dump(mode="json") for a in assets], indent=2) + "\n"


CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Device-reported text as a terminal may show it: control characters (escape sequences a
    device could plant in its vendor or firmware string) replaced by U+FFFD."""
    return CONTROLS.sub("\ufffd", text)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula: device-reported text (a vendor or
firmware string from the network) starting so is written with a leading apostrophe."""


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv(assets: list[AssetOut]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in assets:
        writer.writerow(
            _cell(value) for value in [
                a.id, a.site, a.segment, a.zone or "",
                " ".join(i.address for i in a.ips), " ".join(m.address for m in a.macs),
                a.role or "", "" if a.role_confidence is None else a.role_confidence,
                _value(a, "vendor") or _value(a, "device_vendor"), _value(a, "product_name"),
                _value(a, "firmware"), " ".join(a.client_protocols), " ".join(a.server_protocols),
                a.first_seen.isoformat(), a.last_seen.isoformat(),
            ]
        )  # fmt: skip
    return buffer.getvalue()
