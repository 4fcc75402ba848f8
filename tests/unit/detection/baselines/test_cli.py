"""`plantwarden baseline` on a real data directory: learn and check stored records, status,
show, protect, accept, reset."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core.auditlog import AuditEntry
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.runtime import Runtime
from plantwarden.detection.baselines.cli import baseline_group
from tests.conftest import make_settings
from tests.unit.detection.baselines.batches import records, write
from tests.unit.detection.plant_models import SITE


class Provider:
    def __init__(self, data_dir: Path) -> None:
        self.held = Runtime(make_settings(data_dir))

    def runtime(self) -> Runtime:
        return self.held


def run(provider: Provider, *args: str) -> str:
    result = CliRunner().invoke(baseline_group, list(args), obj=provider, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_learn_protect_check_accept_and_reset_from_the_command_line(data_dir: Path) -> None:
    provider = Provider(data_dir)
    runtime = provider.runtime()
    with RecordWriter(runtime.records(), "test") as writer:
        writer.write(records([{}, write()]))
        writer.write(records([{"ts": records([{}])["ts"][0] + 7200 * 10**9, "function": 43}]))
    when = ["--since", "2026-11-25T10:00:00Z", "--until", "2026-11-25T12:00:01Z"]
    assert "2 records; 0 deviations" in run(provider, "learn", "--site", SITE, *when)
    status = json.loads(run(provider, "status", "--format", "json"))
    assert {(s["scope"], s["state"]) for s in status} == {
        ("site", "learning"),
        ("asset:10.2.0.10", "learning"),
    }
    assert run(provider, "status", "--site", "plant-x") == (
        f"no baseline scopes at site 'plant-x': the sites with baseline scopes are {SITE}\n"
    )
    assert "protecting now: asset:10.2.0.10, site" in run(provider, "protect", "--site", SITE)
    assert "written_range" in run(provider, "show", "asset:10.2.0.10", "--site", SITE)
    later = ["--since", "2026-11-25T13:00:00Z", "--until", "2026-11-25T14:00:00Z"]
    learnt = run(provider, "learn", "--site", SITE, *later)  # counts the deviation, raises nothing
    assert "1 records; 1 deviations (not raised" in learnt and "reported as alerts" not in learnt
    assert "1 deviations found, none raised as alerts" in learnt
    assert "1 deviations raised as alerts" in run(provider, "check", "--site", SITE, *later)
    with runtime.ready_store().transaction() as session:
        (alert,) = session.scalars(select(Alert))
        assert alert.rule_id == "pw-baseline-new-service"
    accepted = run(provider, "accept", str(alert.id), "--reason", "vendor diagnostics", "--actor", "ana")
    assert "accepted into asset:10.2.0.10: service" in accepted
    assert "facts forgotten" in run(provider, "reset", "asset:10.2.0.10", "--site", SITE, "--by", "sam")
    with runtime.ready_store().transaction() as session:
        actions = list(session.execute(select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.seq)))
        assert [tuple(a) for a in actions] == [
            ("baseline.protected", f"host:{getpass.getuser()}"),  # who runs the command, by default
            ("baseline.accepted", "ana"),  # --actor: the older spelling of --by
            ("baseline.reset", "sam"),
        ]
    runtime.close()


def test_a_site_that_is_no_site_name_or_has_no_baselines_is_refused_and_not_audited(data_dir: Path) -> None:
    provider = Provider(data_dir)
    runtime = provider.runtime()
    runner = CliRunner()
    for command in (["protect"], ["reset", "asset:10.2.0.10"], ["show", "site"], ["status"]):
        result = runner.invoke(baseline_group, [*command, "--site", "bad site!"], obj=provider)
        assert result.exit_code == 2 and "'bad site!' is not a site name" in result.output, result.output
    result = runner.invoke(baseline_group, ["protect", "--site", "nowhere"], obj=provider)
    assert result.exit_code != 0 and "site nowhere has no baselines" in str(result.exception)
    with RecordWriter(runtime.records(), "test") as writer:
        writer.write(records([{}]))
    run(
        provider,
        "learn",
        "--site",
        SITE,
        "--since",
        "2026-11-25T10:00:00Z",
        "--until",
        "2026-11-25T12:00:01Z",
    )
    run(provider, "protect", "--site", SITE)
    assert "nothing (no learning scope)" in run(provider, "protect", "--site", SITE)  # a no-op
    with runtime.ready_store().transaction() as session:
        assert list(session.scalars(select(AuditEntry.action))) == ["baseline.protected"]
    runtime.close()


def deviation_alert(provider: Provider) -> str:
    """The id of the alert a protected baseline raises for a new Modbus function (43)."""
    with RecordWriter(provider.runtime().records(), "test") as writer:
        writer.write(records([{}, write()]))
        writer.write(records([{"ts": records([{}])["ts"][0] + 7200 * 10**9, "function": 43}]))
    learnt, later = (
        ("2026-11-25T10:00:00Z", "2026-11-25T12:00:01Z"),
        ("2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z"),
    )
    run(provider, "learn", "--site", SITE, "--since", learnt[0], "--until", learnt[1])
    run(provider, "protect", "--site", SITE)
    run(provider, "check", "--site", SITE, "--since", later[0], "--until", later[1])
    with provider.runtime().ready_store().transaction() as session:
        return str(session.scalars(select(Alert.id)).one())


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("vendor diagnostics " + "z" * 978 + "TAIL", "the reason has 1001 characters; at most 1000"),
        (
            "vendor diagnostics\nservice       10.1.0.9|10.2.0.10|502     {}  x9  accepted by admin: fake",
            "holds a line break, a tab or another control or format character",
        ),
        ("vendor \u202ediagnostics", "holds a line break"),
        (" \t ", "the reason is empty"),
    ],
)
def test_a_reason_that_would_be_cut_or_forge_lines_of_baseline_show_is_refused(
    data_dir: Path, reason: str, problem: str
) -> None:
    provider = Provider(data_dir)
    alert = deviation_alert(provider)
    refused = CliRunner().invoke(baseline_group, ["accept", alert, "--reason", reason], obj=provider)
    assert isinstance(refused.exception, InvalidInput), refused.output
    assert problem in refused.exception.message
    assert "accepted by" not in run(provider, "show", "asset:10.2.0.10", "--site", SITE)
    longest = "vendor diagnostics " + "z" * 980 + "E"
    run(provider, "accept", alert, "--reason", f"{longest}  ", "--by", "ana")
    (line,) = [
        x for x in run(provider, "show", "asset:10.2.0.10", "--site", SITE).splitlines() if "accepted" in x
    ]
    assert line.endswith(f"  accepted by ana: {longest}")
    provider.runtime().close()


def test_the_readme_shows_each_baseline_command_with_its_required_options() -> None:
    readme = (Path(__file__).parents[4] / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"`(?:plantwarden )?baseline ([\w\\|]+)([^`]*)`", readme)
    assert {command for name, _ in shown for command in name.split("\\|")} >= set(baseline_group.commands)
    for name, rest in shown:
        for command in name.split("\\|"):
            required = [
                p.opts[0]
                for p in baseline_group.commands[command].params
                if p.required and p.opts[0][:2] == "--"
            ]
            assert all(option in rest for option in required), f"baseline {name}{rest} lacks {required}"
