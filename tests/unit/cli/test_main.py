"""The root command loads its commands lazily: its table must say what the commands say."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

import plantwarden
from plantwarden.cli.lazy import LazyGroup, deferred, load
from plantwarden.cli.main import COMMANDS, DETECTOR_FACTORIES, cli, main
from plantwarden.core.cli_values import FiniteFloatRange, Integer, IntegerRange, actor_name
from plantwarden.monitoring.detector_keys import (
    BASELINE_FACTORY,
    PROCESS_FACTORY,
    RULES_FACTORY,
    ZONE_CHECK_FACTORY,
)

HEAVY = ("sqlalchemy", "alembic", "numpy", "pydantic", "fastapi", "psycopg")


def root_command(name: str) -> click.Command:
    command = cli.get_command(click.Context(cli, info_name="plantwarden"), name)
    assert command is not None, name
    return command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_names_its_command_and_its_short_help(name: str) -> None:
    command = root_command(name)
    assert command.name == name
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=1_000_000)


def test_the_table_covers_every_command_there_is() -> None:
    defined = {id(command): command for command in _module_level_commands()}
    reachable = {id(command) for command in _walk(cli, click.Context(cli, info_name="plantwarden"))}
    unmounted = sorted(f"{c.callback.__module__}:{c.name}" for i, c in defined.items() if i not in reachable)
    assert unmounted == [], "commands that no path from the root reaches (add them to COMMANDS)"


def test_the_root_lists_its_commands_as_click_would_without_importing_them() -> None:
    table_only = LazyGroup(name="plantwarden", lazy_commands=COMMANDS)
    loaded = click.Group(name="plantwarden", commands={name: root_command(name) for name in COMMANDS})
    for width in (50, 80, 120):
        assert _listing(table_only, width) == _listing(loaded, width)
    assert table_only.commands == {}


def test_an_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    result = CliRunner().invoke(cli, ["simm"])
    assert result.exit_code == 2
    assert "No such command 'simm'. Did you mean 'sim'?" in result.output


def test_the_subcommands_main_adds_are_in_their_groups() -> None:
    for name, entry in COMMANDS.items():
        group = root_command(name)
        for target in entry.subcommands:
            loaded = load(target)
            for command in loaded if isinstance(loaded, tuple) else (loaded,):
                assert isinstance(group, click.Group) and group.commands[command.name] is command


def test_root_help_imports_no_command() -> None:
    modules = _modules_after("--help")
    assert {target.partition(":")[0] for target, *_ in COMMANDS.values()}.isdisjoint(modules)
    assert not [name for name in HEAVY if name in modules]


def test_a_command_imports_its_own_module_and_not_the_others() -> None:
    modules = _modules_after("alerts", "--help")
    imported = {entry.target.partition(":")[0] for entry in COMMANDS.values()} & modules
    assert imported == {"plantwarden.alerts.cli"}
    assert not any(name.startswith("plantwarden.detection") for name in modules)


def test_the_sensors_detector_factories_are_imported_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = click.Context(cli, info_name="plantwarden")
    assert cli.callback is not None
    with ctx:
        ctx.invoke(cli.callback, config_file=None, data_dir=None, assignments=())
    assert set(DETECTOR_FACTORIES) <= set(ctx.meta)
    module_name, _, name = DETECTOR_FACTORIES[RULES_FACTORY].partition(":")
    monkeypatch.setattr(importlib.import_module(module_name), name, lambda *a, **k: (a, k))
    assert ctx.meta[RULES_FACTORY](1, 2, site="x") == ((1, 2), {"site": "x"})


@pytest.mark.parametrize(
    ("key", "args", "kwargs"),
    [  # as monitoring/detectors.py calls them
        (ZONE_CHECK_FACTORY, 4, {"flush_seconds": 60.0}),
        (RULES_FACTORY, 5, {}),
        (BASELINE_FACTORY, 4, {"learning_ns": 1}),
        (PROCESS_FACTORY, 3, {"learn_ns": 1, "trained_by": "sensor s", "plant": None}),
    ],
)
def test_each_detector_factory_takes_what_the_sensor_passes(
    key: str, args: int, kwargs: dict[str, Any]
) -> None:
    factory = load(DETECTOR_FACTORIES[key])
    inspect.signature(factory).bind(*range(args), **kwargs)
    assert deferred(DETECTOR_FACTORIES[key]).__name__ == factory.__name__


def _listing(group: click.Group, width: int) -> str:
    formatter = click.HelpFormatter(width=width)
    group.format_commands(click.Context(group, info_name="plantwarden"), formatter)
    return formatter.getvalue()


def test_every_number_option_reads_ascii_digits_only() -> None:
    """No option of any command takes click's own INT, IntRange, FLOAT or FloatRange, which read
    '1_000', '١٢' and (the decimal ones) 'nan': `core.cli_values` has the types that refuse them."""
    ours = (Integer, IntegerRange, FiniteFloatRange)
    theirs = (click.types.IntParamType, click.types.FloatParamType)
    found = [
        f"{command.name} {param.name}: {type(param.type).__name__}"
        for command in _walk(cli, click.Context(cli, info_name="plantwarden"))
        for param in command.params
        if isinstance(param.type, theirs) and not isinstance(param.type, ours)
    ]
    assert found == []


def test_every_option_naming_who_acts_is_checked_as_one() -> None:
    """`--by` and `--actor` are kept with what was done (alerts, facts, grants, quarantines: 120
    characters) and in the audit log: each goes through `core.cli_values.actor_name`, so none is
    cut, breaks a listing's lines or fails inside PostgreSQL."""
    found = [
        (command.name, param.name, param.callback)
        for command in _walk(cli, click.Context(cli, info_name="plantwarden"))
        for param in command.params
        if isinstance(param, click.Option) and {"--by", "--actor"} & set(param.opts)
    ]
    assert len(found) >= 20
    assert [(command, name) for command, name, callback in found if callback is not actor_name] == []


