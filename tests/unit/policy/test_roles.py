"""The built-in roles: what each may do, and above all what it may not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plantwarden.core.records.schema import Operation, Protocol
from plantwarden.policy import (
    BUILTIN_ROLES,
    PLANT_OPERATIONS,
    PLATFORM_ACTIONS,
    Grant,
    Namespace,
    Request,
    action,
)
from plantwarden.policy.errors import InvalidAction
from plantwarden.policy.model import action_matches
from tests.unit.policy.support import ALICE, NOW, snapshot_of

DOC = Path(__file__).resolve().parents[3] / "docs" / "policy.md"
ALL_ACTIONS = PLATFORM_ACTIONS + PLANT_OPERATIONS


def allowed(role: str, act: str, *, training_current: bool = True, approval_given: bool = False) -> bool:
    snapshot = snapshot_of(Grant(ALICE, role, "plant-a"))
    request = Request(
        ALICE,
        act,
        "plant-a",
        "cell-1",
        asset="plc-1",
        address=10,
        now=NOW,
        training_current=training_current,
        approval_given=approval_given,
    )
    return snapshot.decide(request).allowed


def rights(role: str) -> set[str]:
    """Every known action the role allows with training current and an approval given."""
    return {a for a in ALL_ACTIONS if allowed(role, a, approval_given=True)}


def test_the_brief_minimum_of_actions_is_known() -> None:
    for name in [
        "status.read", "sites.read", "sites.manage", "alerts.read", "alerts.acknowledge", "alerts.close",
        "events.read", "records.read", "exports.run", "users.read", "users.manage", "tokens.manage",
        "audit.read", "settings.read",
    ]:  # fmt: skip
        assert f"platform:{name}" in PLATFORM_ACTIONS
    for name in ["read", "write", "program", "control", "diagnostic"]:
        assert f"plant:modbus.{name}" in PLANT_OPERATIONS
    assert len(set(ALL_ACTIONS)) == len(ALL_ACTIONS)


def test_plant_operations_follow_the_records_plane_codes() -> None:
    protocols = {p.name.lower() for p in Protocol} - {"unknown"}
    operations = {o.name.lower() for o in Operation} - {"other", "malformed"}
    assert set(PLANT_OPERATIONS) == {f"plant:{p}.{o}" for p in protocols for o in operations}


def test_action_names_are_checked() -> None:
    assert action(Namespace.PLANT, "modbus.write") == "plant:modbus.write"
    assert action("platform", "alerts.read") == "platform:alerts.read"
    for namespace, name in [
        ("plant", "Modbus.write"),
        ("plant", "write"),
        ("other", "a.b"),
        ("plant", "a..b"),
    ]:
        with pytest.raises(InvalidAction, match="not an action"):
            action(namespace, name)


def test_patterns_stay_in_their_namespace() -> None:
    assert action_matches("plant:*", "plant:modbus.write")
    assert not action_matches("platform:*", "plant:modbus.write")
    assert action_matches("plant:*.read", "plant:s7comm.read")
    assert not action_matches("plant:*.read", "plant:s7comm.write")
    assert action_matches("platform:alerts.*", "platform:alerts.close")
    assert not action_matches("platform:alerts.*", "platform:alertsx.close")


def test_viewer_reads_status_sites_and_alerts() -> None:
    assert rights("viewer") == {"platform:status.read", "platform:sites.read", "platform:alerts.read"}


def test_operator_adds_acknowledging_and_plant_reads_identification_and_writes() -> None:
    plant = {a for a in PLANT_OPERATIONS if a.endswith((".read", ".identify", ".write"))}
    assert rights("operator") == rights("viewer") | {"platform:alerts.acknowledge"} | plant


def test_engineer_adds_program_control_and_diagnostic() -> None:
    assert rights("engineer") == rights("operator") | (set(PLANT_OPERATIONS) - rights("operator"))


def test_security_analyst_works_alerts_and_investigates() -> None:
    assert rights("security_analyst") == {
        "platform:alerts.read",
        "platform:alerts.acknowledge",
        "platform:alerts.close",
        "platform:alerts.assign",
        "platform:alerts.suppress",
        "platform:events.read",
        "platform:records.read",
        "platform:exports.run",
        "platform:baselines.read",
        "platform:baselines.manage",
        "platform:pki.read",
        "platform:quarantine.manage",
        "platform:exercises.run",
    }


def test_telemetry_source_only_pushes_telemetry() -> None:
    assert rights("telemetry_source") == {"platform:telemetry.write"}


@pytest.mark.parametrize(
    "operation", [*PLANT_OPERATIONS, "plant:newproto.write", "plant:modbus.write.multiple"]
)
def test_admin_can_never_do_a_plant_operation(operation: str) -> None:
    for training in (False, True):
        for approval in (False, True):
            assert not allowed("admin", operation, training_current=training, approval_given=approval)


def test_admin_manages_users_tokens_sites_and_settings() -> None:
    assert rights("admin") == {
        "platform:status.read",
        "platform:sites.read",
        "platform:sites.manage",
        "platform:plant.apply",
        "platform:users.read",
        "platform:users.manage",
        "platform:tokens.manage",
        "platform:settings.read",
        "platform:settings.manage",
        "platform:policy.read",
        "platform:quarantine.manage",
        "platform:pki.read",
        "platform:pki.manage",
    }


def test_auditor_reads_only() -> None:
    reads = {a for a in PLATFORM_ACTIONS if a.endswith(".read")}
    assert rights("auditor") == reads
    assert "platform:audit.read" in reads
    assert not any(allowed("auditor", a, approval_given=True) for a in PLANT_OPERATIONS)


def test_only_the_auditor_reads_the_audit_trail() -> None:
    assert [r for r in BUILTIN_ROLES if allowed(r, "platform:audit.read")] == ["auditor"]


def test_the_doc_table_matches_the_roles() -> None:
    """docs/policy.md lists, per role, the actions it allows; the table must say what the code does."""
    text = DOC.read_text()
    table = text[text.index("<!-- roles-table -->") : text.index("<!-- /roles-table -->")]
    documented: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].strip("`") in BUILTIN_ROLES:
            documented[cells[0].strip("`")] = set(re.findall(r"`([a-z*][a-z0-9_.*:-]*)`", cells[1]))
    assert set(documented) == set(BUILTIN_ROLES)
    for name, role in BUILTIN_ROLES.items():
        in_code = {
            a.partition(":")[2] if a.startswith("platform:") else a for r in role.rules for a in r.actions
        }
        assert documented[name] == in_code, name


def test_the_doc_lists_every_platform_action() -> None:
    text = DOC.read_text()
    for platform_action in PLATFORM_ACTIONS:
        assert f"| `{platform_action.partition(':')[2]}` |" in text, platform_action
