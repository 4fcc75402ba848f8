"""`plantwarden plant`: validate, show, diff and apply plant.yaml; its schema; what was applied."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plantwarden.core.auditlog import AuditLog, AuditSettings
from plantwarden.core.cli_values import IntegerRange, actor_name
from plantwarden.core.context import host_actor
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.zones import applied
from plantwarden.zones.plant.diff import diff_models
from plantwarden.zones.plant.load import PlantFileError, load_plant, load_plant_bytes
from plantwarden.zones.plant.model import DAYS, Channel, PlantModel, SiteModel, Window
from plantwarden.zones.plant.schema import schema_text

plant_file = click.argument("file", type=click.Path(path_type=Path, dir_okay=False))


def _load(file: Path) -> PlantModel:
    try:
        return load_plant(file)
    except PlantFileError as error:
        click.echo(str(error), err=True)
        count = len(error.problems)
        raise click.exceptions.Exit(1 if count else 2) from None


@click.group("plant")
def plant_group() -> None:
    """The plant model as code (plant.yaml): zones, conduits, assets, rights."""


@plant_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def validate(files: tuple[Path, ...]) -> None:
    """Check plant files; every problem is printed as FILE:LINE:COLUMN: PATH: WHAT IS WRONG."""
    failed = 0
    for file in files:
        try:
            model = load_plant(file)
        except PlantFileError as error:
            click.echo(str(error), err=True)
            failed += 1
            continue
        sites = ", ".join(f"{s.id} ({len(s.zones)} zones, {len(s.conduits)} conduits)" for s in model.sites)
        click.echo(f"{file}: valid, version {model.version[:12]}: {sites}")
    if failed:
        raise click.exceptions.Exit(1)


@plant_group.command("show")
@plant_file
@click.option("--site", help="Only this site.")
def show(file: Path, site: str | None) -> None:
    """Print the model: zones with level, target security level and subnets; conduits and channels."""
    model = _load(file)
    known = [entry.id for entry in model.sites]
    if site is not None and site not in known:  # as `zones check --site` says it
        its = ", ".join(known) or "none"
        raise click.BadParameter(f"the plant has no site {site!r} (its sites: {its})", param_hint="--site")
    click.echo(f"{file}  version {model.version[:12]}")
    for entry in model.sites:
        if site is None or entry.id == site:
            _show_site(entry)


def _show_site(site: SiteModel) -> None:
    click.echo(f"\nsite {site.id} ({site.name}), time zone {site.timezone}")
    click.echo("  zones:")
    for zone in site.zones:
        members = sum(1 for asset in site.assets if asset.zone == zone.id)
        subnets = ", ".join(str(s) for s in zone.subnets) or "(assets only)"
        click.echo(
            f"    {zone.id:<20} level {zone.purdue_level:g}  {zone.security_level}  {subnets}"
            f"  {members} assets"
        )
    click.echo("  conduits:")
    for conduit in site.conduits:
        click.echo(f"    {conduit.id}: {' <-> '.join(conduit.zones)}  {conduit.security_level}")
        for channel in conduit.channels:
            click.echo("      " + _channel_text(channel))
    for name, window in site.windows.items():
        click.echo(f"  window {name}: {_window_text(window)}")
    click.echo(f"  {len(site.assets)} assets, {len(site.rights)} rights, {len(site.bindings)} bindings")


def _window_text(window: Window) -> str:
    days = ",".join(DAYS[day] for day in window.days)
    return f"{days} {window.start // 60:02}:{window.start % 60:02}-{window.end // 60:02}:{window.end % 60:02}"


def _channel_text(channel: Channel) -> str:
    ports = ",".join(str(p) for p in channel.ports)
    text = f"{channel.id}: {'+'.join(channel.initiators)} -> {'+'.join(channel.responders)}"
    text += f" {channel.protocol} {channel.transport}/{ports} [{', '.join(sorted(channel.operations))}]"
    if channel.clients:
        text += f" clients {', '.join(channel.clients)}"
    if channel.servers:
        text += f" servers {', '.join(channel.servers)}"
    if channel.maintenance:
        text += f" program/control in {', '.join(channel.maintenance)}"
    if channel.schedule:
        text += f" open in {', '.join(channel.schedule)}"
    if channel.encrypted:
        text += " encrypted"
    return text


@plant_group.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def diff(provider: RuntimeProvider, old: Path, new: Path | None) -> None:
    """What changes from OLD to NEW; with one file, from the applied model to that file.

    Exits 0 when nothing changes, 1 when something does (like diff(1))."""
    if new is None:
        target = _load(old)
        runtime = provider.runtime()
        with runtime.ready_store().transaction() as session:
            before = applied.current_model(session)
        if before is None:
            click.echo("no plant model is applied yet: everything in the file is new")
            raise click.exceptions.Exit(1)
    else:
        before, target = _load(old), _load(new)
    changes = diff_models(before, target)
    for change in changes:
        click.echo(str(change))
    if not changes:
        click.echo(f"no change (version {target.version[:12]})")
    raise click.exceptions.Exit(1 if changes else 0)


@plant_group.command("apply")
@plant_file
@click.option("--by", "by", callback=actor_name, help="Who applies (recorded); default: host:<login name>.")
@click.pass_obj
def apply(provider: RuntimeProvider, file: Path, by: str | None) -> None:
    """Check FILE and make it the plant model in force (recorded with its SHA-256 and who applied it)."""
    runtime = provider.runtime()
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}") from None
    try:
        load_plant_bytes(raw, str(file))
    except PlantFileError as error:
        click.echo(str(error), err=True)
        raise click.exceptions.Exit(1) from None
    audit = AuditLog.open(runtime.core, runtime.settings[AuditSettings])
    with runtime.ready_store().transaction() as session:
        result = applied.apply_plant(session, runtime.context(host_actor(by)), raw, str(file), audit=audit)
    if result.unchanged:
        click.echo(f"version {result.version[:12]} is already in force: nothing to do")
        return
    click.echo(f"applied {file}: version {result.version[:12]} (before: {(result.previous or 'none')[:12]})")
    for place in result.created:
        click.echo(f"  created {'segment' if '/' in place else 'site'} {place}")
    click.echo("the policy rebuilds from it: the server picks it up within seconds")


@plant_group.command("history")
@click.option("--limit", default=20, show_default=True, type=IntegerRange(1, 1000))
@click.pass_obj
def history(provider: RuntimeProvider, limit: int) -> None:
    """Applied versions, newest first: when, by whom, the version and the file."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        rows = applied.history(session, limit)
        if not rows:
            click.echo("no plant model applied yet: `plantwarden plant apply plant.yaml`")
        for row in rows:
            click.echo(
                f"{row.applied_at:%Y-%m-%d %H:%M:%S}  {row.version[:12]}  {row.applied_by}  {row.source}"
            )


@plant_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of plant.yaml (for editors: yaml-language-server, VS Code, IntelliJ)."""
    sys.stdout.write(schema_text())
