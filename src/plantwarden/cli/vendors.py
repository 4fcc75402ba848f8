"""`plantwarden vendors`: the IEEE MAC address registries behind vendor names (show, look up, update)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import click

from plantwarden.cli.state import CliState
from plantwarden.core.config import CoreSettings
from plantwarden.core.files import atomic_write
from plantwarden.protocols.identity import vendors
from plantwarden.protocols.identity.vendors import RegistryError, VendorTable


def _folder(state: CliState) -> Path:
    return state.settings()[CoreSettings].data_path / "vendors"


def _table(state: CliState) -> VendorTable:
    try:
        return vendors.load(_folder(state))
    except RegistryError as error:
        raise click.ClickException(str(error)) from None


@click.group("vendors")
def vendors_group() -> None:
    """MAC address vendors: the IEEE registries shipped, and newer ones you add."""


@vendors_group.command("show")
@click.pass_obj
def show_command(state: CliState) -> None:
    """Each registry: its publication date, assignments, and where it comes from."""
    table = _table(state)
    shipped = vendors.shipped().registries
    for name, registry in sorted(table.registries.items()):
        origin = "shipped" if registry == shipped.get(name) else f"updated ({_folder(state)})"
        count = len(registry.assignments)
        click.echo(
            f"{name:5} published {registry.published}  {count:>6,} assignments  {origin}: {registry.source}"
        )


@vendors_group.command("lookup")
@click.argument("macs", nargs=-1, required=True)
@click.pass_obj
def lookup_command(state: CliState, macs: tuple[str, ...]) -> None:
    """The vendor of each MAC address (aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff)."""
    table = _table(state)
    for mac in macs:
        try:
            vendor = table.lookup(mac)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="MACS") from None
        click.echo(
            f"{mac}  {vendor if vendor is not None else '(unknown: not assigned, or locally administered)'}"
        )


@vendors_group.command("update")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--published",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The registry's publication date (default: the file's modification date).",
)
@click.option("--force", is_flag=True, help="Take a registry older than the one in use.")
@click.pass_obj
def update_command(state: CliState, files: tuple[Path, ...], published: datetime | None, force: bool) -> None:
    """Use newer IEEE registry files (oui.csv, mam.csv, oui36.csv, iab.csv or oui.txt from
    https://standards-oui.ieee.org/) in place of the shipped ones."""
    table = _table(state)
    newer = []
    for path in files:
        when = published.date() if published else _modified(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            found = vendors.parse_registry_file(
                text, when, f"{path.name} added {datetime.now(UTC).date().isoformat()}"
            )
        except RegistryError as error:
            raise click.ClickException(str(error)) from None
        for registry in found:
            current = table.registries.get(registry.name)
            if current is not None and registry.published < current.published and not force:
                raise click.ClickException(
                    f"{path.name}: {registry.name} published {registry.published} is older than the one "
                    f"in use ({current.published}); pass --force to take it anyway"
                )
            newer.append(registry)
    stored = _folder(state)
    kept = vendors.load(stored).registries if (stored / vendors.INDEX_FILE).exists() else {}
    updated = VendorTable([*{**_only_updated(kept), **{r.name: r for r in newer}}.values()])
    store_table(updated, stored)
    for registry in newer:
        click.echo(
            f"{registry.name}: {len(registry.assignments):,} assignments, published {registry.published}"
        )


def store_table(table: VendorTable, folder: Path) -> None:
    """Store `table` in `folder` so that a failure at any point (a full disk, Ctrl-C) leaves the
    last whole table in use: the table under a name of its own content first, then the index that
    names it (the one switch from the old pair to the new), then the tables no index names."""
    data, registries = table.stored()
    name = f"ieee-registries-{hashlib.sha256(data).hexdigest()[:16]}.csv.gz"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / name, data)
    atomic_write(
        folder / vendors.INDEX_FILE, json.dumps({"table": name, "registries": registries}, indent=2) + "\n"
    )
    for old in folder.glob("ieee-registries*.csv.gz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _only_updated(registries: dict[str, vendors.Registry]) -> dict[str, vendors.Registry]:
    shipped = vendors.shipped().registries
    return {name: r for name, r in registries.items() if r != shipped.get(name)}


def _modified(path: Path) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
