"""Accepting a baseline deviation from its alert page, with real requests: a sensor's tee learns
plant-a, the PLC's scope is protected and a setpoint written outside the learned value raises a
deviation. Sam (security analyst) sees the form, gives a reason, lands on the scope's page with
the fact accepted by him, and the decision is in the audit log as his, from the console; a blank
reason is refused and changes nothing; Vera (viewer) sees no form and is refused the POST; Bob
(analyst of another site) is answered as if the alert did not exist; an alert that is not a
baseline deviation shows no form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, raise_alert
from plantwarden.core.auditlog import AuditEntry
from plantwarden.detection.baselines import services
from tests.unit.detection.plant_models import SITE
from tests.unit.web.test_baseline_pages import PLC_SCOPE, learn_then_deviate
from tests.web_support import CTX, Server, server

FORM = re.compile(r'<form method="post" action="/alerts/[^"]+/accept-baseline"')


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, uuid.UUID]]:
    for made in server(Path(tmp_path_factory.mktemp("accept"))):
        made.user("sam", "security_analyst")
        made.user("bob", "security_analyst", site="plant-b")
        made.user("vera", "viewer")
        yield made, learn_then_deviate(made)


def _client(made: Server, username: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(made.client.app, base_url="http://testserver") as client:
        yield client, made.login(client, username)


def _accepted(made: Server) -> list[str]:
    with made.store.transaction() as session:
        return [
            f.accepted_by or "" for f in services.facts_of(session, SITE, PLC_SCOPE) if f.source == "accepted"
        ]


def test_an_analyst_accepts_the_deviation_from_its_alert_page(running: tuple[Server, uuid.UUID]) -> None:
    made, alert_id = running
    for client, csrf in _client(made, "sam"):
        page = client.get(f"/alerts/{alert_id}")
        assert page.status_code == 200 and FORM.search(page.text), page.text
        blank = client.post(f"/alerts/{alert_id}/accept-baseline", data={"reason": " ", "csrf_token": csrf})
        assert blank.status_code in (400, 422) and "say why" in blank.text, blank.text
        assert _accepted(made) == []
        answer = client.post(
            f"/alerts/{alert_id}/accept-baseline",
            data={"reason": "new recipe needs 90", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].startswith(f"/baselines/{SITE}/asset%3A10.2.0.10?kind=")
        scope_page = client.get(answer.headers["location"])
        assert scope_page.status_code == 200 and "new recipe needs 90" in scope_page.text
    assert _accepted(made) == ["sam"]
    with made.store.transaction() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "baseline.accepted")).one()
        assert (entry.actor, entry.source, entry.outcome) == ("sam", "console", "success")
        assert entry.details["alert"] == str(alert_id) and entry.details["reason"] == "new recipe needs 90"


def test_a_viewer_sees_no_form_and_is_refused(running: tuple[Server, uuid.UUID]) -> None:
    made, alert_id = running
    for client, csrf in _client(made, "vera"):
        page = client.get(f"/alerts/{alert_id}")
        assert page.status_code == 200 and not FORM.search(page.text)
        refused = client.post(f"/alerts/{alert_id}/accept-baseline", data={"reason": "x", "csrf_token": csrf})
        assert refused.status_code == 403, refused.text


def test_an_analyst_of_another_site_is_answered_not_found(running: tuple[Server, uuid.UUID]) -> None:
    made, alert_id = running
    for client, csrf in _client(made, "bob"):
        answer = client.post(f"/alerts/{alert_id}/accept-baseline", data={"reason": "x", "csrf_token": csrf})
        assert answer.status_code == 404, answer.text


def test_an_alert_that_is_not_a_baseline_deviation_has_no_form(running: tuple[Server, uuid.UUID]) -> None:
    made, _ = running
    with made.store.transaction() as session:
        other = raise_alert(
            session,
            CTX,
            AlertDraft(
                rule_id="pw-test-rule",
                rule_name="a rule",
                detector="rules",
                title="Something else",
                site=SITE,
                severity=Severity.MEDIUM,
            ),
        )
        other_id = other.id
    for client, csrf in _client(made, "sam"):
        page = client.get(f"/alerts/{other_id}")
        assert page.status_code == 200 and not FORM.search(page.text)
        answer = client.post(f"/alerts/{other_id}/accept-baseline", data={"reason": "x", "csrf_token": csrf})
        assert answer.status_code in (400, 422) and "not a baseline deviation" in answer.text, answer.text
