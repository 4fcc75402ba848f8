"""Through the API and the console, a site keeps a user manager and a grant is held once: Ada,
plant-a's only administrator, cannot disable herself; Tim, plant-c's administrator for a week,
cannot revoke Bob's lasting admin grant there (Tim's ends: it would leave plant-c unmanaged); each
refusal is a 409 that says what to do first, and is audited as the actor's; a grant that a
concurrent request already made answers 409 `grant_exists`, not a server error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.core.auditlog import AuditEntry
from tests.web_support import CTX, Server, server


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for made in server(Path(tmp_path_factory.mktemp("managers"))):
        made.user("ada", "admin")
        made.user("tim", "admin", site="plant-c")
        made.user("bob", "admin", site="plant-c")
        made.user("vera", "viewer")
        with made.store.transaction() as session:  # Tim is plant-c's administrator for a week
            (grant,) = accounts.get_user_by_name(session, "tim").grants
            grant.valid_until = CTX.clock.now() + timedelta(days=7)
        yield made


def _refusals(running: Server, action: str) -> list[AuditEntry]:
    with running.store.transaction() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        session.expunge_all()
    return entries


def test_the_api_refuses_to_disable_a_sites_last_admin(running: Server) -> None:
    headers = {"Authorization": f"Bearer {running.token('ada')}"}
    answer = running.client.post("/api/v1/users/ada/disable", headers=headers)
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "last_user_manager" and error["details"]["sites"] == ["plant-a"]
    assert "disabling ada would leave site plant-a with no active user who manages users" in error["message"]
    assert "first grant admin at site plant-a" in error["message"]
    (entry,) = _refusals(running, "accounts.user_disable_refused")
    assert (entry.actor, entry.source, entry.outcome, entry.site, entry.target) == (
        "ada",
        "server",
        "denied",
        "plant-a",
        "ada",
    )
    with running.store.transaction() as session:
        assert not accounts.get_user_by_name(session, "ada").disabled


def test_the_console_refuses_to_revoke_a_sites_last_lasting_admin(running: Server) -> None:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        csrf = running.login(client, "tim")
        form = {"role": "admin", "site": "plant-c", "csrf_token": csrf}
        answer = client.post("/users/bob/grants/revoke", data=form, follow_redirects=False)
    assert answer.status_code == 409, answer.text
    assert "Error code:" in answer.text and "last_user_manager" in answer.text
    assert "revoking admin at plant-c from bob would leave site plant-c" in answer.text
    (entry,) = _refusals(running, "accounts.role_revoke_refused")
    assert (entry.actor, entry.source, entry.site, entry.target) == ("tim", "console", "plant-c", "bob")
    with running.store.transaction() as session:
        assert [(g.role, g.site) for g in accounts.list_grants(session, "bob")] == [("admin", "plant-c")]


def test_a_grant_made_meanwhile_answers_grant_exists(
    running: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Vera's viewer grant committed by another request between the service's check and its insert
    monkeypatch.setattr(accounts, "_find_grant", lambda *args: None)
    headers = {"Authorization": f"Bearer {running.token('ada')}"}
    body = {"role": "viewer", "site": "plant-a"}
    answer = running.client.post("/api/v1/users/vera/grants", json=body, headers=headers)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "grant_exists"
    assert "vera already holds viewer at plant-a" in answer.json()["error"]["message"]
