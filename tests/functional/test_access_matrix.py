"""Every route, as every role, with a token and with a console session (with and without its
CSRF token), and anonymously: real requests against the expected matrix written out below.

The matrix is written here by hand from docs/policy.md's role table, not derived from the
policy code, so that a change to the roles or to a route's permission shows up as a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.alerts import services as alerts
from plantwarden.alerts.models import Severity
from plantwarden.core.auditlog import AuditEntry
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.web.route_table import route_table
from tests.web_support import CTX, Server, server

ROLES = ("viewer", "operator", "engineer", "security_analyst", "admin", "auditor", "telemetry_source")
EVERYONE = frozenset(ROLES)
READERS = frozenset({"viewer", "operator", "engineer", "admin", "auditor"})  # status and sites
ALERT_READERS = frozenset({"viewer", "operator", "engineer", "security_analyst", "auditor"})
PUBLIC = "public"
# No session or API token: the device's own credential (an enrolment token, a TLS client
# certificate); every caller of the matrix has none, and is refused with 401 or 403.
DEVICE = "device"
PKI_READERS = frozenset({"admin", "auditor", "security_analyst"})
PLANT_A = (
    "version: 1\nsites:\n  - id: plant-a\n    zones:\n"
    "      - {id: cell-1, purdue_level: 1, subnets: [10.1.1.0/24], security_level: 2}\n"
)

# (method, path) -> the roles allowed, EVERYONE for any authenticated user, or PUBLIC.
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/"): READERS,
    ("GET", "/alerts"): ALERT_READERS,
    ("GET", "/alerts/{alert_id}"): ALERT_READERS,
    ("POST", "/alerts/{alert_id}/acknowledge"): frozenset({"operator", "engineer", "security_analyst"}),
    ("POST", "/alerts/{alert_id}/accept-baseline"): frozenset({"security_analyst"}),
    ("GET", "/live"): ALERT_READERS,  # server-sent events (the test servers' streams end at once)
    ("GET", "/assets"): READERS,
    ("GET", "/assets/{key}"): READERS,
    ("GET", "/map"): READERS,
    ("GET", "/map.svg"): READERS,
    ("GET", "/zones"): READERS,
    ("GET", "/zones.svg"): READERS,
    ("GET", "/conduits/{conduit_id}"): READERS,
    ("GET", "/baselines"): frozenset({"security_analyst", "auditor"}),
    ("GET", "/baselines/{site}/{scope}"): frozenset({"security_analyst", "auditor"}),
    ("GET", "/api/v1/status"): READERS,
    ("GET", "/api/v1/alerts"): ALERT_READERS,
    ("GET", "/api/v1/alerts/{alert_id}"): ALERT_READERS,
    ("GET", "/api/v1/alerts/{alert_id}/evidence.pcap"): ALERT_READERS,
    ("GET", "/api/v1/alerts/suppressions"): ALERT_READERS,
    ("POST", "/api/v1/alerts/suppressions"): frozenset({"security_analyst"}),
    ("POST", "/api/v1/alerts/{alert_id}/assign"): frozenset({"security_analyst"}),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): frozenset(
        {"operator", "engineer", "security_analyst"}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/close"): frozenset({"security_analyst"}),
    ("GET", "/api/v1/assets"): READERS,
    ("GET", "/api/v1/assets/{asset}"): READERS,
    ("GET", "/api/v1/communications"): READERS,
    ("GET", "/api/v1/plant"): READERS,
    ("GET", "/api/v1/plant/history"): READERS,
    ("POST", "/api/v1/plant"): frozenset({"admin"}),
    ("POST", "/api/v1/telemetry"): frozenset({"telemetry_source"}),
    ("GET", "/api/v1/baselines"): frozenset({"security_analyst", "auditor"}),
    ("GET", "/api/v1/baselines/{site}/{scope}"): frozenset({"security_analyst", "auditor"}),
    ("POST", "/api/v1/baselines/accept"): frozenset({"security_analyst"}),
    ("POST", "/api/v1/baselines/protect"): frozenset({"security_analyst"}),
    ("GET", "/api/v1/telemetry"): frozenset({"security_analyst", "auditor"}),
    ("GET", "/api/v1/users"): frozenset({"admin", "auditor"}),
    ("POST", "/api/v1/users"): frozenset({"admin"}),
    ("POST", "/api/v1/users/{username}/grants"): frozenset({"admin"}),
    ("POST", "/api/v1/users/{username}/disable"): frozenset({"admin"}),
    ("POST", "/api/v1/pki/tokens"): frozenset({"admin"}),
    ("POST", "/api/v1/pki/enroll"): PUBLIC,  # the one-time token in the body is the credential
    ("GET", "/api/v1/pki/certificates"): PKI_READERS,
    ("GET", "/api/v1/pki/certificates/{serial}"): PKI_READERS,
    ("POST", "/api/v1/pki/certificates/{serial}/revoke"): frozenset({"admin"}),
    ("GET", "/api/v1/pki/crl"): PUBLIC,
    ("GET", "/api/v1/pki/cacerts"): PUBLIC,
    ("GET", "/.well-known/est/cacerts"): PUBLIC,
    ("POST", "/.well-known/est/simpleenroll"): DEVICE,
    ("POST", "/.well-known/est/simplereenroll"): DEVICE,
    ("GET", "/api/v1/devices/telemetry-recipient"): PUBLIC,  # a certificate, like the CA chain
    ("GET", "/api/v1/devices/telemetry"): frozenset({"security_analyst", "auditor"}),
    ("GET", "/api/v1/quarantine"): frozenset({"security_analyst", "admin"}),
    ("POST", "/api/v1/quarantine"): frozenset({"security_analyst", "admin"}),
    ("POST", "/api/v1/quarantine/release"): frozenset({"security_analyst", "admin"}),
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/tokens"): EVERYONE,
    ("POST", "/api/v1/tokens"): EVERYONE,
    ("DELETE", "/api/v1/tokens/{token_id}"): EVERYONE,
    ("POST", "/logout"): EVERYONE,
    ("GET", "/account/password"): EVERYONE,
    ("POST", "/account/password"): EVERYONE,
    ("GET", "/account/mfa"): EVERYONE,
    ("POST", "/account/mfa"): EVERYONE,
    # no plant runs here: the page says so, a launch is 404 to those allowed
    ("GET", "/exercises"): frozenset({"security_analyst"}),
    ("POST", "/exercises/{name}"): frozenset({"security_analyst"}),
    ("GET", "/users"): frozenset({"admin", "auditor"}),
    ("GET", "/users/{username}"): frozenset({"admin", "auditor"}),
    ("POST", "/users"): frozenset({"admin"}),
    ("POST", "/users/{username}/grants"): frozenset({"admin"}),
    # the fresh user holds no grant: a revoke is 404 to those allowed
    ("POST", "/users/{username}/grants/revoke"): frozenset({"admin"}),
    ("POST", "/users/{username}/unlock"): frozenset({"admin"}),
}
CONSOLE = {
    "/",
    "/alerts",
    "/alerts/{alert_id}",
    "/alerts/{alert_id}/acknowledge",
    "/alerts/{alert_id}/accept-baseline",
    "/assets",
    "/assets/{key}",
    "/map",
    "/map.svg",
    "/zones",
    "/baselines",
    "/baselines/{site}/{scope}",
    "/zones.svg",
    "/conduits/{conduit_id}",
    "/logout",
    "/account/password",
    "/account/mfa",
    "/exercises",
    "/exercises/{name}",
    "/live",
    "/users",
    "/users/{username}",
    "/users/{username}/grants",
    "/users/{username}/grants/revoke",
    "/users/{username}/unlock",
}
SESSION_ONLY = {"/logout", "/account/password", "/account/mfa"}  # never with a token


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = Path(tmp_path_factory.mktemp("matrix"))
    for made in server(data_dir):
        CertificateAuthority.initialise(pki_directory(data_dir), b"matrix passphrase")  # CRL, CA certs
        for role in ROLES:
            made.user(role, role)
        yield made


def test_every_route_declares_its_permission(running: Server) -> None:
    undeclared = [(e.methods, e.path) for e in route_table(app_of(running)) if e.permission is None]
    assert undeclared == []


def test_the_matrix_covers_every_route(running: Server) -> None:
    routes = {(m, e.path) for e in route_table(app_of(running)) for m in e.methods}
    assert routes == set(EXPECTED)


def app_of(running: Server) -> FastAPI:
    app = running.client.app
    assert isinstance(app, FastAPI)
    return app


@dataclass
class Caller:
    client: TestClient
    headers: dict[str, str]


def _fresh(running: Server) -> Callable[[str], str]:
    """Per request: a new alert (so that acknowledging and closing start from `new`), a new user."""

    def make(kind: str) -> str:
        if kind == "alert_id":
            with running.store.transaction() as session:
                draft = alerts.AlertDraft(
                    site="plant-a",
                    title="t",
                    severity=Severity.LOW,
                    detector="test",
                    rule_id="R",
                    rule_name="r",
                )
                return str(alerts.raise_alert(session, CTX, draft).id)
        if kind == "username":
            return running.user(f"target-{uuid.uuid4().hex[:10]}")
        raise AssertionError(kind)

    return make


def _request(caller: Caller, method: str, path: str, running: Server, fresh: Callable[[str], str]) -> int:
    url = path
    if "{alert_id}" in url:
        url = url.replace("{alert_id}", fresh("alert_id"))
    if "{serial}" in url:
        url = url.replace("{serial}", "7e57")  # no such certificate: 404 to those allowed
    if "{username}" in url:
        url = url.replace("{username}", fresh("username"))
    if "{token_id}" in url:
        created = caller.client.post("/api/v1/tokens", json={"name": "doomed"}, headers=caller.headers)
        token_id = (
            created.json()["token"]["id"]
            if created.status_code == 201
            else "0190b7a4-0000-7000-8000-000000000000"
        )
        url = url.replace("{token_id}", token_id)
    body = _body(method, path, fresh)
    if path in CONSOLE or path == "/login":
        response = caller.client.request(
            method,
            url,
            data=body if method != "GET" else None,
            headers=caller.headers,
            follow_redirects=False,
        )
    else:
        response = caller.client.request(
            method, url, json=body, headers=caller.headers, follow_redirects=False
        )
    assert response.status_code < 500, (method, path, response.status_code, response.text)
    return response.status_code


def _body(method: str, path: str, fresh: Callable[[str], str]) -> dict[str, Any] | None:
    if method == "GET" or method == "DELETE":
        return None
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/alerts/{alert_id}/acknowledge": {"note": "on it"},
        "/api/v1/alerts/{alert_id}/close": {"verdict": "benign", "reason": "done"},
        "/api/v1/alerts/{alert_id}/assign": {"assignee": "security_analyst"},
        "/api/v1/alerts/suppressions": {"rule_id": "R", "site": "plant-a", "duration": "1h", "reason": "x"},
        "/api/v1/users": {"username": f"new-{uuid.uuid4().hex[:10]}"},
        "/api/v1/users/{username}/grants": {"role": "viewer", "site": "plant-a"},
        "/users": {"username": f"new-{uuid.uuid4().hex[:10]}"},
        "/users/{username}/grants": {"role": "viewer", "site": "plant-a"},
        "/users/{username}/grants/revoke": {"role": "viewer", "site": "plant-a"},
        "/api/v1/tokens": {"name": "mine"},
        "/login": {"username": "nobody", "password": "x", "csrf_token": "x"},
        "/account/password": {"new_password": "x", "repeat": "y"},
        "/account/mfa": {"code": "000000"},
        "/api/v1/plant": {"content": PLANT_A, "source": "matrix.yaml"},
        "/api/v1/baselines/protect": {"site": "plant-a"},
        "/alerts/{alert_id}/accept-baseline": {"reason": "matrix"},
        "/api/v1/pki/tokens": {"site": "plant-a", "device": "plc-1", "zone": "cell-1"},
        "/api/v1/pki/certificates/{serial}/revoke": {"reason": "matrix"},
        "/api/v1/quarantine": {"site": "plant-a", "subject": "address:10.9.9.9", "reason": "matrix"},
        "/api/v1/quarantine/release": {"site": "plant-a", "asset": "plc-9", "reason": "matrix"},
        "/api/v1/telemetry": {
            "site": "plant-a",
            "samples": [{"ts": "2026-11-26T08:00:00Z", "device": "d", "variable": "v", "value": 1.0}],
        },
    }
    return bodies.get(path, {})


def _allowed(status: int) -> bool:
    return status not in (401, 403)


@pytest.mark.parametrize("role", ROLES)
def test_with_a_token(running: Server, role: str) -> None:
    caller = Caller(running.client, {"Authorization": f"Bearer {running.token(role)}"})
    fresh = _fresh(running)
    for (method, path), expected in EXPECTED.items():
        if path in {"/logout", "/login"}:
            continue  # console-only flows; tokens do not log in or out
        status = _request(caller, method, path, running, fresh)
        if expected == DEVICE:
            assert status in (401, 403), (role, method, path, status)
            continue
        should = expected == PUBLIC or (role in expected and path not in SESSION_ONLY)
        assert _allowed(status) == should, (role, method, path, status)
        if not should:
            assert status == 403, (role, method, path, status)


@pytest.mark.parametrize("role", ROLES)
def test_with_a_session_and_its_csrf_token(running: Server, role: str, tmp_path: Path) -> None:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        csrf = running.login(client, role)
        caller = Caller(client, {"X-CSRF-Token": csrf})
        fresh = _fresh(running)
        for (method, path), expected in EXPECTED.items():
            if path in {"/logout", "/login"}:
                continue
            status = _request(caller, method, path, running, fresh)
            if expected == DEVICE:
                assert status in (401, 403), (role, method, path, status)
                continue
            should = expected == PUBLIC or role in expected
            assert _allowed(status) == should, (role, method, path, status)
        assert client.post("/logout", headers=caller.headers, follow_redirects=False).status_code == 303
        assert client.get("/api/v1/me").status_code == 401  # the session ended


@pytest.mark.parametrize("role", ROLES)
def test_a_session_without_its_csrf_token_changes_nothing(running: Server, role: str) -> None:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        running.login(client, role)
        caller = Caller(client, {})
        fresh = _fresh(running)
        for (method, path), expected in EXPECTED.items():
            if method == "GET" or expected in (PUBLIC, DEVICE):
                continue  # (a device route takes no session: a missing CSRF token has nothing to guard)
            status = _request(caller, method, path, running, fresh)
            assert status == 403, (role, method, path, status)


def test_anonymous_callers_are_sent_to_log_in(running: Server) -> None:
    anonymous = Caller(TestClient(running.client.app), {})
    fresh = _fresh(running)
    for (method, path), expected in EXPECTED.items():
        status = _request(anonymous, method, path, running, fresh)
        if expected == PUBLIC:
            assert status != 401, (method, path, status)  # (the login form refuses a bad form token)
        elif expected == DEVICE:
            assert status in (401, 403), (method, path, status)
        elif path in CONSOLE:
            assert status == 303, (method, path, status)  # to the login page
        else:
            assert status == 401, (method, path, status)


def test_logins_and_denials_are_in_the_audit_log_and_its_chain_holds(running: Server) -> None:
    viewer = {"Authorization": f"Bearer {running.token('viewer')}"}
    assert running.client.get("/api/v1/users", headers=viewer).status_code == 403
    audit = accounts.audit_log()
    assert audit is not None
    with running.store.transaction() as session:
        actions = {(e.action, e.outcome, e.actor) for e in session.scalars(select(AuditEntry))}
        report = audit.verify(session)
    assert ("access.denied", "denied", "viewer") in actions
    assert ("accounts.token_created", "success", "test") in actions
    assert report.ok, report.problems
