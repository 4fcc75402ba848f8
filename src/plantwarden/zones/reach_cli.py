"""`plantwarden reach`: what an attacker in a zone can reach by the plant model (plant.yaml)."""

from __future__ import annotations

from pathlib import Path

import click

from plantwarden.core.cli_values import IntegerRange
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import PlantModel, SiteModel
from plantwarden.zones.plant.permits import declared_permits, require_one_address_space
from plantwarden.zones.reach import paths_to_crown_jewels, reachable
from plantwarden.zones.reach.answers import MAX_PATHS
from plantwarden.zones.reach.text import reach_lines, route_lines

PLANT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
VIEW = "as declared in the plant model"

plant_option = click.option(
    "--plant", "plant_file", required=True, type=PLANT_FILE, help="The plant.yaml file."
)
site_option = click.option("--site", "site_id", help="The site (needed when the plant has several).")
paths_option = click.option(
    "--paths",
    "max_paths",
    type=IntegerRange(1, 50),
    default=MAX_PATHS,
    show_default=True,
    help="Shortest paths listed per target.",
)


@click.group("reach")
def reach_group() -> None:
    """What an attacker in a zone can reach, and the paths to the crown jewels."""


@reach_group.command("show")
@plant_option
@click.option("--from", "from_zone", required=True, help="The zone the attacker holds.")
@site_option
@paths_option
def show(plant_file: Path, from_zone: str, site_id: str | None, max_paths: int) -> None:
    """The zones, crown jewels and outside hosts an attacker holding a zone reaches."""
    site = choose_site(load_plant(plant_file), site_id)
    reach = reachable(site, declared_permits(site), from_zone, max_paths)
    for line in reach_lines(reach, VIEW):
        click.echo(line)


@reach_group.command("paths")
@plant_option
@click.option("--to", "asset_id", help="One asset instead of every crown jewel.")
@site_option
@paths_option
def paths(plant_file: Path, asset_id: str | None, site_id: str | None, max_paths: int) -> None:
    """The shortest paths from every zone to the crown jewels of other zones (or to one asset)."""
    site = choose_site(load_plant(plant_file), site_id)
    routes = paths_to_crown_jewels(site, declared_permits(site), asset_id, max_paths)
    for line in route_lines(routes, site.id, VIEW, asset_id):
        click.echo(line)


def choose_site(plant: PlantModel, site_id: str | None) -> SiteModel:
    """The named site, or the only one; a plant of several sites needs --site. A site whose zones
    of different segments share addresses is refused here, before anything is read."""
    site = _named_site(plant, site_id)
    require_one_address_space(site, "Reachability")
    return site


def _named_site(plant: PlantModel, site_id: str | None) -> SiteModel:
    known = ", ".join(site.id for site in plant.sites)
    if site_id is None:
        if len(plant.sites) != 1:
            raise InvalidInput(f"{plant.source} declares several sites ({known}): choose one with --site")
        return plant.sites[0]
    try:
        return plant.site(site_id)
    except KeyError:
        raise NotFound(f"{plant.source} declares no site {site_id!r} (its sites: {known})") from None
