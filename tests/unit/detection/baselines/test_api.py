"""The baseline routes with real requests: scopes and facts for readers, accept and protect for
managers (a security analyst), refused to a viewer, another site's scope not found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core.auditlog import AuditEntry
from plantwarden.detection.baselines.api import router
from plantwarden.detection.baselines.live import BaselineTee
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.web.app import API_PREFIX
from tests.unit.detection.baselines.batches import records, write
from tests.unit.detection.plant_models import SITE, plant_site
from tests.web_support import CTX, Server, server


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        app = made.client.app
        assert isinstance(app, FastAPI)
        app.include_router(router, prefix=API_PREFIX)  # web/app.py mounts it (the integrator's line)
        made.user("sam", "security_analyst")
        made.user("vera", "viewer")
        made.user("bob", "security_analyst", site="plant-b")
        tee = BaselineTee(made.store, CTX, SITE, None, scoper=Scoper([plant_site()]), monotonic=lambda: 0.0)
        tee.write(records([{}, write(value=40)]))
        tee.baseline.protect(SITE, "asset:10.2.0.10")
        tee.write(records([write(value=90)]))
        tee.close()
        yield made


def bearer(running: Server, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(user)}"}


def test_scopes_and_facts_for_a_reader_of_the_site(running: Server) -> None:
    sam = bearer(running, "sam")
    scopes = running.client.get("/api/v1/baselines", headers=sam).json()
    assert {(s["scope"], s["state"]) for s in scopes} == {
        ("site", "learning"),
        ("asset:10.2.0.10", "protecting"),
        ("conduit:scada-cell", "learning"),
    }
    body = running.client.get("/api/v1/baselines/plant-a/asset:10.2.0.10", headers=sam).json()
    assert body["scope"]["facts"] == len(body["facts"]) == 6
    setpoint = next(f for f in body["facts"] if f["kind"] == "setpoint")
    assert setpoint["value"] == {"min": 40.0, "max": 40.0} and setpoint["source"] == "learned"
    bob = bearer(running, "bob")
    assert running.client.get("/api/v1/baselines", headers=bob).json() == []
    hidden = running.client.get("/api/v1/baselines/plant-a/asset:10.2.0.10", headers=bob)
    assert hidden.status_code == 404
    viewer = running.client.get("/api/v1/baselines", headers=bearer(running, "vera"))
    assert viewer.status_code == 403


def test_accept_and_protect_need_the_manage_permission(running: Server) -> None:
    with running.store.transaction() as session:
        (alert,) = session.scalars(select(Alert))
    sam, vera = bearer(running, "sam"), bearer(running, "vera")
    body = {"alert_id": str(alert.id), "reason": "new recipe"}
    assert running.client.post("/api/v1/baselines/accept", json=body, headers=vera).status_code == 403
    assert (
        running.client.post("/api/v1/baselines/accept", json=body, headers=bearer(running, "bob")).status_code
        == 404
    )
    accepted = running.client.post("/api/v1/baselines/accept", json=body, headers=sam)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["value"] == {"min": 40.0, "max": 90.0} and accepted.json()["accepted_by"] == "sam"
    protected = running.client.post("/api/v1/baselines/protect", json={"site": SITE}, headers=sam)
    assert protected.json() == {"protected": ["conduit:scada-cell", "site"]}
    with running.store.transaction() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("baseline.%"))))
    assert sorted(actions) == ["baseline.accepted", "baseline.protected"]
    empty = running.client.post("/api/v1/baselines/accept", json={**body, "reason": ""}, headers=sam)
    assert empty.status_code == 422
    blank = running.client.post("/api/v1/baselines/accept", json={**body, "reason": "  "}, headers=sam)
    assert blank.status_code == 422 and "reason" in blank.text and "--reason" not in blank.text, blank.text
