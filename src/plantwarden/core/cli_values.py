"""Click callbacks for the values that commands of every layer take: times (ISO 8601, kept to the
nanosecond), durations (15m, 1h, 7d, 1w), finite decimal numbers, files to write and who acts
(`--by`), with one wording for their errors."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from plantwarden.core.clock import SECOND_NS, iso_nanoseconds
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import ACTOR_LENGTH, INTEGER, NUMBER, one_line

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*")
_F = TypeVar("_F", bound=Callable[..., Any])


def actor_name(_ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> str | None:
    """Who acts (`--by NAME`, kept with what they did and in the audit log): 1-120 printable
    characters on one line, the narrowest column that keeps it; refused rather than cut (or, on
    PostgreSQL, failing inside the database)."""
    if value is None:
        return None
    flag = param.opts[0] if param is not None and param.opts else "--by"
    try:
        return one_line(value, f"who acts ({flag})", ACTOR_LENGTH, empty=f"{flag} names nobody: it is empty")
    except InvalidInput as error:
        raise click.BadParameter(error.message) from None


def time_ns(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> int | None:
    """An optional ISO 8601 time (UTC unless it carries an offset, up to nine fractional digits) as
    nanoseconds since the epoch."""
    if value is None:
        return None
    try:
        return iso_nanoseconds(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} {error}") from None


def duration_ns(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> int | None:
    """An optional duration such as 90s, 15m, 1h, 2d or 1w, in nanoseconds."""
    if value is None:
        return None
    found = _DURATION.fullmatch(value)
    if found is None or int(found.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a duration (a number and s, m, h, d or w: 15m, 1h, 7d)")
    return int(found.group(1)) * _UNITS[found.group(2)] * SECOND_NS


STANDARD_OUTPUT = "-"
"""The name that means standard output for an option of a command that writes there by default."""


def output_file_option(*names: str, stdout: bool = False, **attributes: Any) -> Callable[[_F], _F]:
    """A `click.option` naming a file to write, refused before the command does its work when it
    cannot be written (a directory, where the empty path is '.'; in no directory; a name the
    system refuses; no permission), where the write would fail afterwards. Commands write it with
    `core.files.atomic_write` or `atomic_open`: whole or not at all. With `stdout` (a command that
    writes standard output without the option), `-` names standard output too (the command gets
    None, as without the option); without, `-` is refused: `-o -` never means a file named '-'."""
    callback = output_file_or_stdout if stdout else output_file
    return click.option(
        *names, type=click.Path(dir_okay=False, path_type=Path), callback=callback, **attributes
    )


def output_file_or_stdout(
    ctx: click.Context | None, param: click.Parameter | None, value: Path | None
) -> Path | None:
    """An optional file to write where `-` (or no value) is standard output: None."""
    if value is not None and str(value) == STANDARD_OUTPUT:
        return None
    return output_file(ctx, param, value)


def output_file(
    _ctx: click.Context | None, _param: click.Parameter | None, value: Path | None
) -> Path | None:
    """An optional file to write, `output_file_option`'s callback."""
    if value is None:
        return None
    if str(value) == STANDARD_OUTPUT:
        raise click.BadParameter("'-' (standard output) is not taken here: name a file")
    try:
        problem = _unwritable(value)
    except OSError as error:  # a name too long, a loop of links...
        problem = f"cannot be written ({error.strerror})"
    if problem:
        raise click.BadParameter(f"{str(value)[:200]!r} {problem}")
    return value


def _unwritable(path: Path) -> str:
    """Why `path` cannot be written as a file, or ''. A file is written beside its target and
    renamed over it (`core.files`), so the directory must let a file be made in it too."""
    if path.is_dir():  # the empty path is '.'
        return "is a directory"
    if not path.parent.is_dir():
        return "is not in an existing directory"
    if path.exists() and not os.access(path, os.W_OK):
        return "cannot be written (permission denied)"
    if path.exists() and not path.is_file():  # a FIFO or a device: written in place
        return ""
    if not os.access(Path(os.path.realpath(path)).parent, os.W_OK | os.X_OK):
        return "cannot be written (permission denied in its directory, where the new file is made)"
    return ""


def none_at_site(what: str, site: str | None, sites: Sequence[str]) -> str:
    """What an empty listing says ("no alerts"), naming the sites that have some when `site` has
    none at all: a misspelt `--site` would otherwise read as a quiet site."""
    if site is None or site in sites:
        return f"no {what}"
    if not sites:
        return f"no {what}: no site has any yet"
    return f"no {what} at site {site!r}: the sites with {what} are {', '.join(sites)}"


def given_flag(ctx: click.Context, name: str) -> str | None:
    """The flag of option `name` as the user gave it (`--no-x` for a switch turned off), or None
    when it keeps its default: for refusing an option that changes nothing with the others."""
    if ctx.get_parameter_source(name) in (None, click.core.ParameterSource.DEFAULT):
        return None
    option = next(param for param in ctx.command.params if param.name == name)
    off = isinstance(option, click.Option) and option.secondary_opts and ctx.params[name] is False
    return option.secondary_opts[0] if off else option.opts[0]


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` of finite numbers in ASCII digits: click's takes 'nan' (no comparison with
    a bound is true of it), 'inf' when there is no upper bound, and '١٢' (float() reads other
    scripts' digits), which then reach `time.sleep` or a rate as a traceback or a silent stop."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not NUMBER.fullmatch(value.strip()):
            self.fail(f"{value!r} is not a number", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Integer(click.types.IntParamType):
    """click's integer of ASCII digits with an optional '-': int(), and so click's INT, also reads
    '1_000' and other scripts' digits ('١٢' is 12), which settings and the server's inputs refuse;
    one rule for every integer the product reads."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not INTEGER.fullmatch(value.strip()):
            self.fail(f"{value!r} is not an integer", param, ctx)
        return super().convert(value, param, ctx)


class IntegerRange(click.IntRange):
    """`click.IntRange` of ASCII digits, as `Integer`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(Integer().convert(value, param, ctx), param, ctx)
