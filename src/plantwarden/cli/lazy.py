"""A command group that imports a command only when it is asked for (click's "lazily loading
subcommands" pattern).

Every `plantwarden` process is one command, and the demo starts about ten of them: importing all
forty command modules (SQLAlchemy, alembic, numpy, FastAPI...) to run one cost seconds each time.
The group holds a table: name -> where the command lives (`"module:attribute"`) and its short help,
so that listing the commands (`plantwarden --help`) imports none of them. A test imports every
entry and checks the table against the real commands (tests/unit/cli/test_main.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a command of the root lives, and what the root's help says of it."""

    target: str
    """`"module:attribute"` of the click command."""
    short_help: str
    """The command's `get_short_help_str()` (its docstring's first sentence), copied here."""
    subcommands: tuple[str, ...] = ()
    """`"module:attribute"` of commands (or tuples of commands) to add to the group when it loads:
    those of a package above the group's own, which the group's module may not import."""


def load(target: str) -> Any:
    """The object `"module:attribute"` names, importing its module."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def deferred(target: str) -> Callable[..., Any]:
    """A function that, when called, imports the function `target` names and calls it with the same
    arguments (so the signature that applies is the target's own)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return load(target)(*args, **kwargs)

    call.__name__ = call.__qualname__ = target.rpartition(":")[2]
    call.__doc__ = f"Imports and calls {target}."
    return call


class LazyGroup(click.Group):
    """A `click.Group` whose commands are imported on first use from a table of `LazyCommand`."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy_commands.get(cmd_name)
        if entry is not None and cmd_name not in self.commands:
            self.add_command(_load_command(entry), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as error:  # suggest among every command, not the loaded
            raise click.exceptions.NoSuchCommand(
                error.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As `click.Group.format_commands`, with the short help of the table for the commands not
        loaded (a plain command carrying that help shortens it as the real one would)."""
        rows = [(name, self._listed(name)) for name in self.list_commands(ctx)]
        rows = [(name, command) for name, command in rows if not command.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def _listed(self, name: str) -> click.Command:
        if name in self.commands:
            return self.commands[name]
        return click.Command(name, help=self.lazy_commands[name].short_help)


def _load_command(entry: LazyCommand) -> click.Command:
    command = load(entry.target)
    if not isinstance(command, click.Command):
        raise TypeError(f"{entry.target} is not a click command")
    if not entry.subcommands:
        return command
    if not isinstance(command, click.Group):
        raise TypeError(f"{entry.target} has subcommands to add but is not a group")
    for target in entry.subcommands:
        for subcommand in _commands(load(target)):
            command.add_command(subcommand)
    return command


def _commands(loaded: click.Command | Sequence[click.Command]) -> Sequence[click.Command]:
    return (loaded,) if isinstance(loaded, click.Command) else loaded
