"""Malformed JSON, wrong types and oversized bodies get a 4xx with a clear message."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from tests.conftest import PostgresSchemas
from tests.web_support import CTX, PASSWORD, Server, server


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        made.user("ada", "admin")
        made.client.headers["Authorization"] = f"Bearer {made.token('ada')}"
        yield made


def test_a_token_name_of_more_than_one_line_is_refused_as_on_the_command_line(running: Server) -> None:
    answer = running.client.post("/api/v1/tokens", json={"name": "exporter\nfake line"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_token_request"
    assert error["message"].startswith("the token name 'exporter\\nfake line' holds a line break"), error


def test_malformed_json_is_a_clear_422(running: Server) -> None:
    response = running.client.post(
        "/api/v1/users", content=b'{"username": "x', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "invalid_input" and body["details"]["problems"][0]["problem"].lower().startswith(
        "json"
    )


def test_wrong_types_and_unknown_fields_are_named(running: Server) -> None:
    response = running.client.post("/api/v1/users", json={"username": 12, "admin": True})
    assert response.status_code == 422
    locations = {tuple(p["location"]) for p in response.json()["error"]["details"]["problems"]}
    assert ("body", "username") in locations and ("body", "admin") in locations


def test_oversized_bodies_are_refused_before_the_application(running: Server) -> None:
    huge = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    response = running.client.post(
        "/api/v1/users", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_a_lying_content_length_is_refused(running: Server) -> None:
    response = running.client.post(
        "/api/v1/users", content=b"{}", headers={"content-type": "application/json", "content-length": "abc"}
    )
    assert response.status_code in (400, 413)


def test_a_revoked_token_stops_working_at_once(running: Server) -> None:
    token = running.token("ada")
    headers = {"Authorization": f"Bearer {token}"}
    assert running.client.get("/api/v1/me", headers=headers).status_code == 200
    (mine,) = [
        t
        for t in running.client.get("/api/v1/tokens", headers=headers).json()
        if token.split("_")[1] == t["prefix"]
    ]
    assert running.client.delete(f"/api/v1/tokens/{mine['id']}", headers=headers).status_code == 200
    assert running.client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_scoped_token_cannot_widen_itself_or_take_over_the_account(running: Server) -> None:
    scoped = {"Authorization": f"Bearer {running.token('ada', scopes=('platform:users.read',))}"}
    assert running.client.get("/api/v1/users", headers=scoped).status_code == 200
    assert running.client.get("/api/v1/me", headers=scoped).status_code == 200
    wider = running.client.post("/api/v1/tokens", json={"name": "wider", "scopes": []}, headers=scoped)
    assert wider.status_code == 403 and wider.json()["error"]["details"]["rule"] == "token-scope"
    changed = running.client.post(
        "/account/password", data={"new_password": "x" * 20, "repeat": "x" * 20}, headers=scoped
    )
    assert changed.status_code == 403
    unscoped = {"Authorization": f"Bearer {running.token('ada')}"}
    assert (
        running.client.post(
            "/account/password", data={"new_password": "y" * 20, "repeat": "y" * 20}, headers=unscoped
        ).status_code
        == 403
    )  # account pages take a console session, never a token


@pytest.mark.parametrize("sent", ["²", "١٢", "é" * 43])
def test_a_login_csrf_token_of_other_characters_is_refused_as_a_wrong_one(running: Server, sent: str) -> None:
    with TestClient(running.client.app) as client:
        client.get("/login")  # sets the form's CSRF cookie
        form = {"username": "ada", "password": PASSWORD, "csrf_token": sent}
        answer = client.post("/login", data=form, headers={"accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 403 and "the login form expired" in answer.text


@pytest.fixture(params=["sqlite", "postgresql"])
def console(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[tuple[TestClient, str]]:
    """A console session of ada (administrator and security analyst of plant-a), with its CSRF
    token, on each backend."""
    overrides = {}
    if request.param == "postgresql":
        schemas: PostgresSchemas = request.getfixturevalue("postgres")
        overrides["database_url"], _ = schemas.url_with_schema()
    for made in server(data_dir, **overrides):
        made.user("ada", "admin")
        made.user("sam", "security_analyst")
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "ada", "security_analyst", "plant-a")
        with TestClient(made.client.app, follow_redirects=False, raise_server_exceptions=False) as client:
            yield client, made.login(client, "ada")


@pytest.mark.parametrize(
    ("address", "where"),
    [
        ("/users/a%00b", "the path"),
        ("/users/%00/unlock", "the path"),
        ("/assets?site=%00", "query parameter 'site'"),
        ("/assets?role=a%00b", "query parameter 'role'"),
        ("/map?site=%00", "query parameter 'site'"),
        ("/alerts?assignee=%00", "query parameter 'assignee'"),
        ("/alerts?a%00=1", "query parameter 'a\\x00'"),
    ],
)
def test_a_nul_character_in_the_address_is_a_clear_422(
    console: tuple[TestClient, str], address: str, where: str
) -> None:
    """PostgreSQL holds no text with a NUL: a filter or name with one failed there with a 500."""
    client, csrf = console
    method = "POST" if address.endswith("/unlock") else "GET"
    answer = client.request(method, address, headers={"x-csrf-token": csrf})
    assert answer.status_code == 422, answer.text
    assert "text/html" in answer.headers["content-type"]
    assert f"{where} holds a NUL character" in html.unescape(answer.text)


@pytest.mark.parametrize("field", ["role", "site", "zone"])
def test_a_nul_character_in_a_form_field_is_a_clear_422(console: tuple[TestClient, str], field: str) -> None:
    client, csrf = console
    form = {"role": "security_analyst", "site": "plant-a", "zone": "", field: "a\x00b", "csrf_token": csrf}
    answer = client.post("/users/sam/grants/revoke", data=form)
    assert answer.status_code == 422, answer.text
    assert f"form field '{field}' holds a NUL character" in html.unescape(answer.text)
    assert client.get("/users/sam").status_code == 200  # the session and the store are well


@pytest.mark.parametrize(
    ("address", "body", "where"),
    [
        ("/api/v1/tokens", {"name": "a\x00b", "scopes": []}, "body field 'name'"),
        ("/api/v1/baselines/protect", {"site": "\x00"}, "body field 'site'"),
        ("/api/v1/users/sam/grants", {"role": "viewer", "site": "plant-a\x00"}, "body field 'site'"),
        (
            "/api/v1/telemetry",
            {"samples": [{"series": "a\x00", "value": 1}]},
            "body field 'samples[0].series'",
        ),
        ("/api/v1/tokens", {"name": "n", "scopes": [], "a\x00": 1}, "body field 'a\\x00'"),
        ("/api/v1/tokens", "\x00", "the body"),
    ],
)
def test_a_nul_character_in_a_json_body_is_a_clear_422(
    console: tuple[TestClient, str], address: str, body: object, where: str
) -> None:
    """A token named "a\\u0000b" was a 500 on PostgreSQL (DataError on the insert)."""
    client, csrf = console
    answer = client.post(address, json=body, headers={"x-csrf-token": csrf})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"].startswith(f"{where} holds a NUL character"), answer.text


def test_an_escaped_backslash_before_u0000_is_no_nul(console: tuple[TestClient, str]) -> None:
    client, csrf = console
    answer = client.post(
        "/api/v1/tokens", json={"name": "a\\u0000b", "scopes": []}, headers={"x-csrf-token": csrf}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["token"]["name"] == "a\\u0000b"


BAD_QUERY_VALUES = ("", "\u00b2", "\u0661\u0662", "-1", str(10**30), "nan", "x" * 10_000, "9" * 5000,
                    "0001-01-01T00:00+01:00", "9999-12-31T23:59:59-01:00", "%ED%A0%80", "%00")  # fmt: skip
"""Query values that once failed a page, or might: other scripts' digits, huge numbers, times with
no UTC form, a lone surrogate (percent-encoded UTF-8) and a NUL."""


def _console_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The console's routes (those left out of the API's OpenAPI document), in included routers too."""
    for route in routes:
        if isinstance(route, APIRoute) and not route.include_in_schema:
            yield route
        elif hasattr(route, "original_router"):
            yield from _console_routes(route.original_router.routes)