def _walk(command: click.Command, ctx: click.Context) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            child = command.get_command(ctx, name)
            assert child is not None, name
            yield from _walk(child, click.Context(child, parent=ctx, info_name=name))


def _module_level_commands() -> Iterator[click.Command]:
    """Every click command a module of the package defines at its top (modules named *cli*)."""
    for module in pkgutil.walk_packages(plantwarden.__path__, "plantwarden."):
        short = module.name.rpartition(".")[2]
        if "cli" not in short and not module.name.startswith("plantwarden.cli."):
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, click.Command):
                yield value


def _modules_after(*args: str) -> set[str]:
    """The modules a fresh interpreter has imported once the root command ran with ARGS."""
    script = (
        "import json, sys\n"
        "from plantwarden.cli.main import cli\n"
        "try:\n"
        "    cli.main(sys.argv[1:], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _plantwarden(*args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plantwarden", *args], stderr=subprocess.PIPE, **popen)


def test_a_file_the_system_refuses_is_a_clear_error_not_a_traceback(tmp_path: Any) -> None:
    """An OSError no option check saw coming (here a folder name over the file system's limit)."""
    process = _plantwarden("agent", "status", "--dir", str(tmp_path / ("x" * 300)), stdout=subprocess.PIPE)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.decode().startswith("error [os_error]: File name too long: '"), err.decode()
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (EOFError("Compressed file ended before the end-of-stream marker was reached"), 1, "truncated_input"),
        (KeyboardInterrupt(), 130, "aborted"),
    ],
)
def test_a_reader_that_meets_the_end_of_its_data_is_an_error_not_an_abort(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    said: str,
) -> None:
    """click takes every EOFError for Ctrl-D at a prompt ("aborted", status 130): one raised by a
    reader of a cut file (gzip, tar, a socket) is an error saying so; Ctrl-C stays an abort."""

    @click.command("reads-a-cut-file")
    def reads() -> None:
        raise raised

    cli.add_command(reads)
    monkeypatch.setattr(sys, "argv", ["plantwarden", "reads-a-cut-file"])
    try:
        with pytest.raises(SystemExit) as ended:
            main()
    finally:
        cli.commands.pop("reads-a-cut-file", None)
    assert ended.value.code == code
    assert said in capsys.readouterr().err
