"""`plantwarden export ocsf alerts` as an operator runs it: a real process on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plantwarden.alerts import services
from plantwarden.cli.main import cli
from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.exports.validate import validate_event
from tests.conftest import make_settings
from tests.helpers import plantwarden
from tests.output_support import files_of, full_disk_after_commit
from tests.unit.exports.samples import draft

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def data_with_alerts(data_dir: Path) -> Path:
    """A data directory whose store holds three alerts: two at plant-a (one a day old), one at plant-b."""
    store = Store.from_settings(make_settings(data_dir)[CoreSettings])
    migrate.ensure_ready(store)
    ctx = Context(source="test", clock=FixedClock(START))
    with store.transaction() as session:
        services.raise_alert(session, ctx, draft(seen_at=START - timedelta(days=1), title="Old write"))
        services.raise_alert(session, ctx, draft(title="New write"))
        services.raise_alert(
            session, ctx, draft(site="plant-b", title="Program download", techniques=["T0843"])
        )
    store.close()
    return data_dir


def export(data_dir: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    result = plantwarden("--data-dir", str(data_dir), "export", "ocsf", "alerts", *args, cwd=data_dir)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_alerts_export_to_a_file_as_valid_ocsf_lines(data_with_alerts: Path, tmp_path: Path) -> None:
    output = tmp_path / "alerts.jsonl"
    _, message = export(data_with_alerts, "-o", str(output))
    lines = output.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 3
    for event in events:
        assert validate_event(event) == []
        assert event["class_uid"] == 2004
    assert {e["finding_info"]["title"] for e in events} == {"Old write", "New write", "Program download"}
    assert f"exported 3 alerts as OCSF 1.3.0 Detection Findings to {output}" in message


def test_site_and_since_filter_and_standard_output_is_the_default(data_with_alerts: Path) -> None:
    events, _ = export(data_with_alerts, "--site", "plant-a")
    assert [e["finding_info"]["title"] for e in events] == ["New write", "Old write"]
    events, _ = export(data_with_alerts, "--since", "2026-11-26T07:00:00+00:00", "--site", "plant-a")
    assert [e["finding_info"]["title"] for e in events] == ["New write"]
    events, _ = export(data_with_alerts, "--since", "2026-11-26T07:00:00")  # no offset: UTC
    assert {e["site_uid"] for e in events} == {"plant-a", "plant-b"}
    events, message = export(data_with_alerts, "--site", "plant-z")
    assert events == [] and "exported 0 alerts" in message


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", "'yesterday' is not an ISO 8601 time"),
        ("0001-01-01T00:00+01:00", "0001-01-01T00:00:00+01:00 is outside the range of storable times"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59-01:00 is outside the range of storable times"),
    ],
)
def test_a_time_that_is_not_iso_or_has_no_utc_form_is_refused(
    data_dir: Path, since: str, message: str
) -> None:
    result = plantwarden(
        "--data-dir", str(data_dir), "export", "ocsf", "alerts", "--since", since, cwd=data_dir
    )
    assert result.returncode == 2
    assert f"Invalid value for '--since': {message}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["alerts", "records"])
def test_an_output_that_cannot_be_written_is_refused_before_anything_is_read(
    data_dir: Path, kind: str
) -> None:
    for output, problem in [("", "'.' is a directory"), ("no/out.jsonl", "is not in an existing directory")]:
        result = plantwarden("--data-dir", str(data_dir), "export", "ocsf", kind, "-o", output, cwd=data_dir)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "Invalid value for '-o' / '--output': " in result.stderr and problem in result.stderr


def test_an_alert_that_does_not_validate_is_an_error_and_nothing_is_written(
    data_with_alerts: Path, tmp_path: Path
) -> None:
    store = Store.from_settings(make_settings(data_with_alerts)[CoreSettings])
    ctx = Context(source="test", clock=FixedClock(START + timedelta(minutes=5)))
    with store.transaction() as session:
        alert = services.raise_alert(session, ctx, draft(site="plant-c", title="Noisy"))
        closed = services.close(session, ctx, alert.id, "noise", verdict="benign")
        # OCSF strings hold at most 65535 characters: a note that long, stored by the command line
        # before it too limited notes to 2000 characters, is still in some stores
        closed.status_note = "x" * 70_000
    store.close()
    output = tmp_path / "alerts.jsonl"
    result = plantwarden(
        "--data-dir", str(data_with_alerts), "export", "ocsf", "alerts", "-o", str(output), cwd=tmp_path
    )
    assert result.returncode == 1
    assert (
        f"error [export_invalid]: alert {alert.id} does not validate against OCSF 1.3.0: "
        "status_detail: not a valid string_t: longer than 65535 characters"
    ) in result.stderr
    assert not output.exists()


def test_an_export_keeps_the_file_it_would_replace_when_the_disk_fills_up(
    data_with_alerts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    output = out / "alerts.jsonl"
    output.write_text('{"the export": "of yesterday, kept"}\n' * 20, encoding="utf-8")
    before = files_of(out)
    args = ["--data-dir", str(data_with_alerts), "export", "ocsf", "alerts", "-o", str(output)]
    with pytest.raises(OSError, match="File too large"), full_disk_after_commit():
        CliRunner().invoke(cli, args, catch_exceptions=False)
    assert files_of(out) == before
