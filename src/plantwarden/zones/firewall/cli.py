"""`plantwarden firewall`: render the router's ruleset from plant.yaml, and check a ruleset for drift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click

from plantwarden.core.cli_values import output_file_option
from plantwarden.core.files import atomic_write
from plantwarden.zones.firewall.drift import drift, exported_document, running_document
from plantwarden.zones.firewall.errors import CannotRender
from plantwarden.zones.firewall.render import VARIANTS, Variant, render_ruleset
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import require_one_address_space

PLANT = click.option(
    "--plant", "plant_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="plant.yaml"
)
SITE = click.option("--site", "site_id", help="The site (needed when the plant has several).")
VARIANT = click.option("--variant", type=click.Choice(VARIANTS), default="normal", show_default=True)
ZONE = click.option("--zone", help="The zone an island or fail-closed ruleset is for.")


def _site(plant_file: Path, site_id: str | None) -> SiteModel:
    site = _named_site(plant_file, site_id)
    require_one_address_space(site, "The router's ruleset")  # before a ruleset is read for drift
    return site


def _named_site(plant_file: Path, site_id: str | None) -> SiteModel:
    plant = load_plant(plant_file)
    if site_id is None:
        if len(plant.sites) != 1:
            names = ", ".join(site.id for site in plant.sites)
            raise CannotRender(f"{plant_file} declares several sites ({names}): choose one with --site")
        return plant.sites[0]
    try:
        return plant.site(site_id)
    except KeyError:
        raise CannotRender(f"{plant_file} declares no site {site_id!r}") from None


@click.group("firewall")
def firewall_group() -> None:
    """nftables rulesets compiled from the plant model, and their drift."""


@firewall_group.command("render")
@PLANT
@SITE
@VARIANT
@ZONE
@output_file_option("-o", "--output", stdout=True, help="Write here (default, or -: stdout).")
def render(
    plant_file: Path, site_id: str | None, variant: str, zone: str | None, output: Path | None
) -> None:
    """Write the `nft -f` script of the router between the site's zones."""
    script = render_ruleset(_site(plant_file, site_id), variant=cast(Variant, variant), zone=zone)
    if output is None:
        click.echo(script, nl=False)
    else:
        atomic_write(output, script)
        click.echo(
            f"wrote {output} (check it with `nft -c -f {output}`, load it with `nft -f {output}`)", err=True
        )


@firewall_group.command("drift")
@PLANT
@SITE
@VARIANT
@ZONE
@click.option("--running", is_flag=True, help="Read the ruleset loaded in the kernel (needs root).")
@click.option("--netns", help="With --running: the network namespace of the router.")
@click.option(
    "--file",
    "exported",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An exported ruleset: `TZ=UTC nft -j list table inet plantwarden` (or the text listing).",
)
def drift_command(
    plant_file: Path,
    site_id: str | None,
    variant: str,
    zone: str | None,
    running: bool,
    netns: str | None,
    exported: Path | None,
) -> None:
    """Compare a running or exported ruleset with the model; exit 1 when they differ."""
    if running == (exported is not None):
        raise click.UsageError("give exactly one of --running and --file")
    if netns is not None and not running:
        raise click.UsageError("--netns goes with --running")
    site = _site(plant_file, site_id)
    document: Any = running_document(netns=netns) if running else exported_document(cast(Path, exported))
    differences = drift(site, document, variant=cast(Variant, variant), zone=zone, at=datetime.now(UTC))
    if not differences:
        click.echo(f"no drift: the ruleset is what site {site.id}'s model compiles to ({variant})")
        return
    click.echo(f"{len(differences)} difference(s) from site {site.id}'s model ({variant}):")
    for difference in differences:
        click.echo(f"  {difference}")
    raise SystemExit(1)
