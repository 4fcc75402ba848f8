"""The console's live updates (`GET /live`), over real HTTP from a uvicorn server: the alert events
of the caller's sites (and zones) as server-sent events, from the log's head or after the
`Last-Event-ID` a reconnecting browser sends; nobody else's; no stream without the right."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn

from plantwarden.accounts import services as accounts
from plantwarden.alerts import services as alerts
from plantwarden.alerts.models import Severity
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.eventlog import head_position
from plantwarden.web.app import create_app
from plantwarden.zones import services as zones
from tests.helpers import free_port, wait_for
from tests.web_support import CTX, PASSWORD, web_settings


@dataclass
class Live:
    url: str
    store: Store

    def token(self, username: str, role: str, site: str, zone: str | None = None) -> str:
        with self.store.transaction() as session:
            user, _ = accounts.create_user(session, CTX, username, password=PASSWORD)
            accounts.grant_role(session, CTX, username, role, site, zone)
            _, secret = accounts.create_token(session, CTX, user.id, "live", [], timedelta(days=1))
        return secret

    def alert(self, site: str, title: str, zone: str | None = None) -> tuple[str, int]:
        """Raise an alert; its id and the log position of its AlertRaised event."""
        with self.store.transaction() as session:
            draft = alerts.AlertDraft(
                site=site, title=title, severity=Severity.HIGH, detector="test", rule_id="R", rule_name="r",
                zone=zone,
            )  # fmt: skip
            alert_id = str(alerts.raise_alert(session, CTX, draft).id)
        with self.store.engine.connect() as connection:
            return alert_id, head_position(connection)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = web_settings(tmp_path, **{"server.live_seconds": "20"})
    store = Store.from_settings(settings[CoreSettings])
    migrate.ensure_ready(store)
    with store.transaction() as session:
        for site in ("plant-a", "plant-b"):
            zones.create_site(session, CTX, site, site)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or None, timeout=20, what="the server")
    try:
        yield Live(f"http://127.0.0.1:{port}", store)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def _events(
    response: httpx.Response, wanted: int, timeout: float = 10.0
) -> list[tuple[str, dict[str, object]]]:
    """The first `wanted` alert events of a stream: (id, data)."""
    found: list[tuple[str, dict[str, object]]] = []
    event_id, kind = "", ""
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "alert":
            found.append((event_id, json.loads(line[6:])))
            if len(found) == wanted:
                return found
        elif not line:
            kind = ""
        assert time.monotonic() < deadline, f"only {found} within {timeout} s"
    return found


def test_the_callers_sites_alerts_arrive_and_no_one_elses(live: Live) -> None:
    bearer = {"Authorization": f"Bearer {live.token('ana', 'security_analyst', 'plant-a')}"}
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", "/live", headers=bearer) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        time.sleep(0.3)  # the stream has taken the log's head
        other, _ = live.alert("plant-b", "not yours")
        mine, position = live.alert("plant-a", "yours")
        [(event_id, data)] = _events(stream, 1)
    assert data["alert_id"] == mine and data["title"] == "yours" and data["type"] == "AlertRaised"
    assert data["severity"] == "high" and data["site"] == "plant-a" and event_id == str(position)
    assert other not in json.dumps(data)


def test_a_reconnecting_browser_gets_what_it_missed(live: Live) -> None:
    token = live.token("ana", "security_analyst", "plant-a")
    _, before = live.alert("plant-a", "seen before")
    missed, _ = live.alert("plant-a", "missed")
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(before)}
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", "/live", headers=headers) as stream,
    ):
        [(_, data)] = _events(stream, 1)
    assert data["alert_id"] == missed


def test_a_right_for_one_zone_sees_that_zones_alerts_only(live: Live) -> None:
    bearer = {"Authorization": f"Bearer {live.token('olga', 'operator', 'plant-a', 'cell-1')}"}
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", "/live", headers=bearer) as stream,
    ):
        time.sleep(0.3)
        live.alert("plant-a", "cell 2", zone="cell-2")
        live.alert("plant-a", "whole site")
        mine, _ = live.alert("plant-a", "cell 1", zone="cell-1")
        [(_, data)] = _events(stream, 1)
    assert data["alert_id"] == mine


def test_no_stream_without_the_right_to_read_alerts(live: Live) -> None:
    device = {"Authorization": f"Bearer {live.token('pusher', 'telemetry_source', 'plant-a')}"}
    with httpx.Client(base_url=live.url, timeout=15) as client:
        assert client.get("/live", headers=device).status_code == 403
        assert client.get("/live").status_code in (303, 401)


def test_a_page_rendered_before_an_alert_gets_it_from_where_it_was_rendered(live: Live) -> None:
    token = live.token("ana", "security_analyst", "plant-a")
    with live.store.engine.connect() as connection:
        rendered = head_position(connection)  # what a page carries in data-after
    raised, _ = live.alert("plant-a", "between the page and its stream")
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", f"/live?after={rendered}", headers=headers) as stream,
    ):
        [(_, data)] = _events(stream, 1)
    assert data["alert_id"] == raised


@pytest.mark.parametrize("after", [str(2**63), "9" * 5000])
def test_a_position_past_what_the_log_can_hold_starts_at_its_head(live: Live, after: str) -> None:
    """Past a BIGINT, reading the log raised an OverflowError in the stream; over 4,300 digits
    int() raised a ValueError: a 500."""
    headers = {"Authorization": f"Bearer {live.token('ana', 'security_analyst', 'plant-a')}"}
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", "/live", params={"after": after}, headers=headers) as stream,
    ):
        assert stream.status_code == 200
        time.sleep(0.3)  # the stream has taken the log's head
        raised, _ = live.alert("plant-a", "after the head")
        [(_, data)] = _events(stream, 1)
    assert data["alert_id"] == raised


def test_a_last_event_id_past_the_head_starts_at_the_head(live: Live) -> None:
    """After a restore from an older backup the browser's Last-Event-ID is past the log's head:
    the stream started there and showed nothing until the log had grown past it."""
    headers = {"Authorization": f"Bearer {live.token('ana', 'security_analyst', 'plant-a')}"}
    _, head = live.alert("plant-a", "before the restore")
    headers["Last-Event-ID"] = str(head + 1000)
    with (
        httpx.Client(base_url=live.url, timeout=15) as client,
        client.stream("GET", "/live", headers=headers) as stream,
    ):
        time.sleep(0.3)  # the stream has taken the log's head
        raised, _ = live.alert("plant-a", "after the restore")
        [(_, data)] = _events(stream, 1, timeout=5)
    assert data["alert_id"] == raised
