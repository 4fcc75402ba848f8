"""The console's overview: assets per zone, alerts over the last day, open alerts per severity and
the latest telemetry, each counted only where the caller holds the panel's action; charts as
inline SVG with the same numbers in tables; hostile names escaped."""

from __future__ import annotations

import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from plantwarden.alerts import services
from plantwarden.alerts.models import Alert, Severity
from plantwarden.core.clock import SECOND_NS
from plantwarden.core.config import CoreSettings
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.inventory.models import StoredAsset
from plantwarden.monitoring.telemetry import Sample, TelemetryIngest
from tests.web_support import CTX, Server, server

HOSTILE_ZONE = "<script>alert(1)</script>"
NOW = datetime.now(UTC)


def _asset(site: str, zone: str | None) -> StoredAsset:
    return StoredAsset(
        id=uuid.uuid4(), site=site, segment="cell", zone=zone, first_seen=NOW, last_seen=NOW,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def _alert(running: Server, site: str, zone: str | None, severity: Severity, hours_ago: float) -> Alert:
    draft = services.AlertDraft(
        site=site, title="t", severity=severity, detector="test", rule_id="R1", rule_name="rule",
        seen_at=NOW - timedelta(hours=hours_ago), zone=zone,
    )  # fmt: skip
    with running.store.transaction() as session:
        return services.raise_alert(session, CTX, draft)


def _populate(running: Server) -> None:
    """plant-a: assets 3 in cell-1, 2 in the hostile-named zone, 1 in none; open alerts: high new
    (cell-1, 2 h ago), high acknowledged (cell-1), medium new (no zone, 30 h ago: open but not of
    the last day); a closed critical and a suppressed high. plant-b: 7 assets, 5 critical alerts."""
    placed = {
        ("plant-a", "cell-1"): 3,
        ("plant-a", HOSTILE_ZONE): 2,
        ("plant-a", None): 1,
        ("plant-b", "vault"): 7,
    }
    with running.store.transaction() as session:
        session.add_all(_asset(site, zone) for (site, zone), count in placed.items() for _ in range(count))
    _alert(running, "plant-a", "cell-1", Severity.HIGH, 2)
    acknowledged = _alert(running, "plant-a", "cell-1", Severity.HIGH, 3)
    _alert(running, "plant-a", None, Severity.MEDIUM, 30)
    closed = _alert(running, "plant-a", "cell-1", Severity.CRITICAL, 2)
    hidden = _alert(running, "plant-a", "cell-1", Severity.HIGH, 2)
    for _ in range(5):
        _alert(running, "plant-b", "vault", Severity.CRITICAL, 1)
    with running.store.transaction() as session:
        services.acknowledge(session, CTX, acknowledged.id)
        services.close(session, CTX, closed.id, verdict="benign")
        session.execute(update(Alert).where(Alert.id == hidden.id).values(suppressed=True))
    settings = running.settings
    backend = open_backend(settings[CoreSettings], settings[RecordsSettings], running.store)
    now_ns = time.time_ns()
    with TelemetryIngest(backend, "test") as ingest:
        ingest.write(
            "plant-a", [Sample(now_ns - (5 - i) * SECOND_NS, "tank-1", "level", 40.0 + i) for i in range(5)]
        )
        ingest.write("plant-b", [Sample(now_ns - SECOND_NS, "vault-plc", "secret", 1.0)])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Vera views plant-a; Zoe views cell-1 of plant-a only; Ada administers plant-a (reads
    sites, not alerts); Aude audits plant-a (reads everything, telemetry too), Abel plant-c, where
    nothing is yet."""
    for made in server(Path(tmp_path_factory.mktemp("overview"))):
        made.user("vera", "viewer", "plant-a")
        made.user("zoe", "viewer", "plant-a", "cell-1")
        made.user("ada", "admin", "plant-a")
        made.user("aude", "auditor", "plant-a")
        made.user("abel", "auditor", "plant-c")
        _populate(made)
        yield made


def _page(running: Server, username: str) -> str:
    with TestClient(running.client.app) as client:
        running.login(client, username)
        page = client.get("/")
    assert page.status_code == 200, page.text
    return page.text


def _section(text: str, section: str) -> str:
    found = re.search(rf'<section class="panel" id="{section}">(.*?)</section>', text, re.S)
    assert found is not None, text
    return found[1]


def _table(text: str, section: str) -> dict[str, list[str]]:
    """The data table of a panel: the row header's text -> the cells' texts."""
    rows = re.findall(
        r'<tr>(?:<td>([^<]*)</td>)?<th scope="row">(.*?)</th>(.*?)</tr>', _section(text, section), re.S
    )
    return {
        (f"{before} / " if before else "") + head: [
            re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", cells)
        ]
        for before, head, cells in rows
    }


def _svgs(text: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed: each must be well-formed XML."""
    return [ET.fromstring(found) for found in re.findall(r"<svg .*?</svg>", text, re.S)]  # noqa: S314 (our own output)


def test_a_viewer_sees_the_counts_of_their_site_only(running: Server) -> None:
    text = _page(running, "vera")
    assert _table(text, "open-alerts") == {
        "critical": ["0", "0", "0"], "high": ["1", "1", "2"], "medium": ["1", "0", "1"],
        "low": ["0", "0", "0"], "info": ["0", "0", "0"],
    }  # fmt: skip
    hours = _table(text, "alerts-over-time")  # columns: info, low, medium, high, critical, all
    assert len(hours) == 24
    two, three = ((NOW - timedelta(hours=h)).strftime("%Y-%m-%d %H:00") for h in (2, 3))
    assert hours[two] == ["0", "0", "0", "1", "1", "2"]  # the closed critical was seen: it counts
    assert hours[three] == ["0", "0", "0", "1", "0", "1"]
    assert sum(int(cells[-1]) for cells in hours.values()) == 3  # not the suppressed, not the 30 h old
    assert _table(text, "assets-per-zone") == {
        "plant-a / cell-1": ["3"],
        "plant-a / &lt;script&gt;alert(1)&lt;/script&gt;": ["2"],
        "plant-a / no zone": ["1"],
    }
    assert "vault" not in text and "<script>alert" not in text
    assert "You may not read telemetry" in _section(text, "process-trends")


def test_the_charts_are_accessible_svg_with_links_to_the_lists(running: Server) -> None:
    text = _page(running, "vera")
    charts = _svgs(text)
    titles = [chart.find("{http://www.w3.org/2000/svg}title") for chart in charts]
    assert [t.text for t in titles if t is not None] == [
        "Open alerts by severity, new and acknowledged",
        "Alerts first seen per hour over the last 24 hours, by severity",
        "Assets per zone",
    ]
    assert all(chart.get("aria-labelledby") == f"{chart.get('id')}-title" for chart in charts)
    open_alerts = _section(text, "open-alerts")
    assert (
        '<a href="/alerts?severity=high&amp;status=acknowledged" aria-label="high, acknowledged: 1 alerts">'
        in open_alerts
    )
    assert 'href="/assets?site=plant-a"' in _section(text, "assets-per-zone")


def test_a_zone_viewer_counts_their_zone_only(running: Server) -> None:
    text = _page(running, "zoe")
    assert _table(text, "assets-per-zone") == {"plant-a / cell-1": ["3"]}
    assert _table(text, "open-alerts")["high"] == ["1", "1", "2"]
    assert _table(text, "open-alerts")["medium"] == ["0", "0", "0"]  # in no zone: not hers


def test_an_administrator_sees_assets_but_no_alerts(running: Server) -> None:
    text = _page(running, "ada")
    assert _table(text, "assets-per-zone")["plant-a / cell-1"] == ["3"]
    assert "You may not read alerts" in _section(text, "open-alerts")
    assert "You may not read alerts" in _section(text, "alerts-over-time")
    assert "critical" not in text


def test_an_auditor_sees_the_telemetry_of_their_site(running: Server) -> None:
    trends = _section(_page(running, "aude"), "process-trends")
    assert "tank-1 <strong>level</strong>" in trends and "vault-plc" not in trends
    values = re.findall(r"<tr><td>[^<]+</td><td>([^<]+)</td></tr>", trends)
    assert values == ["40", "41", "42", "43", "44"]
    assert '<span class="last">44</span>' in trends
    assert len(re.findall("<polyline ", trends)) == 1


def test_empty_panels_say_what_to_do(running: Server) -> None:
    text = _page(running, "abel")
    assert "No open alerts" in _section(text, "open-alerts")
    assert "No alerts first seen since" in _section(text, "alerts-over-time")
    assert "No assets yet" in _section(text, "assets-per-zone")
    assert "plantwarden telemetry subscribe --broker HOST:PORT --site SITE" in _section(
        text, "process-trends"
    )
    assert "<svg" not in text
