"""The inventory routes of the JSON API: assets and communications, scoped to the caller's sites."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.inventory.store import save_inventory
from plantwarden.web.app import create_app
from tests.unit.inventory.store_support import (
    HMI,
    PLC,
    book_assets,
    by_ip,
    plc_role,
    polling_edge,
    polling_statistics,
    run_sightings,
)
from tests.web_support import PASSWORD, web_settings

START = 1_767_600_000


@pytest.fixture
def client(data_dir: Path, ctx: Context) -> Iterator[TestClient]:
    """Vera may view plant-a only; the store holds plant-a's cell and the same cell in plant-b."""
    settings = web_settings(data_dir)
    store = Store.from_settings(settings[CoreSettings])
    migrate.ensure_ready(store)
    with store.transaction() as session:
        accounts.create_user(session, ctx, "vera", password=PASSWORD)
        accounts.grant_role(session, ctx, "vera", "viewer", "plant-a")
        user = accounts.get_user_by_name(session, "vera")
        _, token = accounts.create_token(
            session, Context(source="test"), user.id, "test", [], timedelta(days=1)
        )
    for site in ("plant-a", "plant-b"):
        assets = [replace(a, site=site) for a in book_assets(run_sightings(START))]
        with store.transaction() as session:
            save_inventory(
                session,
                ctx,
                assets,
                [replace(polling_edge(START), site=site)],
                [replace(polling_statistics(), site=site)],
                {by_ip(assets, PLC).id: plc_role()},
            )
    with TestClient(create_app(settings, store)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client
    store.close()


def test_assets_are_listed_and_filtered_within_the_caller_s_sites(client: TestClient) -> None:
    body = client.get("/api/v1/assets").json()
    assert body["count"] == 2 and {a["site"] for a in body["assets"]} == {"plant-a"}
    plcs = client.get("/api/v1/assets", params={"role": "plc"}).json()["assets"]
    assert [a["ips"][0]["address"] for a in plcs] == [PLC]
    firmware = plcs[0]["facts"]["firmware"]
    assert (firmware["value"], firmware["source"], firmware["first_seen"]) == (
        "33.11",
        "cip_identity",
        "2026-01-05T08:00:02Z",
    )
    assert plcs[0]["role_evidence"][0] == "serves Modbus/TCP to 1 client"
    assert client.get("/api/v1/assets", params={"vendor": "ROCKWELL"}).json()["count"] == 1
    assert client.get("/api/v1/assets", params={"site": "plant-b"}).json()["count"] == 0
    assert client.get("/api/v1/assets", params={"limit": 0}).status_code == 422


def test_one_asset_by_id_or_ip_and_unknown_ones(client: TestClient) -> None:
    plc = client.get(f"/api/v1/assets/{PLC}").json()
    assert plc["site"] == "plant-a" and plc["server_protocols"] == ["modbus"]
    assert client.get(f"/api/v1/assets/{plc['id']}").json()["ips"] == plc["ips"]
    hidden = client.get("/api/v1/assets", params={"site": "plant-b"})
    assert hidden.json()["assets"] == []
    other = client.get(f"/api/v1/assets/{PLC}", params={"site": "plant-b"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "asset_not_found"
    missing = client.get("/api/v1/assets/0190b7a4-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    assert client.get("/api/v1/assets/10.9.9.9").status_code == 404
    malformed = client.get("/api/v1/assets/plc-1")
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_input"


def test_communications_carry_their_function_statistics(client: TestClient) -> None:
    body = client.get("/api/v1/communications").json()
    assert body["count"] == 1
    [edge] = body["communications"]
    assert (edge["site"], edge["client"], edge["server"], edge["protocol"]) == ("plant-a", HMI, PLC, "modbus")
    assert edge["services"] == [[6, 502]]
    [function] = edge["functions"]
    assert (function["function"], function["requests"], function["response_median_ns"]) == (3, 60, 3_000_000)
    plc = client.get(f"/api/v1/assets/{PLC}").json()
    assert client.get("/api/v1/communications", params={"asset": plc["id"]}).json()["count"] == 1
    assert client.get("/api/v1/communications", params={"protocol": "s7comm"}).json()["count"] == 0
