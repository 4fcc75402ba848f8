"""`plantwarden zones suggest`: a plant.yaml draft from a site's stored inventory.

The command is mounted into the `zones` group by the command line's root; it reads the store,
writes the draft to a file (never over an existing one without --force) or to stdout, and says
on stderr what it suggested.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange, output_file_option
from plantwarden.core.errors import Conflict, InvalidInput
from plantwarden.core.files import atomic_write
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.inventory.queries import AssetFilter, EdgeFilter, list_assets, list_edges
from plantwarden.inventory.zoning import (
    LOCAL_NETWORKS,
    ObservedEdge,
    ObservedHost,
    Suggestion,
    SuggestOptions,
    plural,
    suggest_plant,
)
from plantwarden.zones.plant.model import Network

READ_LIMIT = 10_000_000
"""Every asset and edge of the site (list_assets and list_edges page; a site has far fewer)."""


@click.command("suggest")
@click.option("--site", required=True, help="The site whose stored inventory is grouped.")
@click.option(
    "--prefix",
    type=IntegerRange(8, 32),
    default=24,
    show_default=True,
    help="IPv4 prefix length of a zone.",
)
@click.option(
    "--ipv6-prefix",
    type=IntegerRange(16, 128),
    default=64,
    show_default=True,
    help="IPv6 prefix of a zone.",
)
@click.option(
    "--min-confidence",
    type=FiniteFloatRange(0.0, 1.0),
    default=0.6,
    show_default=True,
    help="Role confidence from which a host is declared as an asset.",
)
@click.option(
    "--local",
    "local_networks",
    multiple=True,
    metavar="NETWORK",
    help="A network of the plant besides the private, loopback and link-local ones (repeatable).",
)
@output_file_option("-o", "--output", stdout=True, help="Write the draft here, not stdout (-: stdout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.pass_obj
def suggest_command(
    provider: RuntimeProvider,
    site: str,
    prefix: int,
    ipv6_prefix: int,
    min_confidence: float,
    local_networks: tuple[str, ...],
    output: Path | None,
    force: bool,
) -> None:
    """Suggest a plant.yaml draft from the observed communication graph of a site: zones by
    subnet at the Purdue level of their hosts' roles, conduits between the zones that talk, and
    the assets; review it before using it."""
    if output is not None and output.exists() and not force:
        raise Conflict(f"{output} exists: choose another file or add --force to overwrite it")
    options = SuggestOptions(
        ipv4_prefix=prefix,
        ipv6_prefix=ipv6_prefix,
        min_confidence=min_confidence,
        local_networks=LOCAL_NETWORKS + tuple(_network(text) for text in local_networks),
    )
    with provider.runtime().ready_store().transaction() as session:
        hosts = [ObservedHost.of(a) for a in list_assets(session, AssetFilter(site=site, limit=READ_LIMIT))]
        found = list_edges(session, EdgeFilter(site=site, limit=READ_LIMIT))
        edges = [ObservedEdge.of(item.edge) for item in found]
    suggestion = suggest_plant(site, hosts, edges, options)
    if output is None:
        click.echo(suggestion.text, nl=False)
    else:
        atomic_write(output, suggestion.text, exclusive=not force)  # the file may appear meanwhile
    click.echo(_summary(site, suggestion, output), err=True)


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidInput(f"--local {text!r} is not a network; write it as 203.0.113.0/24") from None


def _summary(site: str, suggestion: Suggestion, output: Path | None) -> str:
    model = suggestion.model.sites[0]
    where = f"wrote it to {output}" if output is not None else "printed it"
    return (
        f"suggested {plural(len(model.zones), 'zone')}, {plural(len(model.conduits), 'conduit')}"
        f" ({plural(suggestion.channels, 'channel')}) and {plural(len(model.assets), 'asset')} for site"
        f" {site}; {where}. Review it before use: nothing is enforced until you adopt it."
    )
