from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import Conflict, NotFound, PermissionDenied, PlantwardenError, StoreNotReady
from plantwarden.core.settings import Settings
from plantwarden.web.app import PACKAGE_DIR, create_app
from plantwarden.web.errors import status_for
from plantwarden.zones import services
from plantwarden.zones.errors import SiteNotFound
from tests.web_support import CTX, PASSWORD, web_settings


@pytest.fixture
def app_store(settings: Settings) -> Iterator[Store]:
    store = Store.from_settings(settings[CoreSettings])
    yield store
    store.close()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return web_settings(data_dir)


@pytest.fixture
def client(settings: Settings, app_store: Store) -> Iterator[TestClient]:
    migrate.ensure_ready(app_store)
    with app_store.transaction() as session:
        accounts.create_user(session, CTX, "vera", password=PASSWORD)
        accounts.grant_role(session, CTX, "vera", "viewer", "plant-a")
        user = accounts.get_user_by_name(session, "vera")
    app = create_app(settings, app_store)
    with app_store.transaction() as session:
        _, token = accounts.create_token(session, CTX, user.id, "test", [], timedelta(days=1))
    failing = APIRouter()

    @failing.get("/api/v1/_test/conflict")
    def conflict() -> None:
        raise Conflict("already there", details={"site": "plant-a"})

    @failing.get("/_test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    app.include_router(failing)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "revision": migrate.head_revision()}
    status = client.get("/api/v1/status").json()
    assert status["ready"] is True and status["store"] == "sqlite"


def test_readiness_fails_when_the_store_is_behind(settings: Settings, app_store: Store) -> None:
    migrate.upgrade(app_store, migrate.known_revisions()[0])
    with TestClient(create_app(settings, app_store)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_not_ready"
        assert client.get("/healthz").status_code == 200


def test_openapi_document_is_served_under_api_v1(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["info"]["title"] == "Plantwarden"
    assert {"/healthz", "/readyz", "/api/v1/status"} <= set(document["paths"])
    assert "/" not in document["paths"]


def test_console_shows_the_sites(client: TestClient, app_store: Store, ctx: Context) -> None:
    with app_store.transaction() as session:
        services.create_site(
            session,
            ctx,
            "plant-a",
            "Plant <A>",
        )
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "<code>plant-a</code>" in page.text
    assert "Plant &lt;A&gt;" in page.text  # escaped, never raw HTML


def test_console_assets_are_local(client: TestClient) -> None:
    page = client.get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("/", "#")) for s in sources), sources  # local, or in-page
    for asset in (s for s in sources if s.startswith("/static/")):
        assert client.get(asset).status_code == 200, asset


def test_every_vendored_file_has_its_licence_listed() -> None:
    vendor = PACKAGE_DIR / "static" / "vendor"
    listing = (vendor / "LICENSES.md").read_text()
    for path in vendor.iterdir():
        if path.name != "LICENSES.md" and not path.name.endswith(".LICENSE"):
            assert f"`{path.name}`" in listing, path.name
            assert Path(f"{vendor}/{path.stem.removesuffix('.min')}.LICENSE").exists()


def test_api_errors_are_json_in_one_model(client: TestClient) -> None:
    response = client.get("/api/v1/_test/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "conflict", "message": "already there", "details": {"site": "plant-a"}}
    }
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_console_errors_are_pages(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "not_found" in response.text


def test_unexpected_errors_hide_their_internals(client: TestClient) -> None:
    response = client.get("/_test/crash", headers={"accept": "application/json"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in response.text


def test_security_headers_are_on_every_response(client: TestClient) -> None:
    for path in ("/", "/healthz", "/static/plantwarden.css", "/missing"):
        headers = client.get(path).headers
        assert "default-src 'self'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in headers


def test_error_table_picks_the_nearest_class() -> None:
    assert status_for(SiteNotFound("x")) == 404
    assert status_for(NotFound("x")) == 404
    assert status_for(PermissionDenied("x")) == 403
    assert status_for(StoreNotReady("x")) == 503
    assert status_for(PlantwardenError("x")) == 500
