"""`plantwarden db`, `backup` and `restore`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from plantwarden import __version__
from plantwarden.cli.state import CliState
from plantwarden.core import backup, migrate
from plantwarden.core.db import describe_url


@click.group("db")
def db_group() -> None:
    """Schema of the domain store."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def upgrade(state: CliState, revision: str) -> None:
    """Migrate the store to the newest schema (take a backup first)."""
    store = state.runtime().store()
    before = migrate.current_revision(store)
    after = migrate.upgrade(store, revision)
    if before == after:
        click.echo(f"{describe_url(store.engine.url)} is already at {after}")
    else:
        click.echo(f"upgraded {describe_url(store.engine.url)}: {before or '(empty)'} -> {after}")


@db_group.command("current")
@click.pass_obj
def current(state: CliState) -> None:
    """The revision the store is at, and the one this version expects."""
    store = state.runtime().store()
    click.echo(f"store:    {describe_url(store.engine.url)}")
    click.echo(f"revision: {migrate.current_revision(store) or '(empty)'}")
    click.echo(f"expected: {migrate.head_revision()}")


def _progress(table: str, rows: int) -> None:
    click.echo(f"  {table}: {rows} rows", err=True)


@click.command("backup")
@click.argument("destination", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def backup_command(state: CliState, destination: Path | None) -> None:
    """Write a backup archive of the store (default: <data_dir>/backups/)."""
    runtime = state.runtime()
    if destination is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        destination = runtime.core.data_path / "backups" / f"plantwarden-{stamp}.tar.gz"
    if destination.exists():
        raise click.ClickException(f"{destination} exists; choose another file (backups never overwrite)")
    manifest = backup.create_backup(runtime.store(), destination, version=__version__, progress=_progress)
    click.echo(
        f"backed up {manifest.total_rows} rows in {len(manifest.tables)} tables "
        f"(revision {manifest.revision}) to {destination}"
    )


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def restore_command(state: CliState, source: Path) -> None:
    """Restore a backup archive into an empty store, then migrate it to the newest schema."""
    manifest = backup.read_manifest(source)
    click.echo(
        f"restoring {manifest.total_rows} rows in {len(manifest.tables)} tables, taken "
        f"{manifest.created_at} by Plantwarden {manifest.plantwarden_version} "
        f"at revision {manifest.revision}",
        err=True,
    )
    store = state.runtime().store()
    backup.restore_backup(store, source, progress=_progress)
    click.echo(f"restored {source} into {describe_url(store.engine.url)} (now at {migrate.head_revision()})")
