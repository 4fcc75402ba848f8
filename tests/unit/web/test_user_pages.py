"""The console's Users and roles pages with real requests: Ada administers plant-a, Aude audits
it, Otto operates it, Vera views it. Ada sees every user and the built-in roles with what each may
do; she adds a user (whose one-time password works, once), grants and revokes roles and unlocks an
account through the forms, each change audited as hers from the console; bad input answers the
console's error page; a form without its CSRF token changes nothing; Aude reads without the
forms and may not change; Otto is refused and has no Users link; hostile names are escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.core.auditlog import AuditEntry
from plantwarden.policy.roles import BUILTIN_ROLES
from tests.web_support import CTX, Server, server

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for made in server(Path(tmp_path_factory.mktemp("users"))):
        made.user("ada", "admin")
        made.user("aude", "auditor")
        made.user("otto", "operator", zone="cell-1")
        made.user("vera", "viewer")
        yield made


def _session(running: Server, username: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        yield client, running.login(client, username)


@pytest.fixture(scope="module")
def ada(running: Server) -> Iterator[tuple[TestClient, str]]:
    """Ada's console session and its CSRF token (one login: each spends a recovery code)."""
    yield from _session(running, "ada")


def _audited(running: Server, action: str, target: str) -> list[AuditEntry]:
    with running.store.transaction() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.target == target)
        ).all()
        session.expunge_all()
    return list(entries)


def _grants(running: Server, username: str) -> set[tuple[str, str, str | None]]:
    with running.store.transaction() as session:
        return {(g.role, g.site, g.zone) for g in accounts.list_grants(session, username)}


def _row(page: str, role: str) -> str:
    match = re.search(rf'<tr id="role-{role}">(.*?)</tr>', page, re.S)
    assert match is not None, role
    return match[1]


def test_an_admin_sees_the_users_and_every_role_with_its_actions(
    running: Server, ada: tuple[TestClient, str]
) -> None:
    client, _ = ada
    page = client.get("/users")
    assert page.status_code == 200
    # the nav link, for those who may read users, marked as the page they are on
    assert '<a href="/users" aria-current="page">Users</a>' in page.text
    for name in ("ada", "aude", "otto", "vera"):
        assert f'<a href="/users/{name}">{name}</a>' in page.text
    assert "<code>operator</code> at <code>plant-a</code> / <code>cell-1</code>" in page.text
    for role in BUILTIN_ROLES.values():
        row = _row(page.text, role.name)
        assert html.escape(role.description) in row
        for rule in role.rules:
            for action in rule.actions:
                assert f"<code>{action.removeprefix('platform:')}</code>" in row, (role.name, action)
    assert "users.manage" not in _row(page.text, "operator")
    assert "(needs current training and an approval)" in _row(page.text, "engineer")
    assert 'id="add-user"' in page.text


def test_one_user_page_shows_state_and_the_forms(running: Server, ada: tuple[TestClient, str]) -> None:
    client, _ = ada
    page = client.get("/users/otto")
    assert page.status_code == 200
    assert "not enrolled" in page.text and "never" in page.text  # no second factor, no login yet
    assert 'aria-label="Revoke operator at plant-a zone cell-1"' in page.text
    assert '<label for="grant-role">' in page.text and 'id="grant-role"' in page.text
    assert 'id="unlock"' not in page.text  # otto is not locked
    assert client.get("/users/ADA").status_code == 200  # names are matched in any case
    missing = client.get("/users/nobody")
    assert missing.status_code == 404 and "no user &#39;nobody&#39;" in missing.text


def test_adding_a_user_shows_the_one_time_password_once(running: Server, ada: tuple[TestClient, str]) -> None:
    client, csrf = ada
    answer = client.post("/users", data={"username": "Nina", "display_name": "Nina N", "csrf_token": csrf})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    secret = re.search(r'<code class="secret" id="one-time-password">([a-z2-9-]+)</code>', answer.text)
    assert secret is not None
    with running.store.transaction() as session:
        result = accounts.login(session, CTX, "nina", secret[1], "127.0.0.1")
        assert result.needs_password_change and result.user.display_name == "Nina N"
    (entry,) = _audited(running, "accounts.user_created", "nina")
    assert (entry.actor, entry.source, entry.outcome) == ("ada", "console", "success")
    assert secret[1] not in client.get("/users/nina").text
    again = client.post("/users", data={"username": "nina", "csrf_token": csrf})
    assert again.status_code == 409 and "already exists" in again.text


