"""What a script reads: every command with a machine format (`--format json` or `csv`, the OCSF
exports) writes that format alone to standard output, through the real entry point, on a store a
sensor run filled and on one created by the command itself (its first-use log lines, and every
debug line, go to standard error); a command that finds nothing prints an empty document and exits
0; one that fails prints nothing on standard output. `-o -` is standard output wherever standard
output is the default, and refused where a file is required, never a file named '-'."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from plantwarden.cli.main import cli
from tests.helpers import plantwarden

ROOT = Path(__file__).resolve().parents[2]
PLANT = str(ROOT / "examples" / "riverside" / "plant.yaml")
SITE = "riverside"
SINCE = "2000-01-01T00:00:00Z"  # the simulated capture is of 2026-01-05, before the default windows
TRAINING = ("--since", "2026-01-05T09:00:00Z", "--until", "2026-01-05T10:00:00Z")
DEBUG = ("--set", "log_level=DEBUG")

ARGUMENTS: dict[str, tuple[str, ...]] = {
    "assets show": ("127.10.3.11", "--site", SITE),
    "detect check": ("--site", SITE, *TRAINING),  # it reads hour by hour: since 2000 takes 17 s
    "detect models": ("--site", SITE),
    "export ocsf records": ("--since", SINCE),
    "records query": ("flows", "--since", SINCE),
    "telemetry query": ("--site", SITE, "--since", SINCE),
    "zones check": ("--plant", PLANT, "--since", SINCE),
}
"""What a command needs besides its format to list something of the populated store."""

NAMED_THINGS = {"assets show", "detect check"}
"""Commands about one thing the empty store does not hold (an asset, a saved process model): an
error, status 1."""

NOTHING_TO_LIST = {"detect check", "devices telemetry", "events consumers", "pki list"}
"""Commands with nothing to list in the populated store: no anomaly in the telemetry a model learnt,
no device agent, event consumer or certificate."""

INPUT_FORMATS = {"telemetry push"}
"""Commands whose --format is that of the file they read."""

MACHINE_CHOICES = ("json", "csv")


def _walk(command: click.Command, ctx: click.Context, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            child = command.get_command(ctx, name)
            assert child is not None
            yield from _walk(child, click.Context(child, parent=ctx, info_name=name), (*path, name))
    else:
        yield " ".join(path), command


def _machine_formats() -> list[tuple[str, str]]:
    found = []
    for path, command in _walk(cli, click.Context(cli, info_name="plantwarden"), ()):
        for param in command.params:
            if isinstance(param, click.Option) and "--format" in param.opts and path not in INPUT_FORMATS:
                choices = getattr(param.type, "choices", ())
                found += [(path, choice) for choice in MACHINE_CHOICES if choice in choices]
    return found


CASES = [*_machine_formats(), ("export ocsf alerts", "jsonl"), ("export ocsf records", "jsonl")]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the simulated plant: its plant model, a sensor run over its capture (assets,
    alerts, baselines, records), telemetry with a process model trained on it, a quarantine."""
    work = tmp_path_factory.mktemp("populated")
    data = ("--data-dir", str(work / "data"))
    samples = ["ts,device,variable,value"]
    for second in range(0, 3600, 10):
        samples.append(
            f"2026-01-05T09:{second // 60:02d}:{second % 60:02d}Z,pump-1,pressure,{5 + second % 7}"
        )
    (work / "samples.csv").write_text("\n".join(samples) + "\n")
    for argv in (
        ("sim", "generate", "--packets", "3000", "--attacks", "scan,unauthorized-write", "plant.pcap"),
        (*data, "plant", "apply", PLANT, "--by", "alice"),
        (*data, "sensor", "run", "--pcap", "plant.pcap", "--site", SITE, "--plant", PLANT, "--baselines"),
        (*data, "telemetry", "push", "samples.csv", "--site", SITE, "--format", "csv"),
        (*data, "detect", "train", "--site", SITE, *TRAINING),
        (
            *data,
            "quarantine",
            "add",
            "--site",
            SITE,
            "--asset",
            "tank-1",
            "--reason",
            "test",
            "--actor",
            "al",
        ),
    ):
        result = plantwarden(*argv, cwd=work)
        assert result.returncode == 0, (argv, result.stderr)
    return work / "data"


def _parse(text: str, choice: str) -> list[Any]:
    """The document of `text`, as a list of its items (a JSON object is one item)."""
    if choice == "csv":
        header, *rows = list(csv.reader(io.StringIO(text)))
        assert header and all(len(row) == len(header) for row in rows)
        return rows
    if choice == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    document = json.loads(text)
    return document if isinstance(document, list) else [document]


@pytest.mark.parametrize(("command", "choice"), CASES, ids=[f"{c} {f}" for c, f in CASES])
def test_a_populated_store_in_a_machine_format_is_that_format_alone(
    populated: Path, tmp_path: Path, command: str, choice: str
) -> None:
    fmt = () if choice == "jsonl" else ("--format", choice)
    argv = ("--data-dir", str(populated), *DEBUG, *command.split(), *ARGUMENTS.get(command, ()), *fmt)
    result = plantwarden(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (_parse(result.stdout, choice) == []) == (command in NOTHING_TO_LIST), result.stdout[:200]


@pytest.mark.parametrize(("command", "choice"), CASES, ids=[f"{c} {f}" for c, f in CASES])
def test_a_store_created_by_the_command_gives_an_empty_document_or_an_error_alone(
    tmp_path: Path, command: str, choice: str
) -> None:
    fmt = () if choice == "jsonl" else ("--format", choice)
    argv = ("--data-dir", str(tmp_path / "data"), *DEBUG, *command.split(), *ARGUMENTS.get(command, ()), *fmt)
    result = plantwarden(*argv, cwd=tmp_path)
    if command in NAMED_THINGS:
        assert (result.returncode, result.stdout) == (1, ""), result.stderr
        assert result.stderr.splitlines()[-1].startswith(("error", "Error"))
        return
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout, choice) == []
    assert "created the" in result.stderr  # the audit key, the schema: first use


STDOUT_BY_DEFAULT = [
    ("assets", "export"),
    ("export", "ocsf", "alerts"),
    ("config", "reference"),
    ("firewall", "render", "--plant", PLANT, "--site", SITE),
    ("zones", "suggest", "--site", SITE),
]


@pytest.mark.parametrize("argv", STDOUT_BY_DEFAULT, ids=" ".join)
def test_dash_is_standard_output_where_it_is_the_default(
    populated: Path, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    default = plantwarden("--data-dir", str(populated), *argv, cwd=tmp_path)
    dash = plantwarden("--data-dir", str(populated), *argv, "-o", "-", cwd=tmp_path)
    assert default.returncode == dash.returncode == 0, dash.stderr
    assert default.stdout == dash.stdout != ""
    assert list(tmp_path.iterdir()) == []


def test_dash_is_refused_where_a_file_is_required(populated: Path, tmp_path: Path) -> None:
    result = plantwarden(
        "--data-dir", str(populated), "sensor", "evidence", "--site", SITE, "-o", "-", cwd=tmp_path
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert "'-' (standard output) is not taken here: name a file" in result.stderr
    assert list(tmp_path.iterdir()) == []
