from __future__ import annotations

import json
from pathlib import Path

from plantwarden.alerts import services
from plantwarden.alerts.models import Severity
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from tests.conftest import make_settings
from tests.helpers import plantwarden


def raise_two(data_dir: Path) -> list[str]:
    store = Store.from_settings(make_settings(data_dir)[CoreSettings])
    migrate.ensure_ready(store)
    ids = []
    with store.transaction() as session:
        for number in range(2):
            alert = services.raise_alert(
                session,
                Context(source="test"),
                services.AlertDraft(
                    site="plant-a",
                    title=f"alert {number}",
                    severity=Severity.HIGH,
                    detector="test",
                    rule_id=f"R{number}",
                    rule_name="rule",
                ),
            )
            ids.append(str(alert.id))
    store.close()
    return ids


def test_alerts_list_show_ack_close(tmp_path: Path) -> None:
    first, _second = raise_two(tmp_path)
    base = ("--data-dir", str(tmp_path), "alerts")
    table = plantwarden(*base, "list", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["id", "last", "seen"]
    assert len(table.stdout.splitlines()) == 3
    elsewhere = plantwarden(*base, "list", "--site", "plant-b", cwd=tmp_path)
    assert elsewhere.stdout == "no alerts at site 'plant-b': the sites with alerts are plant-a\n"
    quiet = plantwarden(*base, "list", "--site", "plant-a", "--status", "closed", cwd=tmp_path)
    assert quiet.stdout == "no alerts\n"
    listed = json.loads(plantwarden(*base, "list", "--format", "json", cwd=tmp_path).stdout)
    assert {a["title"] for a in listed} == {"alert 0", "alert 1"}
    assert plantwarden(*base, "ack", first, "--by", "alice", cwd=tmp_path).returncode == 0
    shown = json.loads(plantwarden(*base, "show", first, cwd=tmp_path).stdout)
    assert (shown["status"], shown["status_by"]) == ("acknowledged", "alice")
    refused = plantwarden(*base, "ack", first, cwd=tmp_path)
    assert refused.returncode == 1 and "alert_transition_refused" in refused.stderr
    no_verdict = plantwarden(*base, "close", first, "--reason", "planned change", cwd=tmp_path)
    assert no_verdict.returncode == 2 and "--verdict" in no_verdict.stderr
    assigned = plantwarden(*base, "assign", first, "bob", "--by", "alice", cwd=tmp_path)
    assert assigned.returncode == 0 and "assigned" in assigned.stdout
    mine = json.loads(
        plantwarden(*base, "list", "--assignee", "bob", "--format", "json", cwd=tmp_path).stdout
    )
    assert [a["id"] for a in mine] == [first]
    closing = ("close", first, "--verdict", "benign", "--reason", "planned change")
    assert plantwarden(*base, *closing, cwd=tmp_path).returncode == 0
    closed = json.loads(
        plantwarden(*base, "list", "--status", "closed", "--format", "json", cwd=tmp_path).stdout
    )
    assert [a["id"] for a in closed] == [first]


def test_alerts_suppress_hides_new_alerts_and_counts_them(tmp_path: Path) -> None:
    raise_two(tmp_path)
    base = ("--data-dir", str(tmp_path), "alerts")
    rule = json.loads(plantwarden(*base, "list", "--format", "json", cwd=tmp_path).stdout)[0]["rule_id"]
    bad = plantwarden(*base, "suppress", rule, "--for", "8 hours", "--reason", "x", cwd=tmp_path)
    assert bad.returncode == 1 and "not a duration" in bad.stderr
    made = plantwarden(*base, "suppress", rule, "--for", "8h", "--reason", "commissioning", cwd=tmp_path)
    assert made.returncode == 0 and "suppressed" in made.stdout, made.stderr
    listed = json.loads(plantwarden(*base, "suppressions", cwd=tmp_path).stdout)
    assert [(s["rule_id"], s["reason"]) for s in listed] == [(rule, "commissioning")]
