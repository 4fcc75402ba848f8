"""`plantwarden config`: show the settings in force, write the reference."""

from __future__ import annotations

from pathlib import Path

import click

from plantwarden.cli.catalog import SECTIONS
from plantwarden.cli.state import CliState
from plantwarden.core.cli_values import output_file_option
from plantwarden.core.files import atomic_write
from plantwarden.core.settings import render_reference


@click.group("config")
def config_group() -> None:
    """Inspect settings."""


@config_group.command("show")
@click.pass_obj
def show(state: CliState) -> None:
    """Every setting with its value and where it came from (secrets redacted)."""
    settings = state.settings()
    if settings.config_file is not None:
        click.echo(f"# configuration file: {settings.config_file}")
    width = max(len(d.key) for d in settings.declared)
    for declaration in settings.declared:
        value = settings.display(declaration.key)
        source = settings.sources[declaration.key]
        click.echo(f"{declaration.key.ljust(width)} = {value}  # {source}")


@config_group.command("reference")
@output_file_option("--output", "-o", stdout=True, help="Write to this file instead of stdout (-: stdout).")
def reference(output: Path | None) -> None:
    """The settings reference in Markdown (docs/settings.md is generated with this)."""
    text = render_reference(SECTIONS)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text)
        click.echo(f"wrote {output}", err=True)  # standard output is for the reference only
