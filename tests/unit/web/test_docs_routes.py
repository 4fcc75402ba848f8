"""Every server path the README and docs/ name is served: `GET /api/v1/alerts/{id}` in a doc
matches a route of the real application for that method, and a bare `/api/v1/...` path matches a
route for some method. A route renamed in the code and not in the docs fails here."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from plantwarden.web.app import create_app
from tests.docs_support import DOCUMENTS, server_paths
from tests.web_support import web_settings

MENTIONS = [found for document in DOCUMENTS for found in server_paths(document)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(web_settings(tmp_path_factory.mktemp("data")), store=None)  # type: ignore[arg-type]


def matches(app: FastAPI, method: str | None, path: str) -> bool:
    """Whether a request to `path` (placeholders such as `{id}` filled in) finds a route; with no
    method, a route for any method will do, or `path` is the start of the API's paths (`under
    /.well-known/est`)."""
    concrete = re.sub(r"\{[^}]*\}?", "x", path)
    scope = {"type": "http", "path": concrete, "root_path": "", "method": method or "GET", "headers": []}
    found = {route.matches(scope)[0] for route in app.router.routes}
    if Match.FULL in found:
        return True
    if method is not None:
        return False
    return Match.PARTIAL in found or any(p.startswith(path.rstrip("/") + "/") for p in app.openapi()["paths"])


def test_the_docs_name_many_server_paths() -> None:
    assert len(MENTIONS) > 60
    assert sum(method is not None for _, method in MENTIONS) > 30


def test_every_documented_server_path_is_served(app: FastAPI) -> None:
    wrong = [
        f"{mention.where}: {method or 'any method'} {mention.text} has no route"
        for mention, method in MENTIONS
        if not matches(app, method, mention.text)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("method", "path", "served"),
    [
        ("GET", "/api/v1/alerts/{id}", True),
        ("DELETE", "/api/v1/alerts/{id}", False),
        ("GET", "/api/v1/alert", False),
        (None, "/api/v1/pki/crl", True),
        (None, "/api/v1/no-such-thing", False),
        (None, "/.well-known/est", True),
        (None, "/.well-known/es", False),
        ("GET", "/map", True),
    ],
)
def test_the_check_tells_a_route_from_none(app: FastAPI, method: str | None, path: str, served: bool) -> None:
    assert matches(app, method, path) is served
