"""`plantwarden reach compare`: reachability in the model, in observed traffic and in the firewall.

Mounted into the `reach` group by the command line's root (it reads the stored inventory, so it
lives above `zones`). Each view is a list of permits over the site of plant.yaml: the model's
channels; the stored communication edges of the site (`inventory.reach_edges`); the firewall's
ruleset read back exactly (`zones.firewall.permits`): the one the model renders to by default,
else the ruleset loaded in the kernel or an exported one. For every zone it prints what the zone
reaches in each view, then every difference in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import click

from plantwarden.core.runtime import RuntimeProvider
from plantwarden.inventory.reach_edges import ObservedView, observed_view
from plantwarden.zones.firewall.drift import exported_document, running_document
from plantwarden.zones.firewall.permits import firewall_permits, listed_permits
from plantwarden.zones.firewall.render import VARIANTS, Variant, compile_ruleset
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit, declared_permits
from plantwarden.zones.reach import (
    Difference,
    HostGraph,
    Reach,
    Target,
    compare_views,
    observed_permits,
    reach_from,
)
from plantwarden.zones.reach.compare import FIREWALL, MODEL, OBSERVED
from plantwarden.zones.reach.text import hops_text
from plantwarden.zones.reach_cli import choose_site, plant_option, site_option


@dataclass(frozen=True, slots=True)
class View:
    """One view: its name, where its permits come from (in words), and the permits."""

    name: str
    source: str
    permits: Sequence[Permit]


@click.command("compare")
@plant_option
@site_option
@click.option("--firewall-running", "running", is_flag=True, help="Read the ruleset loaded in the kernel.")
@click.option("--netns", help="With --firewall-running: the network namespace of the router.")
@click.option(
    "--firewall-file",
    "exported",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An exported ruleset (`TZ=UTC nft -j list table inet plantwarden`, or the text listing).",
)
@click.option(
    "--variant",
    type=click.Choice(VARIANTS),
    default="normal",
    show_default=True,
    help="Without a running or exported ruleset: the variant of the ruleset the model renders to.",
)
@click.option("--zone", help="With --variant island or fail-closed: the zone it is for.")
@click.pass_obj
def compare_command(
    provider: RuntimeProvider,
    plant_file: Path,
    site_id: str | None,
    running: bool,
    netns: str | None,
    exported: Path | None,
    variant: str,
    zone: str | None,
) -> None:
    """What each zone reaches in the model, in the traffic stored for the site, and through the
    firewall, and where the three disagree."""
    if running and exported is not None:
        raise click.UsageError("give at most one of --firewall-running and --firewall-file")
    if netns is not None and not running:
        raise click.UsageError("--netns goes with --firewall-running")
    if (running or exported is not None) and (variant != "normal" or zone is not None):
        raise click.UsageError(
            "--variant and --zone choose the rendered ruleset, not a running or exported one"
        )
    site = choose_site(load_plant(plant_file), site_id)
    with provider.runtime().ready_store().transaction() as session:
        seen = observed_view(session, site)
    views = [
        View(MODEL, f"the channels of {plant_file}", declared_permits(site)),
        View(OBSERVED, _observed_source(site, seen), observed_permits(site, seen.edges)),
        _firewall_view(site, running, netns, exported, cast(Variant, variant), zone),
    ]
    for line in compare_lines(site, views):
        click.echo(line)


def _observed_source(site: SiteModel, seen: ObservedView) -> str:
    text = f"{seen.stored} communication edge(s) stored for site {site.id}"
    return text + (f" (left out: {'; '.join(seen.notes())})" if seen.left_out else "")


def _firewall_view(
    site: SiteModel,
    running: bool,
    netns: str | None,
    exported: Path | None,
    variant: Variant,
    zone: str | None,
) -> View:
    if running:
        where = f" in network namespace {netns}" if netns else ""
        return View(FIREWALL, f"the ruleset loaded{where}", listed_permits(running_document(netns=netns)))
    if exported is not None:
        return View(
            FIREWALL, f"the ruleset exported to {exported}", listed_permits(exported_document(exported))
        )
    ruleset = compile_ruleset(site, variant=variant, zone=zone, table="plantwarden", at=datetime.now(UTC))
    what = variant if zone is None else f"{variant}, zone {zone}"
    return View(FIREWALL, f"the ruleset the model renders to ({what})", firewall_permits(ruleset))


def compare_lines(site: SiteModel, views: Sequence[View]) -> list[str]:
    """Everything `plantwarden reach compare` prints: the sources, each view, the differences in
    what is reached, then the targets every view reaches but some over more hops."""
    lines = [f"site {site.id}: what an attacker holding each zone reaches, in {len(views)} views"]
    lines += [f"  {view.name}: {view.source}" for view in views]
    reaches = {view.name: _reaches(site, view.permits) for view in views}
    for view in views:
        lines += [f"{view.name}:", *(reach_line(reach) for reach in reaches[view.name])]
    found = sorted(compare_views(site, {v.name: v.permits for v in views}), key=_importance)
    texts = [difference_text(d) for d in found if d.unreachable_in != (OBSERVED,)]
    texts += _unseen_lines([d for d in found if d.unreachable_in == (OBSERVED,)])
    texts += hop_lines(site, reaches)
    if not texts:
        return [*lines, "differences: none, the views agree"]
    return [*lines, f"differences ({len(texts)}):", *(f"  {text}" for text in texts)]


def _reaches(site: SiteModel, permits: Sequence[Permit]) -> list[Reach]:
    graph = HostGraph.build(site, permits)
    return [reach_from(graph, zone.id, max_paths=0) for zone in site.zones]


def reach_line(reach: Reach) -> str:
    """The other zones and the crown jewels a zone reaches in one view."""
    jewels = _targets(reach.crown_jewels)
    text = f"  {reach.from_zone} reaches zones: {_targets(reach.zones)}; crown jewels: {jewels}"
    return text + (f"; hosts outside the model: {len(reach.outside)}" if reach.outside else "")


def hop_lines(site: SiteModel, reaches: dict[str, list[Reach]]) -> list[str]:
    """Zones and crown jewels reached in several views, but over more hops in some."""
    lines = []
    for index, zone in enumerate(site.zones):
        hops: dict[tuple[str, str], dict[str, int]] = {}
        for name, per_zone in reaches.items():
            reach = per_zone[index]
            for kind, targets in (("zone", reach.zones), ("crown jewel", reach.crown_jewels)):
                for target in targets:
                    hops.setdefault((kind, target.id), {})[name] = target.hops
        for (kind, target_id), by_view in hops.items():
            if len(set(by_view.values())) > 1:
                ways = [f"in {hops_text(h)} in {name}" for name, h in by_view.items()]
                lines.append(
                    f"{zone.id} reaches the {kind} {target_id} {ways[0]} but {' and '.join(ways[1:])}"
                )
    return lines


def _unseen_lines(differences: Sequence[Difference]) -> list[str]:
    """Reached in every view but observed traffic: one line per zone and views, targets by kind."""
    grouped: dict[tuple[str, tuple[str, ...]], dict[str, list[str]]] = {}
    for d in differences:
        grouped.setdefault((d.from_zone, d.reachable_in), {}).setdefault(d.kind, []).append(d.target)
    return [
        f"{' and '.join(views)} let {zone} reach, but no traffic was seen doing so: "
        + "; ".join(f"{kind}s {', '.join(targets)}" for kind, targets in by_kind.items())
        for (zone, views), by_kind in grouped.items()
    ]


def _targets(targets: Sequence[Target]) -> str:
    return ", ".join(f"{t.id} ({hops_text(t.hops)})" for t in targets) or "none"


def difference_text(difference: Difference) -> str:
    """A difference in words, saying what was seen when traffic is involved."""
    reached, unreached = difference.reachable_in, difference.unreachable_in
    what = f"{difference.from_zone} reach the {difference.kind} {difference.target}"
    if OBSERVED in reached and MODEL in unreached:
        through = FIREWALL in reached
        firewall = "the firewall lets it through too" if through else "the firewall does not let it through"
        return f"traffic was seen that lets {what}, which the model does not allow ({firewall})"
    return str(difference)


def _importance(difference: Difference) -> int:
    """Traffic beyond the model first, then a firewall letting more, then less."""
    reached, unreached = difference.reachable_in, difference.unreachable_in
    if OBSERVED in reached and MODEL in unreached:
        return 0
    if FIREWALL in reached and MODEL in unreached:
        return 1
    return 3 if unreached == (OBSERVED,) else 2