def test_granting_and_revoking_a_role(running: Server, ada: tuple[TestClient, str]) -> None:
    client, csrf = ada
    running.user("gus")
    form = {"role": "operator", "site": "plant-a", "zone": "cell-2", "csrf_token": csrf}
    granted = client.post("/users/gus/grants", data=form, follow_redirects=False)
    assert granted.status_code == 303 and granted.headers["location"] == "/users/gus"
    assert _grants(running, "gus") == {("operator", "plant-a", "cell-2")}
    (entry,) = _audited(running, "accounts.role_granted", "gus")
    assert (entry.actor, entry.source, entry.site) == ("ada", "console", "plant-a")
    assert entry.details["zone"] == "cell-2"
    assert "<code>cell-2</code>" in client.get("/users/gus").text

    revoke = {"role": "operator", "site": "plant-a", "zone": "cell-2", "csrf_token": csrf}
    revoked = client.post("/users/gus/grants/revoke", data=revoke, follow_redirects=False)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/users/gus"
    assert _grants(running, "gus") == set()
    (entry,) = _audited(running, "accounts.role_revoked", "gus")
    assert (entry.actor, entry.source) == ("ada", "console")


def test_a_grant_with_an_end_and_a_grant_that_applies_at_once(
    running: Server, ada: tuple[TestClient, str]
) -> None:
    client, csrf = ada
    running.user("hal")
    token = running.token("hal")
    assert (
        running.client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    )
    form = {"role": "auditor", "site": "plant-a", "valid_until": "2999-01-31T12:00", "csrf_token": csrf}
    assert client.post("/users/hal/grants", data=form, follow_redirects=False).status_code == 303
    assert (
        running.client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert "2999-01-31 12:00" in client.get("/users/hal").text


def test_unlocking_a_locked_account(running: Server, ada: tuple[TestClient, str]) -> None:
    client, csrf = ada
    running.user("lou", "viewer")
    with running.store.transaction() as session:
        user = accounts.get_user_by_name(session, "lou")
        user.locked, user.failed_logins = True, 10
    page = client.get("/users/lou")
    assert "locked" in page.text and 'id="unlock"' in page.text
    unlocked = client.post("/users/lou/unlock", data={"csrf_token": csrf}, follow_redirects=False)
    assert unlocked.status_code == 303 and unlocked.headers["location"] == "/users/lou"
    with running.store.transaction() as session:
        user = accounts.get_user_by_name(session, "lou")
        assert (user.locked, user.failed_logins) == (False, 0)
    (entry,) = _audited(running, "accounts.user_unlocked", "lou")
    assert (entry.actor, entry.source) == ("ada", "console")
    with TestClient(running.client.app, base_url="http://testserver") as client:
        running.login(client, "lou")  # the account works again


@pytest.mark.parametrize(
    ("path", "form", "status", "message"),
    [
        (
            "/users/vera/grants",
            {"role": "overlord", "site": "plant-a"},
            422,
            "unknown role &#39;overlord&#39;",
        ),
        ("/users/vera/grants", {"role": "viewer", "site": "Plant A!"}, 422, "is not a valid site id"),
        ("/users/vera/grants", {"role": "viewer", "site": "plant-a", "zone": "c/1"}, 422, "not a valid zone"),
        ("/users/vera/grants", {"role": "viewer", "site": "plant-a"}, 409, "already holds viewer"),
        (
            "/users/vera/grants",
            {"role": "viewer", "site": "plant-b", "valid_until": "soon"},
            422,
            "not a date",
        ),
        (
            "/users/vera/grants",
            {"role": "auditor", "site": "plant-a", "valid_until": "2001-01-01"},
            422,
            "past",
        ),
        (
            "/users/vera/grants",
            {"role": "auditor", "site": "plant-a", "valid_until": "9999-12-31T23:59-01:00"},
            422,
            "not a date",
        ),
        # Ada manages users at plant-a only, and never her own grants
        (
            "/users/vera/grants",
            {"role": "viewer", "site": "plant-b"},
            403,
            "you manage users at plant-a, not at",
        ),
        (
            "/users/vera/grants/revoke",
            {"role": "viewer", "site": "plant-b"},
            403,
            "you manage users at plant-a",
        ),
        ("/users/ada/grants", {"role": "engineer", "site": "plant-a"}, 403, "your own grants"),
        ("/users/ada/grants/revoke", {"role": "admin", "site": "plant-a"}, 403, "your own grants"),
        ("/users/vera/grants", {"site": "plant-a"}, 422, "the request is not valid"),
        ("/users/vera/grants", {"role": "", "site": "plant-a"}, 422, "invalid_input"),  # "choose a role"
        ("/users/vera/grants/revoke", {"role": "admin", "site": "plant-a"}, 404, "holds no admin"),
        ("/users/nobody/grants", {"role": "viewer", "site": "plant-a"}, 404, "no user"),
        ("/users/nobody/unlock", {}, 404, "no user"),
        ("/users", {"username": "x"}, 422, "is not valid"),
    ],
)
def test_bad_input_answers_the_error_page(
    running: Server, ada: tuple[TestClient, str], path: str, form: dict[str, str], status: int, message: str
) -> None:
    client, csrf = ada
    answer = client.post(path, data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == status, answer.text
    assert "Error code:" in answer.text and message in answer.text
    assert _grants(running, "vera") == {("viewer", "plant-a", None)}


def test_a_user_with_roles_elsewhere_is_unlocked_only_by_whom_manages_users_there(
    running: Server, ada: tuple[TestClient, str]
) -> None:
    client, csrf = ada
    running.user("bea", "viewer", site="plant-b")
    with running.store.transaction() as session:
        accounts.get_user_by_name(session, "bea").locked = True
    refused = client.post("/users/bea/unlock", data={"csrf_token": csrf}, follow_redirects=False)
    assert refused.status_code == 403 and "holds roles at plant-b" in refused.text
    with running.store.transaction() as session:
        assert accounts.get_user_by_name(session, "bea").locked
    # the API holds Ada to the same: no grant at plant-b, no disabling bea
    token = running.token("ada")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"role": "admin", "site": "plant-b"}
    assert running.client.post("/api/v1/users/bea/grants", json=body, headers=headers).status_code == 403
    assert running.client.post("/api/v1/users/ada/grants", json=body, headers=headers).status_code == 403
    assert running.client.post("/api/v1/users/bea/disable", headers=headers).status_code == 403
    assert _grants(running, "bea") == {("viewer", "plant-b", None)}
    assert _grants(running, "ada") == {("admin", "plant-a", None)}


def test_a_form_without_its_csrf_token_changes_nothing(running: Server, ada: tuple[TestClient, str]) -> None:
    client, _ = ada
    form = {"role": "admin", "site": "plant-a"}
    for sent in ({}, {"csrf_token": "forged"}):
        answer = client.post("/users/vera/grants", data={**form, **sent}, follow_redirects=False)
        assert answer.status_code == 403 and "CSRF token" in answer.text
        refused = client.post("/users", data={"username": "sneaky", **sent}, follow_redirects=False)
        assert refused.status_code == 403
    assert _grants(running, "vera") == {("viewer", "plant-a", None)}
    with running.store.transaction() as session:
        assert "sneaky" not in {u.username for u in accounts.list_users(session)}


def test_an_auditor_reads_without_the_forms_and_may_not_change(running: Server) -> None:
    for client, csrf in _session(running, "aude"):
        page = client.get("/users")
        assert page.status_code == 200 and 'id="add-user"' not in page.text
        assert 'id="grant"' not in client.get("/users/vera").text
        refused = client.post(
            "/users/vera/grants", data={"role": "admin", "site": "plant-a", "csrf_token": csrf}
        )
        assert refused.status_code == 403 and "users.manage" in refused.text
    assert _grants(running, "vera") == {("viewer", "plant-a", None)}


def test_an_operator_is_refused_and_has_no_users_link(running: Server) -> None:
    for client, _ in _session(running, "otto"):
        refused = client.get("/users")
        assert refused.status_code == 403 and "users.read" in refused.text
        assert client.get("/users/ada").status_code == 403
        alerts = client.get("/alerts")
        assert alerts.status_code == 200 and 'href="/users"' not in alerts.text


def test_hostile_names_are_escaped(running: Server, ada: tuple[TestClient, str]) -> None:
    client, csrf = ada
    with running.store.transaction() as session:
        accounts.create_user(session, CTX, "mallory", HOSTILE, password="correct horse battery staple")
    for path in ("/users", "/users/mallory"):
        page = client.get(path)
        assert html.escape(HOSTILE, quote=False) in page.text and HOSTILE not in page.text
    name = "<img src=x onerror=alert(1)>"  # one path segment: it reaches the route
    lookup = client.get("/users/%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert lookup.status_code == 404 and name not in lookup.text and "&lt;img src=x" in lookup.text
    added = client.post("/users", data={"username": HOSTILE, "csrf_token": csrf})
    assert added.status_code == 422 and HOSTILE not in added.text and "&lt;script&gt;" in added.text
