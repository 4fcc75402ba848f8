"""The baselines list a page at a time: plant-a holds 303 scopes (the site, two conduits, 300
assets), plant-b 21 whose asset scopes share plant-a's names; every page holds the next scopes in
the list's order with their facts counted for that site alone, its links keep the site filter,
each user pages through the sites they may read, and a page that is no page of the list is an
empty one with a link back to the first (`web.pagination`)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.detection.baselines.models import BaselineFact, BaselineScope
from plantwarden.web.baseline_pages import KINDS
from plantwarden.web.pagination import PAGE_SIZE
from tests.unit.web.test_baseline_pages import _mounted
from tests.web_support import CTX, Server, server

STARTED = datetime(2026, 11, 1, tzinfo=UTC)
A_ASSETS, B_ASSETS = 300, 20


def _asset(i: int) -> str:
    """asset:10.0.0.1 ... in numeric order (10.0.0.2 comes before 10.0.0.10)."""
    return f"asset:10.0.{i // 250}.{i % 250 + 1}"


def _scope(site: str, scope: str) -> BaselineScope:
    return BaselineScope(
        site=site, scope=scope, state="learning", learning_started=STARTED,
        learning_ends=STARTED + timedelta(days=7), facts=0, generation=0, updated_at=STARTED,
    )  # fmt: skip


def _fact(site: str, key: str, scope: str, conduit: str | None, source: str) -> BaselineFact:
    return BaselineFact(
        site=site, kind="service", key=key, scope=scope, conduit=conduit, value={"operation": "read"},
        first_seen=STARTED, last_seen=STARTED, count=1, source=source,
    )  # fmt: skip


def _services(i: int) -> int:
    """Plant-a's asset `i` has this many service facts, the first accepted when i % 5 == 0."""
    return i % 4 + 1


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Pat analyses plant-a, Quin plant-b, Ria both."""
    for made in server(Path(tmp_path_factory.mktemp("paging"))):
        _mounted(made)
        made.user("pat", "security_analyst")
        made.user("quin", "security_analyst", site="plant-b")
        made.user("ria", "security_analyst")
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "ria", "security_analyst", "plant-b", None)
            session.add_all(_scope("plant-a", name) for name in ("site", "conduit:c1", "conduit:c2"))
            session.add_all(_scope("plant-a", _asset(i)) for i in range(A_ASSETS))
            session.add_all(_scope("plant-b", name) for name in ["site", *map(_asset, range(B_ASSETS))])
            for i in range(A_ASSETS):
                conduit = "conduit:c1" if i % 2 == 0 else None
                for j in range(_services(i)):
                    source = "accepted" if j == 0 and i % 5 == 0 else "learned"
                    session.add(_fact("plant-a", f"a{i}-{j}", _asset(i), conduit, source))
            for i in range(B_ASSETS):  # the same scope names at plant-b, seven facts each
                session.add_all(_fact("plant-b", f"b{i}-{j}", _asset(i), None, "accepted") for j in range(7))
        yield made


def _client(running: Server, username: str) -> Iterator[TestClient]:
    with TestClient(running.client.app, base_url="http://testserver") as client:
        running.login(client, username)
        yield client


@pytest.fixture
def ria(running: Server) -> Iterator[TestClient]:
    yield from _client(running, "ria")


def _rows(page: str) -> list[list[str]]:
    """The cells of every row of the scopes' tables, in page order."""
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    cells = (re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows if "<td>" in row)
    return [[_text(cell) for cell in found] for found in cells]


def _text(cell: str) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", "", cell).split()))


def _links(page: str) -> dict[str, str]:
    """The pager's links by their `rel` (prev, next); the two pagers agree."""
    found = re.findall(r'<a href="([^"]+)" rel="(prev|next)">', page)
    links = {rel: html.unescape(href) for href, rel in found}
    assert len(found) == 2 * len(links)
    return links


def _counted(row: list[str]) -> tuple[str, int, int, int]:
    """A row's scope, its facts, its service facts and its accepted ones."""
    service = row[4 + KINDS.index("service")]
    return row[0], int(row[3]), int(service or 0), int(row[-1] or 0)


