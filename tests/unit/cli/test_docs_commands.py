"""Every `plantwarden` command line in the README and docs/ names commands and options that exist.

A renamed option or a moved command that the docs still show sends an engineer to a usage error;
this test walks each documented line through the real command tree. Placeholders (`SITE`,
`<demo dir>`), optional parts in brackets and alternatives (`render|drift`, `table|json`) are read
as a reader would: brackets dropped, each alternative of a command checked.
"""

from __future__ import annotations

import re
import shlex

import click
import pytest

from plantwarden.cli.main import cli
from tests.docs_support import DOCUMENTS, command_lines

_SHELL_OPERATORS = re.compile(r"^(\||\|\||&&|;|&|\d?>.*|<.*)$")
_PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>")
_ELLIPSIS = ("...", "…")


def _option(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _walk(command: click.Command, path: str, tokens: list[str]) -> list[str]:
    """What is wrong with `tokens` given to `command` (named `path`): unknown commands and options."""
    ctx = click.Context(command, info_name=path)
    help_names = ctx.help_option_names
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in _ELLIPSIS or token.endswith(_ELLIPSIS):
            continue
        if token.startswith("-") and token != "-":
            names = token.split("=", 1)[0].split("|")
            if any(name in help_names for name in names):
                return []
            problems = []
            for name in names:
                option = _option(command, name)
                if option is None:
                    problems.append(f"`{path}` has no option {name}")
                elif not option.is_flag and not option.count and "=" not in token:
                    index += option.nargs
            if problems:
                return problems
            continue
        if isinstance(command, click.Group):
            problems = []
            for name in token.split("|"):
                sub = command.get_command(ctx, name)
                if sub is None:
                    problems.append(f"`{path}` has no command {name!r}")
                else:
                    problems.extend(_walk(sub, f"{path} {name}", tokens[index:]))
            return problems
    return []


def problems_of(line: str) -> list[str]:
    """What is wrong with one documented command line (the text after `plantwarden`)."""
    text = re.sub(r"[\[\]]", " ", _PLACEHOLDER.sub("X", line))
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as error:
        return [f"a shell cannot split it ({error})"]
    for index, token in enumerate(tokens):
        if _SHELL_OPERATORS.match(token):
            tokens = tokens[:index]
            break
    return _walk(cli, "plantwarden", tokens)


def _is_prose(text: str) -> bool:
    """Whether inline code that starts with a command's name is prose rather than a command line
    (`user alice holds no grant`): for a group, the next word is neither a command nor an option."""
    words = text.split()
    group = cli.get_command(click.Context(cli), words[0])
    if not isinstance(group, click.Group) or words[1].startswith("-"):
        return False
    return all(group.get_command(click.Context(group), name) is None for name in words[1].split("|"))


ROOT_COMMANDS = frozenset(cli.list_commands(click.Context(cli)))
MENTIONS = [
    mention
    for document in DOCUMENTS
    for mention in command_lines(document, bare=ROOT_COMMANDS)
    if not (mention.bare and _is_prose(mention.text))
]


def test_the_docs_show_many_command_lines() -> None:
    """The extraction finds what the docs hold (a broken reader would make the check below vacuous)."""
    assert len(MENTIONS) > 400
    assert {mention.document.name for mention in MENTIONS} >= {"README.md", "sensor.md", "detection.md"}


def test_every_documented_command_line_exists() -> None:
    wrong = [
        f"{m.where}: {p}   [plantwarden {m.text.strip()}]" for m in MENTIONS for p in problems_of(m.text)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sensor run --no-such-option", "`plantwarden sensor run` has no option --no-such-option"),
        ("sensro run", "`plantwarden` has no command 'sensro'"),
        ("firewall render|drfit", "`plantwarden firewall` has no command 'drfit'"),
        ("--data-dir D sensor run --pcap X --bogus=1", "`plantwarden sensor run` has no option --bogus"),
        ("detect evaluate --dataset skab --predictions-out F --nope", "no option --nope"),
        ("user add 'alice", "a shell cannot split it"),
    ],
)
def test_the_check_catches_a_wrong_line(line: str, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(line)), problems_of(line)


@pytest.mark.parametrize(
    "line",
    [
        "--data-dir <demo dir> telemetry query --site riverside",
        "assets list [--site S] [--role R] [--format table|json]",
        "telemetry push - --site plant-a --format jsonl < samples.jsonl",
        "firewall render|drift --help",
        "sensor run --pcap capture.pcap  # a comment --not-an-option",
        "detect evaluate --dataset=skab PATH | tee out.txt --not-ours",
    ],
)
def test_the_check_reads_lines_as_a_reader_does(line: str) -> None:
    assert problems_of(line) == []


def test_prose_that_starts_with_a_command_name_is_not_a_command_line() -> None:
    assert _is_prose("user alice holds no grant covering zone cell-2")
    assert not _is_prose("user add alice --role admin")
    assert not _is_prose("sensor --no-such-option")
    assert not _is_prose("backup /srv/backups/plant.tar.gz")  # not a group: its words are arguments
