"""`plantwarden quarantine` on a real data directory: add, list, release, and refusals that say
what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from plantwarden.core.auditlog import AuditEntry
from plantwarden.core.clock import FixedClock
from plantwarden.core.errors import Conflict, InvalidInput, NotFound
from plantwarden.core.runtime import Runtime
from plantwarden.incidents.cli import quarantine_group
from tests.conftest import make_settings


class Provider:
    def __init__(self, data_dir: Path, clock: FixedClock) -> None:
        self.held = Runtime(make_settings(data_dir), clock)

    def runtime(self) -> Runtime:
        return self.held


UNPRINTABLE = "holds a line break, a tab or another control or format character"


@pytest.fixture
def provider(data_dir: Path, clock: FixedClock) -> Provider:
    return Provider(data_dir, clock)


def invoke(provider: Provider, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(quarantine_group, list(args), obj=provider, catch_exceptions=code == 0)
    assert result.exit_code == code, result.output
    return result


def test_add_list_release(provider: Provider) -> None:
    added = invoke(provider, "add", "--site", "plant-a", "--subject", "address:10.1.1.20", "--reason",
                   "beaconing", "--actor", "sam")  # fmt: skip
    assert added.output == "quarantined address:10.1.1.20 at site plant-a: beaconing\n"
    invoke(provider, "add", "--site", "plant-a", "--asset", "plc-1", "--reason", "tampered")
    listed = json.loads(invoke(provider, "list", "--site", "plant-a", "--format", "json").output)
    assert [(r["kind"], r["target"], r["by"]) for r in listed] == [
        ("address", "10.1.1.20", "sam"),
        ("asset", "plc-1", "cli"),
    ]
    table = invoke(provider, "list").output
    assert "address:10.1.1.20" in table and "sam: beaconing" in table
    released = invoke(provider, "release", "--site", "plant-a", "--asset", "plc-1", "--reason", "reflashed")
    assert released.output == "released asset:plc-1 at site plant-a\n"
    assert "asset:plc-1" not in invoke(provider, "list").output
    assert invoke(provider, "list", "--site", "plant-b").output == "nothing is quarantined at site plant-b\n"
    with provider.runtime().ready_store().transaction() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert actions.count("incidents.quarantine.added") == 2
    assert actions.count("incidents.quarantine.released") == 1


def test_refusals_say_what_was_wrong(provider: Provider) -> None:
    both = invoke(
        provider, "add", "--site", "s", "--subject", "user:x", "--asset", "a", "--reason", "r", code=2
    )
    assert "give --subject KIND:ID or --asset ASSET" in both.output
    neither = invoke(provider, "add", "--site", "s", "--reason", "r", code=2)
    assert "one of them" in neither.output
    invoke(provider, "add", "--site", "plant-a", "--subject", "cert_role:engineer", "--reason", "r")
    with pytest.raises(Conflict, match="already quarantined"):
        invoke(
            provider, "add", "--site", "plant-a", "--subject", "cert_role:engineer", "--reason", "r", code=1
        )
    with pytest.raises(NotFound, match="not quarantined at site plant-a"):
        invoke(provider, "release", "--site", "plant-a", "--asset", "plc-1", "--reason", "r", code=1)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            ["--reason", "rtl \u202etxt.exe"],
            "holds a line break, a tab or another control or format character",
        ),
        (
            ["--reason", "beaconing \x1b[2K\rplant-b  cert_role:admin"],
            "holds a line break, a tab or another control or format character",
        ),
        (["--reason", "y" * 1001], "the reason has 1001 characters; at most 1000"),
    ],
)
def test_a_reason_that_would_be_cut_or_break_the_list_is_refused(
    provider: Provider, options: list[str], problem: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        invoke(provider, "add", "--site", "plant-a", "--subject", "address:10.1.1.20", *options, code=1)
    assert problem in refused.value.message
    assert invoke(provider, "list").output == "nothing is quarantined\n"


@pytest.mark.parametrize(
    ("actor", "problem"),
    [("a" * 121, "has 121 characters; at most 120"), ("sam\nroot", "'sam\\nroot' holds a line break")],
)
def test_an_actor_that_would_be_cut_or_break_the_list_is_a_usage_error(
    provider: Provider, actor: str, problem: str
) -> None:
    refused = invoke(provider, "add", "--site", "plant-a", "--subject", "address:10.1.1.20", "--reason",
                     "beaconing", "--actor", actor, code=2)  # fmt: skip
    assert f"who acts (--actor) {problem}" in refused.output, refused.output
    assert invoke(provider, "list").output == "nothing is quarantined\n"


def test_a_reason_on_lines_is_kept_on_one_and_the_longest_actor_whole(provider: Provider) -> None:
    actor = "host:" + "a" * 114 + "z"
    invoke(provider, "add", "--site", "plant-a", "--subject", "address:10.1.1.20", "--reason",
           "beaconing\nto 203.0.113.9\tevery 60 s", "--actor", actor)  # fmt: skip
    (line,) = invoke(provider, "list").output.splitlines()
    assert line.endswith(f"  {actor}: beaconing to 203.0.113.9 every 60 s")