def test_page_two_holds_the_next_scopes_with_their_counts_and_keeps_the_filter(ria: TestClient) -> None:
    first = ria.get("/baselines?site=plant-a")
    assert first.status_code == 200, first.text
    rows = _rows(first.text)
    assert len(rows) == PAGE_SIZE == 200
    assert [row[0] for row in rows[:4]] == ["site", "conduit:c1", "conduit:c2", _asset(0)]
    assert "Scopes 1&ndash;200 of 303" in first.text and "(page 1 of 2)" in first.text
    assert _links(first.text) == {"next": "/baselines?site=plant-a&page=2"}
    c1 = sum(_services(i) for i in range(0, A_ASSETS, 2))
    accepted = sum(1 for i in range(0, A_ASSETS, 10))
    assert _counted(rows[1]) == ("conduit:c1", c1, c1, accepted)
    assert _counted(rows[2]) == ("conduit:c2", 0, 0, 0)

    second = ria.get("/baselines?site=plant-a&page=2")
    assert second.status_code == 200, second.text
    rows = _rows(second.text)
    assert [row[0] for row in rows] == [_asset(i) for i in range(PAGE_SIZE - 3, A_ASSETS)]
    for row, i in zip(rows, range(PAGE_SIZE - 3, A_ASSETS), strict=True):
        assert _counted(row) == (_asset(i), _services(i), _services(i), int(i % 5 == 0))
    assert "Scopes 201&ndash;303 of 303" in second.text
    assert _links(second.text) == {"prev": "/baselines?site=plant-a"}
    assert "303 scopes: 303 learning, 0 protecting; 103 on this page." in second.text
    assert "plant-b" not in "".join(re.findall(r"<h2>(.*?)</h2>", second.text))


def test_pages_run_across_sites_and_each_site_counts_its_own_facts(ria: TestClient) -> None:
    first, second = ria.get("/baselines"), ria.get("/baselines?page=2")
    assert "Scopes 1&ndash;200 of 324" in first.text and "Scopes 201&ndash;324 of 324" in second.text
    assert _links(second.text) == {"prev": "/baselines"}
    rows = _rows(second.text)
    assert len(rows) == 124 and rows[103][0] == "site" and rows[102][0] == _asset(A_ASSETS - 1)
    assert re.findall(r"<h2>(.*?)</h2>", second.text) == ["plant-a", "plant-b"]
    plant_b = {row[0]: _counted(row) for row in rows[103:]}
    assert plant_b[_asset(0)] == (_asset(0), 7, 7, 7)  # not plant-a's asset:10.0.0.1 (one fact)
    assert _counted(_rows(first.text)[3]) == (_asset(0), 1, 1, 1)


def test_each_user_pages_through_the_sites_they_may_read(running: Server) -> None:
    for client in _client(running, "pat"):
        page = client.get("/baselines?page=2")
        assert "Scopes 201&ndash;303 of 303" in page.text and "plant-b" not in page.text
    for client in _client(running, "quin"):
        page = client.get("/baselines")
        assert len(_rows(page.text)) == 21 and 'class="pager"' not in page.text  # one page
        assert "Scopes 1&ndash;21 of 21." in page.text
        assert _rows(client.get("/baselines?site=plant-a").text) == []


@pytest.mark.parametrize(
    "page", ["abc", "0", "-1", "1.5", "\u00b2", "3", "9" * 30, "9" * 5000, "0" * 5000 + "1"]
)
def test_a_page_that_is_no_page_of_the_list_is_empty_with_a_link_back(ria: TestClient, page: str) -> None:
    answer = ria.get("/baselines", params={"site": "plant-a", "page": page})
    assert answer.status_code == 200 and _rows(answer.text) == []
    text = html.unescape(" ".join(answer.text.split()))
    assert f"There is no page \u201c{page}\u201d of this list: it has 2 pages (303 scopes)." in text
    assert '<a href="/baselines?site=plant-a">Back to the first page</a>' in text