def test_no_console_page_answers_bad_query_values_with_a_server_error(
    console: tuple[TestClient, str],
) -> None:
    """Every console GET route (path parameters `x`), each of its query parameters and `page` with
    each bad value, and repeated: a page or a 4xx, never a 5xx."""
    client, _ = console
    failures, asked = [], 0
    for route in _console_routes(client.app.routes):  # type: ignore[attr-defined]
        if (
            "GET" not in (route.methods or ())
            or route.path.startswith("/.well-known/")
            or route.path == "/live"
        ):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        names = sorted({*(param.alias for param in route.dependant.query_params), "page"})
        queries = [f"{name}={value}" for name in names for value in BAD_QUERY_VALUES]
        for query in [*queries, *(f"{name}=1&{name}=2" for name in names)]:
            asked += 1
            status = client.get(f"{path}?{query}").status_code
            if status >= 500:
                failures.append((path, query[:60], status))
    assert asked > 200 and not failures, failures


@pytest.mark.parametrize(
    ("address", "unknown", "known"),
    [
        ("/api/v1/alerts?sevrity=critical", "'sevrity'", "min_severity, offset, rule_id, severity, since"),
        ("/api/v1/telemetry?site=plant-a&device=d&varible=v", "'varible'", "device"),
        ("/api/v1/me?x=1&y=2", "'x', 'y'", "none"),
    ],
)
def test_an_api_query_parameter_the_operation_does_not_have_is_a_clear_422(
    console: tuple[TestClient, str], address: str, unknown: str, known: str
) -> None:
    """A misspelt filter was ignored: `?sevrity=critical` listed every alert."""
    client, _ = console
    answer = client.get(address)
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert f"has no query parameter {unknown}" in message and known in message, message


def test_the_console_pages_keep_their_own_query_parameters(console: tuple[TestClient, str]) -> None:
    client, _ = console
    assert client.get("/alerts?page=2&utm_source=mail").status_code == 200
    assert client.get("/api/v1/alerts?severity=high&limit=5").status_code == 200
