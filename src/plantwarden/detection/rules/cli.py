"""`plantwarden rules`: list, validate and test rule files; run the rules over stored records."""

from __future__ import annotations

from pathlib import Path

import click

from plantwarden.core.cli_values import duration_ns, time_ns
from plantwarden.core.clock import iso_time
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.detection.cli import time_range
from plantwarden.detection.rules.alerts import raise_detections
from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.examples import run_examples
from plantwarden.detection.rules.format import RuleFileError, read_rule_file
from plantwarden.detection.rules.loader import PACK, RuleSet
from plantwarden.detection.rules.providers import PlantMaintenance, roles_from_inventory
from plantwarden.detection.rules.setpoints import PlantSafeRanges
from plantwarden.detection.rules.stored import check_stored
from plantwarden.zones.applied import current_model
from plantwarden.zones.plant.load import load_plant

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of rule files (default: the built-in pack).",
)


@click.group("rules")
def rules_group() -> None:
    """Detection rules (YAML, close to Sigma): list, validate, test, check stored records."""


def _load(directory: Path | None) -> RuleSet:
    rules = RuleSet.load(directory or PACK)
    for problem in rules.refused:
        click.echo(f"refused: {problem}", err=True)
    return rules


@rules_group.command("list")
@_DIR
def list_command(directory: Path | None) -> None:
    """The rules of a directory: id, severity, kind, techniques, title."""
    rules = _load(directory)
    for rule in sorted(rules.rules, key=lambda r: r.id):
        counted = " count" if rule.count else ""
        techniques = ",".join(rule.techniques) or "-"
        severity = rule.severity.name.lower()
        click.echo(f"{rule.id:<40} {severity:<9}{rule.kind.name}{counted:<7} {techniques:<16} {rule.title}")
    click.echo(f"{len(rules.rules)} rules, {len(rules.refused)} problems in refused files")
    if rules.refused:
        raise SystemExit(1)


@rules_group.command("validate")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def validate_command(files: tuple[Path, ...]) -> None:
    """Check rule files; each problem as file:line:column: reason (exit 1 if any)."""
    bad = 0
    for path in files:
        try:
            found = read_rule_file(path)
        except RuleFileError as error:
            bad += 1
            for problem in error.problems:
                click.echo(str(problem), err=True)
            continue
        click.echo(f"{path}: {len(found)} rules ok ({', '.join(r.id for r in found)})")
    if bad:
        raise SystemExit(1)


@rules_group.command("test")
@_DIR
@click.option("--verbose", "-v", is_flag=True, help="Print passing examples too.")
def test_command(directory: Path | None, verbose: bool) -> None:
    """Run every rule's examples: each positive must fire, each negative must not."""
    rules = _load(directory)
    results = [result for rule in rules.rules for result in run_examples(rule)]
    for result in results:
        if verbose or not result.passed:
            click.echo(str(result))
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed ({len(rules.rules)} rules)")
    if failed or rules.refused:
        raise SystemExit(1)


@rules_group.command("check")
@_DIR
@click.option(
    "--since", callback=time_ns, metavar="ISO", help="From this time (UTC unless an offset is given)."
)
@click.option("--until", callback=time_ns, metavar="ISO", help="Up to this time (default: now).")
@click.option(
    "--last", callback=duration_ns, metavar="DURATION", help="The last 15m, 1h, 7d ... (default: 1h)."
)
@click.option("--site", help="Only records of this site.")
@click.option(
    "--plant",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Maintenance windows from this plant.yaml (default: the applied model).",
)
@click.option("--raise-alerts", "raise_alerts_", is_flag=True, help="Raise an alert per detection.")
@click.pass_obj
def check_command(
    provider: RuntimeProvider,
    directory: Path | None,
    since: int | None,
    until: int | None,
    last: int | None,
    site: str | None,
    plant: Path | None,
    raise_alerts_: bool,
) -> None:
    """Run the rules over stored protocol records, read aggregates and flows."""
    start, end = time_range(since, until, last)
    runtime = provider.runtime()
    rules = RuleSet.load(directory or PACK).usable()
    providers = _providers(runtime, site, plant)
    found = check_stored(runtime.records(), rules.rules, start, end, site=site, providers=providers)
    for detection in found.detections:
        group = " ".join(f"{k}={v}" for k, v in detection.group)
        click.echo(
            f"{iso_time(detection.first_ns)}  {detection.severity.name.lower():<9}{detection.rule.id:<36}"
            f"{detection.site}/{detection.segment} {group} ({detection.count})"
        )
    read = ", ".join(f"{n:,} {kind}" for kind, n in found.records.items())
    click.echo(f"{len(found.detections)} detections in {read or 'no'} records")
    if raise_alerts_ and found.detections:
        with runtime.ready_store().transaction() as session:
            counts = raise_detections(session, runtime.context(), found.detections)
        click.echo(f"alerts: {counts.opened:,} opened, {counts.repeated:,} already open (counted again)")


def _providers(runtime: Runtime, site: str | None, plant: Path | None) -> Providers:
    """Roles from the stored inventory; maintenance windows and safe ranges from the plant file or
    the applied model."""
    with runtime.ready_store().transaction() as session:
        roles = roles_from_inventory(session, site)
        model = load_plant(plant) if plant is not None else current_model(session)
    sites = [s for s in model.sites if site is None or s.id == site] if model is not None else []
    return Providers(
        roles=roles,
        maintenance=PlantMaintenance(sites) if sites else None,
        out_of_range=PlantSafeRanges(sites) if sites else None,
    )
