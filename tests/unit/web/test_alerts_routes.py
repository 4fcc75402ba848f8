from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.alerts import services
from plantwarden.alerts.models import Severity
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.web.app import create_app
from tests.web_support import PASSWORD, web_settings


@pytest.fixture
def client(data_dir: Path, ctx: Context) -> Iterator[TestClient]:
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
    with store.transaction() as session:
        for number, severity in enumerate([Severity.LOW, Severity.HIGH]):
            services.raise_alert(
                session,
                ctx,
                services.AlertDraft(
                    site="plant-a",
                    title=f"<b>alert {number}</b>",
                    severity=severity,
                    detector="test",
                    rule_id=f"R{number}",
                    rule_name="rule",
                    assets=[f"10.0.0.{number}"],
                ),
            )
    with TestClient(create_app(settings, store)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client
    store.close()


def test_alerts_list_and_filters(client: TestClient) -> None:
    body = client.get("/api/v1/alerts").json()
    assert body["count"] == 2 and {a["rule_id"] for a in body["alerts"]} == {"R0", "R1"}
    high = client.get("/api/v1/alerts", params={"min_severity": "high"}).json()
    assert [a["rule_id"] for a in high["alerts"]] == ["R1"]
    assert client.get("/api/v1/alerts", params={"asset": "10.0.0.0"}).json()["count"] == 1


def test_one_alert_and_unknown_ids(client: TestClient) -> None:
    first = client.get("/api/v1/alerts").json()["alerts"][0]
    assert client.get(f"/api/v1/alerts/{first['id']}").json()["title"] == first["title"]
    missing = client.get("/api/v1/alerts/0190b7a4-0000-7000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "alert_not_found"
    malformed = client.get("/api/v1/alerts/not-a-uuid")
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_input"
    assert client.get("/api/v1/alerts", params={"limit": 0}).status_code == 422


def test_console_lists_alerts_escaped(client: TestClient) -> None:
    page = client.get("/alerts")
    assert page.status_code == 200
    assert "&lt;b&gt;alert 1&lt;/b&gt;" in page.text and "<b>alert" not in page.text
    assert "No alerts with status closed" in client.get("/alerts?status=closed").text
