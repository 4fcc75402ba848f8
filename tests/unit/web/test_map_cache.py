"""The communication map is drawn once per inventory version and caller's places: asked again,
it is not laid out again; a saved inventory draws it anew; a user of other places gets their own
map, never another's; and the cache keeps a bounded number of drawings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.web import inventory_pages
from plantwarden.web.map_cache import MAP_CACHE_SIZE, MapCache
from tests.unit.inventory.store_support import run_sightings
from tests.unit.inventory.support import arp
from tests.unit.web.test_inventory_pages import START, _save
from tests.web_support import CTX, Server, server


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    """Ada is admin of both sites, Vera views plant-b; each site has an HMI polling a PLC."""
    for made in server(tmp_path):
        made.user("ada", "admin", "plant-a")
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "ada", "admin", "plant-b")
        made.user("vera", "viewer", "plant-b")
        _save(made.store, "plant-a", run_sightings(START), with_edges=True)
        _save(made.store, "plant-b", run_sightings(START), with_edges=True)
        yield made


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The site of every map actually laid out and drawn."""
    drawn: list[str | None] = []
    draw = inventory_pages._draw

    def counted(session: object, actor: object, site: str | None) -> tuple[str, dict[str, int]]:
        drawn.append(site)
        return draw(session, actor, site)  # type: ignore[arg-type]

    monkeypatch.setattr(inventory_pages, "_draw", counted)
    return drawn


def _client(running: Server, username: str) -> TestClient:
    client = TestClient(running.client.app)
    client.headers["Authorization"] = f"Bearer {running.token(username)}"
    return client


def _nodes(svg: str) -> int:
    return svg.count('class="node ')


def test_an_unchanged_inventory_is_drawn_once_and_a_saved_one_anew(
    running: Server, draws: list[str | None]
) -> None:
    ada = _client(running, "ada")
    first = ada.get("/map.svg", params={"site": "plant-a"})
    assert first.status_code == 200 and _nodes(first.text) == 2
    page = ada.get("/map", params={"site": "plant-a"})
    assert ada.get("/map.svg", params={"site": "plant-a"}).text == first.text
    assert first.text in page.text  # the page inlines the same drawing
    assert draws == ["plant-a"]
    _save(running.store, "plant-a", [arp(START + 99, "10.0.0.77", "02:00:00:00:00:77")], with_edges=False)
    again = ada.get("/map.svg", params={"site": "plant-a"})
    assert _nodes(again.text) == 3 and "10.0.0.77" in again.text
    assert draws == ["plant-a", "plant-a"]
    assert _nodes(ada.get("/map.svg").text) == 5 and draws[-1] is None  # another filter: another map


def test_a_user_of_other_places_gets_their_own_map(running: Server, draws: list[str | None]) -> None:
    ada, vera = _client(running, "ada"), _client(running, "vera")
    both = ada.get("/map.svg").text
    assert _nodes(both) == 4 and 'data-group="plant-a / ' in both
    seen = vera.get("/map.svg").text
    assert _nodes(seen) == 2 and "plant-a" not in seen and "plant-b /" not in seen  # one site: unprefixed
    assert ada.get("/map.svg").text == both and vera.get("/map.svg").text == seen
    assert draws == [None, None]  # each drawn once, for its own places


def test_the_cache_keeps_the_last_drawings_used_up_to_its_size() -> None:
    cache = MapCache(size=2)
    drawn: list[str] = []

    def draw(name: str) -> tuple[str, dict[str, int]]:
        drawn.append(name)
        return f"<svg>{name}</svg>", {}

    for name in ("a", "b", "a", "c", "a", "b"):  # c evicts b (a was used since), then b evicts c
        (svg, _), _ = cache.drawing(name, lambda name=name: draw(name))  # type: ignore[misc]
        assert svg == f"<svg>{name}</svg>"
    assert drawn == ["a", "b", "c", "b"] and len(cache) == 2
    assert cache.drawing("a", lambda: draw("x"))[1] is True and drawn[-1] == "b"
    assert MAP_CACHE_SIZE <= 16  # a full-size drawing is about 3 MB
