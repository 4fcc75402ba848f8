"""`plantwarden plant` and /api/v1/plant: validate, show, diff, apply (recorded, audited, the
policy rebuilt from the plant's rights and bindings), history; errors with file, line, column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.core.auditlog import AuditEntry
from plantwarden.core.clock import SystemClock
from plantwarden.core.eventlog import EventRecord
from plantwarden.core.runtime import Runtime
from plantwarden.policy.compile import Request as PolicyRequest
from plantwarden.policy.model import Subject
from plantwarden.zones import applied
from plantwarden.zones.models import PlantVersion, Site
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant_cli import plant_group
from tests.conftest import make_settings
from tests.helpers import plantwarden
from tests.web_support import CTX, Server, server

ROOT = Path(__file__).resolve().parents[2]
RIVERSIDE = ROOT / "examples" / "riverside" / "plant.yaml"


class Provider:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    yield Provider(runtime)
    runtime.close()


def run(provider: Provider, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(plant_group, list(args), obj=provider, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_validate_show_and_the_schema(provider: Provider, tmp_path: Path) -> None:
    assert "valid, version" in run(provider, "validate", str(RIVERSIDE))
    shown = run(provider, "show", str(RIVERSIDE))
    assert "cell-b               level 1  SL-T (IAC 3, UC 3, SI 3, DC 2, RDF 3, TRE 2, RA 3)" in shown
    assert "engineering: supervisory -> cell-a+cell-b modbus tcp/502" in shown
    assert "program/control in weekend-maintenance" in shown
    assert run(provider, "schema").startswith("{\n")
    broken = tmp_path / "plant.yaml"
    broken.write_text(RIVERSIDE.read_text().replace("purdue_level: 1\n", "purdue_level: 6\n", 1))
    result = CliRunner().invoke(plant_group, ["validate", str(broken)], obj=provider)
    assert result.exit_code == 1
    line = 1 + RIVERSIDE.read_text().split("purdue_level: 1\n")[0].count("\n")
    assert f"{broken}:{line}:23: sites[0].zones[3].purdue_level: 6 is not allowed here" in result.output


def test_show_names_the_plant_s_sites_when_it_has_not_the_one_asked_for(provider: Provider) -> None:
    assert "site riverside (" in run(provider, "show", str(RIVERSIDE), "--site", "riverside")
    result = CliRunner().invoke(plant_group, ["show", str(RIVERSIDE), "--site", "nosuch"], obj=provider)
    assert result.exit_code == 2, result.output
    assert "Invalid value for --site: the plant has no site 'nosuch' (its sites: riverside)" in result.output
    assert "version" not in result.output  # not the header of an empty listing


def test_apply_records_the_version_who_and_when_once(provider: Provider, tmp_path: Path) -> None:
    assert "no plant model is applied yet" in run(provider, "diff", str(RIVERSIDE), code=1)
    out = run(provider, "apply", str(RIVERSIDE), "--by", "alice")
    assert "applied" in out and "created site riverside" in out
    assert "is already in force" in run(provider, "apply", str(RIVERSIDE), "--by", "alice")
    changed = tmp_path / "plant.yaml"
    changed.write_text(
        RIVERSIDE.read_text().replace(
            "clients: [hmi-1]\n            operations: [read]",
            "clients: [hmi-1]\n            operations: [read, write]",
        )
    )
    diff = run(provider, "diff", str(changed), code=1)
    assert "~ site riverside: conduit supervisory-cells: channel hmi-polling" in diff
    assert "operations: [read] -> [read, write]" in diff
    assert "no change" in run(provider, "diff", str(RIVERSIDE), str(RIVERSIDE))
    run(provider, "apply", str(changed), "--by", "bob")
    history = run(provider, "history").splitlines()
    assert [line.split()[3] for line in history] == ["bob", "alice"]
    store = provider.runtime().store()
    with store.transaction() as session:
        rows = session.scalars(select(PlantVersion).order_by(PlantVersion.applied_at)).all()
        assert rows[1].previous == rows[0].version and rows[1].content == changed.read_text()
        assert session.get(Site, "riverside") is not None
        events = session.scalars(select(EventRecord).where(EventRecord.type == "zones.PlantApplied")).all()
        assert [e.payload["applied_by"] for e in events] == ["alice", "bob"]
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "plant.applied")).all()
        assert [(a.actor, a.details["version"]) for a in audited] == [(r.applied_by, r.version) for r in rows]


def test_an_invalid_file_is_not_applied(provider: Provider, tmp_path: Path) -> None:
    broken = tmp_path / "plant.yaml"
    broken.write_text(RIVERSIDE.read_text().replace("to: enterprise\n", "to: nowhere\n", 1))
    result = CliRunner().invoke(plant_group, ["apply", str(broken)], obj=provider)
    assert result.exit_code == 1 and "zone 'nowhere' is not one of the zones of conduit" in result.output
    with provider.runtime().ready_store().transaction() as session:
        assert applied.latest(session) is None


def test_plcs_behind_one_gateway_on_one_unit_id_are_neither_valid_nor_applied(
    provider: Provider, tmp_path: Path
) -> None:
    # the gateway routes by unit id: tank-1 and tank-2 both answer unit 1, so once both are
    # gateway_only behind the site's one gateway, the gateway could not start on this model
    text = RIVERSIDE.read_text().replace(
        "    timezone: UTC\n", "    timezone: UTC\n    gateways: [127.10.1.60]\n", 1
    )
    text = text.replace(
        "criticality: high\n        unit_id: 1\n",
        "criticality: high\n        gateway_only: true\n        unit_id: 1\n",
        2,
    )
    broken = tmp_path / "plant.yaml"
    broken.write_text(text)
    line = 1 + text[: text.index("unit_id: 1", text.index("id: tank-2"))].count("\n")
    index = [asset.id for asset in load_plant(RIVERSIDE).site("riverside").assets].index("tank-2")
    expected = (
        f"{broken}:{line}:18: sites[0].assets[{index}].unit_id: unit id 1 is also the unit id of"
        " gateway_only asset 'tank-1': the gateway routes requests by unit id, so the gateway_only"
        " assets behind one gateway need distinct unit ids"
    )
    for command in ("validate", "apply"):
        result = CliRunner().invoke(plant_group, [command, str(broken)], obj=provider)
        assert result.exit_code == 1 and result.output.strip() == expected, result.output
    with provider.runtime().ready_store().transaction() as session:
        assert applied.latest(session) is None
    broken.write_text(
        text.replace(
            "        gateway_only: true\n        unit_id: 1\n",
            "        gateway_only: true\n        unit_id: 2\n",
            1,
        )
    )
    assert "applied" in run(provider, "apply", str(broken))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    yield from server(tmp_path)


def test_the_api_applies_with_its_own_permission_and_the_policy_follows(running: Server) -> None:
    admin = running.user("root-admin", "admin", site="riverside")
    operator = running.user("olga", "operator", site="riverside")
    body = {"content": RIVERSIDE.read_text(), "source": "git:abc123/plant.yaml"}
    assert running.client.get("/api/v1/plant", headers=_bearer(running, admin)).json() is None
    refused = running.client.post("/api/v1/plant", json=body, headers=_bearer(running, operator))
    assert refused.status_code == 403

    hmi = Subject("address", "127.10.1.10")
    write = PolicyRequest(
        hmi, "plant:modbus.write", "riverside", "cell-a", asset="tank-1", address=0, now=CTX.clock.now()
    )
    snapshot, _ = running.client.app.state.policy.current()  # type: ignore[attr-defined]
    assert not snapshot.decide(write).allowed  # no binding before the model

    response = running.client.post("/api/v1/plant", json=body, headers=_bearer(running, admin))
    assert response.status_code == 200, response.text
    assert response.json()["unchanged"] is False
    current = running.client.get("/api/v1/plant", headers=_bearer(running, operator)).json()
    assert current["applied_by"] == admin and current["source"] == "git:abc123/plant.yaml"

    snapshot, _ = running.client.app.state.policy.current()  # type: ignore[attr-defined]
    trained = write
    assert snapshot.decide(trained).allowed  # the HMI is bound to the operator role
    assert not snapshot.decide(trained._replace(training_current=False)).allowed  # the right needs it
    assert not snapshot.decide(trained._replace(address=100)).allowed  # an input register: no writer
    assert not snapshot.decide(trained._replace(asset="eng-ws-1", zone="supervisory")).allowed

    bad = {"content": RIVERSIDE.read_text().replace("purdue_level: 5", "purdue_level: 9")}
    rejected = running.client.post("/api/v1/plant", json=bad, headers=_bearer(running, admin))
    assert rejected.status_code == 422
    problem = rejected.json()["error"]["details"]["problems"][0]
    line = 1 + RIVERSIDE.read_text().split("purdue_level: 5")[0].count("\n")
    assert (problem["line"], problem["path"]) == (line, "sites[0].zones[0].purdue_level")


def _bearer(running: Server, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(username)}"}


def test_the_mounted_group_reports_problems_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "plant.yaml"
    broken.write_text("version: 1\nsites:\n  - id: x\n    zones: []\n    colour: red\n")
    result = plantwarden("--data-dir", str(tmp_path), "plant", "validate", str(broken), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"{broken}:4:12: sites[0].zones: needs at least 1 entry" in result.stderr
    assert f"{broken}:5:5: sites[0].colour: unknown key 'colour'" in result.stderr


def test_applying_needs_a_place_at_every_site_it_or_the_model_in_force_declares(running: Server) -> None:
    both = RIVERSIDE.read_text() + RIVERSIDE.read_text().split("sites:\n", 1)[1].replace(
        "id: riverside", "id: hillside", 1
    )
    full = running.user("full-admin", "admin", site="riverside")
    with running.store.transaction() as session:
        accounts.grant_role(session, CTX, full, "admin", "hillside")
    local = running.user("local-admin", "admin", site="riverside")
    applied_both = running.client.post(
        "/api/v1/plant", json={"content": both}, headers=_bearer(running, full)
    )
    assert applied_both.status_code == 200, applied_both.text
    # the riverside admin may not take hillside's model away by applying riverside alone
    alone = running.client.post(
        "/api/v1/plant", json={"content": RIVERSIDE.read_text()}, headers=_bearer(running, local)
    )
    assert alone.status_code == 403 and alone.json()["error"]["details"]["sites"] == ["hillside"]
    # nor declare a site they hold no role at
    declared = running.client.post("/api/v1/plant", json={"content": both}, headers=_bearer(running, local))
    assert declared.status_code == 403 and declared.json()["error"]["details"]["sites"] == ["hillside"]
    with running.store.transaction() as session:
        assert applied.latest(session).sites == ["riverside", "hillside"]  # type: ignore[union-attr]


def test_a_stored_model_that_no_longer_loads_keeps_the_last_good_policy(running: Server) -> None:
    admin = running.user("root-admin", "admin", site="riverside")
    response = running.client.post(
        "/api/v1/plant", json={"content": RIVERSIDE.read_text()}, headers=_bearer(running, admin)
    )
    assert response.status_code == 200
    cache = running.client.app.state.policy  # type: ignore[attr-defined]
    good, _ = cache.current()
    with running.store.transaction() as session:  # as if a newer release checked more strictly
        row = applied.latest(session)
        assert row is not None
        row.version, row.content = "f" * 64, row.content.replace("timezone: UTC", "timezone: Mars/Olympus")
    cache.invalidate()
    kept, _ = cache.current()
    assert kept.version == good.version
    assert running.client.get("/api/v1/plant", headers=_bearer(running, admin)).status_code == 200


def test_a_text_in_lines_stays_on_its_line_of_the_diff(provider: Provider, tmp_path: Path) -> None:
    """A description written as a block of lines (or a name with a line break) is quoted in the
    diff: printed as is, its lines would pass for lines of the diff."""
    text = RIVERSIDE.read_text()
    assert "        name: Enterprise IT\n" in text
    changed = tmp_path / "plant.yaml"
    changed.write_text(
        text.replace("        name: Enterprise IT\n", '        name: "Enterprise\\n+ site forged"\n', 1)
    )
    diff = run(provider, "diff", str(RIVERSIDE), str(changed), code=1)
    assert diff.splitlines() == [
        "~ site riverside: zone enterprise",
        "    name: Enterprise IT -> 'Enterprise\\n+ site forged'",
    ]
