"""Options and parsers shared by several commands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click

from plantwarden.core.cli_values import output_file_option
from plantwarden.core.clock import in_utc

output_option = output_file_option(
    "-o", "--output", stdout=True, help="Write to FILE (default, or -: standard output)."
)


format_option = click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under their headers in aligned columns, for the terminal."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    )


def parse_moment(value: str) -> datetime:
    """ISO 8601, UTC unless it carries an offset, as an aware UTC time; a clear error otherwise
    (also for a time with no UTC form, such as 0001-01-01T00:00+01:00)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-26T08:00:00Z)") from None
    try:
        return in_utc(moment)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def moment(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> datetime | None:
    """Click callback: an optional ISO 8601 time as an aware datetime."""
    return None if value is None else parse_moment(value)
