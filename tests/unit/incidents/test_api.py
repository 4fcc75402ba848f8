"""The quarantine routes with real requests against a real store: analysts and administrators
quarantine and release at their own sites only; the list shows only their sites; each change is
in the event log and the audit log; bad input is answered with what to do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditEntry
from tests.web_support import Server, server


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        made.user("sam", "security_analyst")
        made.user("bea", "security_analyst", site="plant-b")
        made.user("aud", "auditor")
        yield made


def bearer(running: Server, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(user)}"}


def test_an_analyst_quarantines_and_releases_at_their_site(running: Server) -> None:
    sam = bearer(running, "sam")
    body = {"site": "plant-a", "subject": "cert_role:engineer", "reason": "stolen laptop"}
    made = running.client.post("/api/v1/quarantine", json=body, headers=sam)
    assert made.status_code == 201, made.text
    assert made.json()["quarantined_by"] == "sam" and made.json()["target"] == "engineer"
    again = running.client.post("/api/v1/quarantine", json=body, headers=sam)
    assert again.status_code == 409 and "already quarantined" in again.text
    asset = {"site": "plant-a", "asset": "plc-1", "reason": "tampered"}
    assert running.client.post("/api/v1/quarantine", json=asset, headers=sam).status_code == 201
    listed = running.client.get("/api/v1/quarantine", headers=sam).json()
    assert [(r["kind"], r["target"]) for r in listed] == [("cert_role", "engineer"), ("asset", "plc-1")]
    assert running.client.get("/api/v1/quarantine", headers=bearer(running, "bea")).json() == []
    released = running.client.post("/api/v1/quarantine/release", json={**asset, "reason": "ok"}, headers=sam)
    assert released.status_code == 200 and released.json()["released_by"] == "sam"
    gone = running.client.post("/api/v1/quarantine/release", json={**asset, "reason": "ok"}, headers=sam)
    assert gone.status_code == 404 and "not quarantined" in gone.text
    with running.store.transaction() as session:
        types = [e.type for _, e in eventlog.read_after(session, 0) if e.type.startswith("incidents.")]
        actions = [e.action for e in session.scalars(select(AuditEntry)) if e.action.startswith("incidents.")]
    assert types == [
        "incidents.SubjectQuarantined",
        "incidents.AssetQuarantined",
        "incidents.QuarantineReleased",
    ]
    assert actions == ["incidents.quarantine.added"] * 2 + ["incidents.quarantine.released"]


def test_other_sites_other_roles_and_bad_input_are_refused(running: Server) -> None:
    body = {"site": "plant-a", "subject": "address:10.1.1.20", "reason": "r"}
    other = running.client.post("/api/v1/quarantine", json=body, headers=bearer(running, "bea"))
    assert other.status_code == 403 and "plant-a" in other.text
    assert (
        running.client.post("/api/v1/quarantine", json=body, headers=bearer(running, "aud")).status_code
        == 403
    )
    assert running.client.get("/api/v1/quarantine", headers=bearer(running, "aud")).status_code == 403
    sam = bearer(running, "sam")
    both = running.client.post("/api/v1/quarantine", json={**body, "asset": "plc-1"}, headers=sam)
    assert both.status_code == 422 and "one of them" in both.text
    bad = running.client.post("/api/v1/quarantine", json={**body, "subject": "role:x"}, headers=sam)
    assert bad.status_code == 422 and "KIND:ID" in bad.text
    with running.store.transaction() as session:
        assert not [e for _, e in eventlog.read_after(session, 0) if e.type.startswith("incidents.")]
