from __future__ import annotations

import re
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
from tests.web_support import PASSWORD, server, web_settings


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
    closed = client.get("/alerts?status=closed").text
    assert "No alerts with status closed" in closed
    # live updates add new alerts to the unfiltered list only, and need its table even when empty
    assert "<table data-live-alerts>" in page.text and "<table data-live-alerts>" not in closed


def test_an_empty_alerts_page_has_the_table_that_live_updates_fill(data_dir: Path) -> None:
    # the first alert of a new plant comes after the page is open: the page's script adds its
    # row to this table (the demo's browser test waits for it)
    for running in server(data_dir):
        running.user("nia", "viewer")
        running.login(running.client, "nia")
        page = running.client.get("/alerts").text
    table = re.search(r"<table data-live-alerts>.*?<tbody>(.*?)</tbody>", page, re.S)
    assert table is not None, page
    assert 'class="empty-row"' in table[1] and "No alerts yet" in table[1]


def test_filters_close_with_a_verdict_and_the_alert_page(client: TestClient) -> None:
    assert client.get("/api/v1/alerts", params={"severity": "low"}).json()["count"] == 1
    assert client.get("/api/v1/alerts", params={"verdict": "benign"}).json()["count"] == 0
    body = client.get("/api/v1/alerts", params={"technique": "T0855"}).json()
    assert (body["count"], body["suppressed"]) == (0, 0)
    first = client.get("/api/v1/alerts").json()["alerts"][0]
    refused = client.post(f"/api/v1/alerts/{first['id']}/close", json={"verdict": "benign"})
    assert refused.status_code == 403  # a viewer does not close
    page = client.get(f"/alerts/{first['id']}")
    assert page.status_code == 200 and "nobody" in page.text and first["rule_id"] in page.text
    assert client.get("/alerts/0190b7a4-0000-7000-8000-000000000000").status_code == 404
    assert client.get("/alerts", params={"severity": "dire"}).status_code == 422
    listed = client.get("/alerts", params={"severity": "high", "rule": "", "since": "2000-01-01"})
    assert listed.status_code == 200 and "alert 1" in listed.text and "alert 0" not in listed.text


def test_evidence_pcap_without_a_pointer_or_a_ring_is_not_found(client: TestClient) -> None:
    first = client.get("/api/v1/alerts").json()["alerts"][0]
    missing = client.get(f"/api/v1/alerts/{first['id']}/evidence.pcap")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "evidence_not_kept"
    assert "has 0 pcap evidence item(s)" in missing.json()["error"]["message"]


def test_evidence_pcap_is_cut_from_the_sensor_ring(client: TestClient, data_dir: Path, ctx: Context) -> None:
    from plantwarden.capture.evidence import EvidenceRing
    from plantwarden.capture.pcap import read_capture
    from plantwarden.sim.traffic.generator import generate

    capture = data_dir / "plant.pcap"
    generate(capture, seed=7, packets=3000)
    with EvidenceRing(data_dir / "evidence" / "plant-a" / "cell-1") as ring:
        for batch in read_capture(capture, batch_size=500):
            ring.add(batch)
        times = sorted(int(t) for s in [ring.segments()] for seg in s for t in (seg.first_ns, seg.last_ns))
    since, until = times[0], times[-1] + 1
    kept = {"kind": "pcap", "site": "plant-a", "segment": "cell-1", "hosts": [], "since_ns": since}
    gone = kept | {"since_ns": since - 10**9 - 1, "until_ns": until}  # more than the second of margin
    margin = kept | {"since_ns": since - 10**9, "until_ns": until}  # a detector's pointer: 1 s early
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    with store.transaction() as session:
        drafted = services.AlertDraft(
            site="plant-a", title="t", severity=Severity.LOW, detector="test", rule_id="R", rule_name="r",
            evidence=[kept | {"until_ns": until}, gone, margin],
        )  # fmt: skip
        alert_id = services.raise_alert(session, ctx, drafted).id
    with EvidenceRing(data_dir / "evidence" / "plant-a" / "cell-1", readonly=True) as ring:
        expected = ring.slice(since, until)
    sliced = client.get(f"/api/v1/alerts/{alert_id}/evidence.pcap")
    assert sliced.status_code == 200 and sliced.content == expected and len(expected) > 10_000
    assert sliced.headers["content-type"] == "application/vnd.tcpdump.pcap"
    older = client.get(f"/api/v1/alerts/{alert_id}/evidence.pcap", params={"item": 1})
    assert older.status_code == 404 and "no longer holds the packets" in older.json()["error"]["message"]
    early = client.get(f"/api/v1/alerts/{alert_id}/evidence.pcap", params={"item": 2})
    assert early.status_code == 200 and early.content == expected
    page = client.get(f"/alerts/{alert_id}")
    assert "plantwarden sensor evidence --site plant-a --segment cell-1" in page.text
