"""Commands of the plant model: sites and their network segments."""

from __future__ import annotations

import click

from plantwarden.core.runtime import RuntimeProvider
from plantwarden.zones import services


@click.group("site")
def site_group() -> None:
    """Sites and their network segments."""


@site_group.command("add")
@click.argument("site_id")
@click.argument("name")
@click.pass_obj
def add_site(provider: RuntimeProvider, site_id: str, name: str) -> None:
    """Add a site (with its `default` network segment)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        site = services.create_site(session, runtime.context(), site_id, name)
        click.echo(f"added site {site.id} ({site.name})")


@site_group.command("list")
@click.pass_obj
def list_sites(provider: RuntimeProvider) -> None:
    """List sites and their network segments."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        sites = services.list_sites(session)
        if not sites:
            click.echo("no sites yet: add one with `plantwarden site add ID NAME`")
        for site in sites:
            segments = ", ".join(segment.name for segment in site.segments)
            click.echo(f"{site.id}\t{site.name}\tsegments: {segments}")


@site_group.command("add-segment")
@click.argument("site_id")
@click.argument("name")
@click.option("--description", default="", help="What the segment is.")
@click.pass_obj
def add_segment(provider: RuntimeProvider, site_id: str, name: str, description: str) -> None:
    """Add a network segment to a site."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        segment = services.add_segment(session, runtime.context(), site_id, name, description)
        click.echo(f"added segment {segment.name} to site {site_id}")
