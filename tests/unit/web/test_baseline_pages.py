"""The console's baseline pages with real requests: a sensor's tee learns plant-a (the site, the
PLC's asset and the scada-cell conduit), the PLC's scope is protected, a setpoint deviation is
raised and accepted through the services; an analyst sees each scope's state and counts and the
facts with their provenance, an auditor reads them too, a viewer is refused, an analyst of
another site sees none, and a store with nothing learned says how to learn."""

from __future__ import annotations

import html
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core.context import Context
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.live import BaselineTee
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.web import baseline_pages
from plantwarden.web.baseline_pages import KINDS, value_summary
from tests.unit.detection.baselines.batches import records, write
from tests.unit.detection.plant_models import SITE, plant_site
from tests.web_support import CTX, Server, server

PLC_SCOPE, CONDUIT_SCOPE = "asset:10.2.0.10", "conduit:scada-cell"
HOSTILE_REASON = "<script>alert(1)</script> new recipe"


def _mounted(made: Server) -> Server:
    """The pages on the test server (web/app.py mounts them: the integrator's line)."""
    app = made.client.app
    assert isinstance(app, FastAPI)
    if not any(getattr(route, "path", None) == "/baselines" for route in app.routes):
        app.include_router(baseline_pages.router)
    return made


def learn_then_deviate(made: Server) -> uuid.UUID:
    """A sensor's tee learns plant-a, the PLC's scope is protected, and a setpoint written outside
    the learned 40..40 raises a deviation; its alert's id."""
    tee = BaselineTee(made.store, CTX, SITE, None, scoper=Scoper([plant_site()]), monotonic=lambda: 0.0)
    tee.write(records([{}, write(value=40)]))
    tee.baseline.protect(SITE, PLC_SCOPE)
    tee.write(records([write(value=90)]))
    tee.close()
    with made.store.transaction() as session:
        (alert,) = session.scalars(select(Alert))
        return alert.id


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Sam analyses plant-a, Bob plant-b; Vera views plant-a; Aude audits plant-a."""
    for made in server(Path(tmp_path_factory.mktemp("baselines"))):
        _mounted(made)
        made.user("sam", "security_analyst")
        made.user("bob", "security_analyst", site="plant-b")
        made.user("vera", "viewer")
        made.user("aude", "auditor")
        alert_id = learn_then_deviate(made)
        with made.store.transaction() as session:
            services.accept_alert(
                session, Context(source="test", actor="sam"), None, alert_id, HOSTILE_REASON
            )
        yield made


def _session(running: Server, username: str) -> Iterator[TestClient]:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        running.login(client, username)
        yield client


@pytest.fixture
def sam(running: Server) -> Iterator[TestClient]:
    yield from _session(running, "sam")


def _scope_url(scope: str, site: str = SITE) -> str:
    return f"/baselines/{quote(site, safe='')}/{quote(scope, safe='')}"


def _cells(page: str, marker: str) -> list[str]:
    """The text of each cell of the table row holding `marker`."""
    rows = [row for row in re.findall(r"<tr>(.*?)</tr>", page, re.S) if marker in row]
    assert len(rows) == 1, (marker, rows)
    cells = re.findall(r"<td>(.*?)</td>", rows[0], re.S)
    return [html.unescape(" ".join(re.sub(r"<[^>]+>", "", cell).split())) for cell in cells]


def _kind_counts(running: Server, scope: str) -> Counter[str]:
    with running.store.transaction() as session:
        return Counter(fact.kind for fact in services.facts_of(session, SITE, scope))


def test_an_analyst_sees_every_scope_with_its_state_and_its_facts_by_kind(
    running: Server, sam: TestClient
) -> None:
    page = sam.get("/baselines")
    assert page.status_code == 200, page.text
    with running.store.transaction() as session:
        stored = {row.scope: row for row in services.scopes(session, SITE)}
    assert set(stored) == {"site", PLC_SCOPE, CONDUIT_SCOPE}
    assert all(f'href="{_scope_url(name)}"' in page.text for name in stored)
    plc = _cells(page.text, f">{PLC_SCOPE}<")
    protected_at = stored[PLC_SCOPE].protected_at
    assert protected_at is not None
    assert plc[1] == f"protecting since {protected_at:%Y-%m-%d %H:%M:%S}"
    counted = _kind_counts(running, PLC_SCOPE)
    assert plc[3] == str(sum(counted.values())) and int(plc[3]) >= 5
    assert plc[4 : 4 + len(KINDS)] == [str(counted[k]) if counted[k] else "" for k in KINDS]
    assert plc[-1] == "1"  # the accepted setpoint
    site = _cells(page.text, ">site<")
    assert site[1] == f"learning until {stored['site'].learning_ends:%Y-%m-%d %H:%M:%S}"
    assert site[3] == str(sum(_kind_counts(running, "site").values())) and site[-1] == ""
    conduit = _cells(page.text, f">{CONDUIT_SCOPE}<")
    assert conduit[1].startswith("learning until ") and conduit[-1] == "1"
    assert (
        page.text.index(">site<") < page.text.index(f">{CONDUIT_SCOPE}<") < page.text.index(f">{PLC_SCOPE}<")
    )
    assert "style=" not in page.text and "<script>" not in page.text  # the CSP allows neither


def test_a_scope_page_lists_its_facts_with_their_provenance(running: Server, sam: TestClient) -> None:
    page = sam.get(_scope_url(PLC_SCOPE))
    assert page.status_code == 200, page.text
    assert "<strong>protecting</strong> since" in page.text
    counted = _kind_counts(running, PLC_SCOPE)
    assert len(re.findall(r"<tr>", page.text)) - 1 == sum(counted.values())
    setpoint = _cells(page.text, "setpoint")
    assert setpoint[1] == "server 10.2.0.10, unit 1, address 100, table holding"
    assert setpoint[2] == "written 40 to 90"
    assert setpoint[6].startswith("accepted by sam at ") and setpoint[6].endswith(HOSTILE_REASON)
    assert setpoint[7] == CONDUIT_SCOPE
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    edge = _cells(page.text, ">edge<")
    assert edge[1] == "client 10.1.0.5, server 10.2.0.10, transport tcp, port 502, protocol modbus"
    assert edge[2] == "-" and edge[6] == "learned"
    assert _cells(page.text, ">polling<")[2] == "no interval measured yet"  # one read so far
    only = sam.get(_scope_url(PLC_SCOPE) + "?kind=setpoint")
    assert len(re.findall(r"<tr>", only.text)) == 2
    assert sam.get(_scope_url(PLC_SCOPE) + "?kind=nonsense").status_code == 422


def test_a_conduit_scope_holds_the_facts_between_its_zones(running: Server, sam: TestClient) -> None:
    page = sam.get(_scope_url(CONDUIT_SCOPE))
    assert page.status_code == 200, page.text
    assert "<strong>learning</strong> until" in page.text
    counted = _kind_counts(running, CONDUIT_SCOPE)
    assert len(re.findall(r"<tr>", page.text)) - 1 == sum(counted.values()) > 0
    assert f'href="{_scope_url(PLC_SCOPE)}"' in page.text  # each fact links to its asset scope
    assert sam.get(_scope_url("asset:10.9.9.9")).status_code == 404


def test_an_auditor_reads_the_baselines_with_a_token(running: Server) -> None:
    headers = {"Authorization": f"Bearer {running.token('aude')}"}
    assert f">{PLC_SCOPE}<" in running.client.get("/baselines", headers=headers).text
    assert running.client.get(_scope_url(PLC_SCOPE), headers=headers).status_code == 200


def test_a_viewer_is_refused_and_another_sites_analyst_sees_nothing(running: Server) -> None:
    for client in _session(running, "vera"):
        assert client.get("/baselines").status_code == 403
        assert client.get(_scope_url(PLC_SCOPE)).status_code == 403
    for client in _session(running, "bob"):
        page = client.get("/baselines")
        assert page.status_code == 200 and PLC_SCOPE not in page.text
        assert "Nothing learned yet" in page.text
        assert client.get(_scope_url(PLC_SCOPE)).status_code == 404
        assert client.get(f"/baselines?site={SITE}").status_code == 200


def test_nothing_learned_says_how_to_learn(tmp_path: Path) -> None:
    for made in server(tmp_path):
        _mounted(made).user("sam", "security_analyst")
        headers = {"Authorization": f"Bearer {made.token('sam')}"}
        page = made.client.get("/baselines", headers=headers)
        assert page.status_code == 200
        assert "Nothing learned yet" in page.text
        assert "plantwarden sensor run" in page.text and "plantwarden baseline learn" in page.text


@pytest.mark.parametrize(
    ("kind", "value", "summary"),
    [
        ("asset", {}, "-"),
        ("service", {"operation": "write"}, "operation write"),
        ("written_range", {"ranges": [[0, 9], [20, 20]]}, "registers 0-9, 20"),
        ("written_range:coil", {"ranges": [[5, 5]]}, "coils 5"),
        ("written_range:file", {"ranges": [[1, 2]]}, "file records 1-2"),
        ("written_range:-", {"ranges": [[7, 7]]}, "addresses 7"),
        ("polling", {"median_ns": 1_500_000_000, "intervals": 12}, "every 1.50 s (median of 12 intervals)"),
        ("polling", {}, "no interval measured yet"),
        ("setpoint", {"min": 40.0, "max": 90.5}, "written 40 to 90.5"),
        ("setpoint", {"min": 1.0, "max": 2.0, "safe": [0, 100]}, "written 1 to 2; safe range 0 to 100"),
        ("setpoint", {"max": 2.0}, '{"max": 2.0}'),  # a value the page does not know: as stored
    ],
)
def test_value_summaries(kind: str, value: dict[str, object], summary: str) -> None:
    fact, _, table = kind.partition(":")
    assert value_summary(fact, value, table or "holding") == summary
