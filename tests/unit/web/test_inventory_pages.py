"""The console's inventory pages: the asset list, one asset, the communication map; scoped to the
caller's sites, hostile text escaped, and the map of 500 assets and 2,000 edges served fast."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from plantwarden.accounts import services as accounts
from plantwarden.core.db import Store
from plantwarden.inventory import Asset, Edge, FunctionStatistics, Sighting
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.queries import AssetFilter, list_assets
from plantwarden.inventory.roles import Role, RoleGuess
from plantwarden.inventory.store import save_inventory
from tests.unit.inventory.store_support import (
    HMI,
    PLC,
    PLC_MAC,
    book_assets,
    by_ip,
    plc_role,
    polling_edge,
    polling_statistics,
    run_sightings,
)
from tests.unit.inventory.support import CELL, arp, dhcp
from tests.web_support import CTX, Server, server

START = 1_767_600_000
HOUR = 3600
STRAY = "10.0.0.99"
HOSTILE_IP, MOVER_MAC = "10.0.0.66", "02:00:00:00:00:42"
HOSTILE_VENDOR = "<script>alert(1)</script>"
HOSTILE_PRODUCT = '"><img src=x onerror=alert(1)>'
UNKNOWN_ID = "0190b7a4-0000-7000-8000-000000000000"
MAP_BYTES = 1_500_000
"""A bound that catches a pathological regression on a loaded CI host; the 1 s target itself is
measured by `python -m bench map` (docs/benchmarks.md), not asserted here."""


def _save(store: Store, site: str, sightings: list[Sighting], with_edges: bool) -> None:
    assets = [replace(a, site=site) for a in book_assets(sightings)]
    edges = [replace(polling_edge(START), site=site)] if with_edges else []
    statistics = [replace(polling_statistics(), site=site)] if with_edges else []
    roles = {by_ip(assets, PLC).id: plc_role()} if with_edges else None
    with store.transaction() as session:
        save_inventory(session, CTX, assets, edges, statistics, roles)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two sites with the HMI and PLC cell. plant-a saw two runs: the PLC's firmware changed, a
    DHCP host moved from .50 to .51, and a host reported hostile text. Ada is admin of both sites,
    Vera views plant-b only. In plant-b the HMI also polls an address no asset holds."""
    for made in server(Path(tmp_path_factory.mktemp("pages"))):
        made.user("ada", "admin", "plant-a")
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "ada", "admin", "plant-b")
        made.user("vera", "viewer", "plant-b")
        hostile = arp(
            START + 5, HOSTILE_IP, "02:00:00:00:00:66", vendor=HOSTILE_VENDOR, product_name=HOSTILE_PRODUCT
        )
        first = [*run_sightings(START), dhcp(START + 3, "10.0.0.50", MOVER_MAC), hostile]
        second = [
            *run_sightings(START + HOUR, firmware="34.01"),
            dhcp(START + HOUR + 3, "10.0.0.50", MOVER_MAC),
            dhcp(START + HOUR + 60, "10.0.0.51", MOVER_MAC),
        ]
        _save(made.store, "plant-a", first, with_edges=True)
        _save(made.store, "plant-a", second, with_edges=False)
        _save(made.store, "plant-b", run_sightings(START), with_edges=True)
        with made.store.transaction() as session:  # a server that is no asset: listed, not drawn
            save_inventory(
                session,
                CTX,
                [],
                [replace(polling_edge(START, 5, HMI, STRAY), site="plant-b")],
                [replace(polling_statistics(5, 3, HMI, STRAY), site="plant-b")],
            )
        yield made


@pytest.fixture(scope="module")
def admin(running: Server) -> Iterator[TestClient]:
    """Ada, logged in through the console's form (a session, as a browser has)."""
    with TestClient(running.client.app, base_url="http://testserver") as client:
        running.login(client, "ada")
        yield client


@pytest.fixture
def viewer(running: Server) -> Iterator[TestClient]:
    with TestClient(running.client.app) as client:
        client.headers["Authorization"] = f"Bearer {running.token('vera')}"
        yield client


def _id(running: Server, site: str, ip: str) -> str:
    with running.store.transaction() as session:
        found = list_assets(session, AssetFilter(site=site))
        return next(str(a.id) for a in found if any(i["address"] == ip for i in a.ips))


def _listed(page: str) -> list[str]:
    """The addresses linked from the asset list, in the page's order."""
    return re.findall(r'<td><a href="/assets/[0-9a-f-]+">([^<]+)</a></td>', page)


def test_the_asset_list_is_sorted_by_address_and_filtered_by_site_and_role(admin: TestClient) -> None:
    page = admin.get("/assets", params={"site": "plant-a"})
    assert page.status_code == 200 and '<a href="/assets" aria-current="page">Assets</a>' in page.text
    assert _listed(page.text) == [HMI, PLC, "10.0.0.51", HOSTILE_IP]  # numeric: .9 before .10
    assert "Rockwell Automation / 1756-L83E / 34.01" in page.text and PLC_MAC in page.text
    everything = admin.get("/assets").text
    assert _listed(everything) == [HMI, PLC, "10.0.0.51", HOSTILE_IP, HMI, PLC]
    plcs = admin.get("/assets", params={"role": "plc"}).text
    assert _listed(plcs) == [PLC, PLC] and "modbus" in plcs
    assert (
        "No assets in site plant-a with role historian"
        in admin.get("/assets", params={"site": "plant-a", "role": "historian"}).text
    )


def test_one_asset_shows_facts_role_addresses_and_function_statistics(
    running: Server, admin: TestClient
) -> None:
    page = admin.get(f"/assets/{_id(running, 'plant-a', PLC)}").text
    current = re.search(r"<tr><td>firmware</td><td>34.01</td><td>cip_identity</td><td>0.95</td>"
                        r"<td>2026-01-05 09:00:02</td><td>2026-01-05 09:00:02</td></tr>", page)  # fmt: skip
    assert current is not None, page
    assert "Earlier values" in page and "<td>firmware</td><td>33.11</td>" in page
    assert (
        "plc</span>" in page
        and "confidence 0.90" in page
        and "<li>serves Modbus/TCP to 1 client</li>" in page
    )
    assert f"<code>{PLC_MAC}</code>" in page
    assert re.search(r"<strong>server to</strong>\s*<a href=\"/assets/[0-9a-f-]+\">10.0.0.9</a>", page)
    assert "over modbus (tcp/502): 60 requests, READ;" in page
    cells = ("3", "60", "1", "0", "2", "3.0 ms", "6.0 ms", "1.00 s")  # function ... unanswered, one-way ...
    row = "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
    assert row in page
    moved = admin.get(f"/assets/{_id(running, 'plant-a', '10.0.0.51')}").text
    assert "<td>past IP</td><td><code>10.0.0.50</code></td>" in moved
    assert "No communications seen." in moved and "No role inferred yet." in moved


def test_hostile_text_is_escaped_on_every_page(running: Server, admin: TestClient) -> None:
    pages = {
        "list": admin.get("/assets").text,
        "asset": admin.get(f"/assets/{_id(running, 'plant-a', HOSTILE_IP)}").text,
        "map": admin.get("/map").text,
        "svg": admin.get("/map.svg").text,
    }
    for name, text in pages.items():
        assert "<script>alert" not in text and "<img src=x" not in text, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["list"]
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages["asset"]
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages["map"]


def test_an_unknown_or_malformed_asset_id_is_a_404_page(admin: TestClient) -> None:
    for key in (UNKNOWN_ID, "not-an-id"):
        page = admin.get(f"/assets/{key}")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "<code>asset_not_found</code>" in page.text and f"no asset {key}" in page.text


def test_a_viewer_sees_only_the_assets_of_the_sites_they_may_read(
    running: Server, viewer: TestClient
) -> None:
    listed = viewer.get("/assets").text
    assert _listed(listed) == [HMI, PLC] and "plant-a" not in listed
    hidden = viewer.get(f"/assets/{_id(running, 'plant-a', PLC)}")
    assert hidden.status_code == 404
    hmi = viewer.get(f"/assets/{_id(running, 'plant-b', HMI)}").text
    assert re.search(rf"<strong>client of</strong>\s*<code>{STRAY}</code>\s*over modbus", hmi)
    assert _listed(viewer.get("/assets", params={"site": "plant-a"}).text) == []
    drawn = viewer.get("/map").text
    assert drawn.count('class="node ') == 2 and HOSTILE_IP not in drawn
    assert "No assets in site plant-a to draw." in viewer.get("/map", params={"site": "plant-a"}).text
    assert viewer.get("/map.svg", params={"site": "plant-a"}).text.count('class="node ') == 0


def test_the_map_groups_each_site_s_segments_and_obeys_the_page_s_security_policy(admin: TestClient) -> None:
    both = admin.get("/map")
    assert both.status_code == 200 and both.text.count('class="node ') == 6
    assert 'data-group="plant-a / cell-a"' in both.text and 'data-group="plant-b / cell-a"' in both.text
    assert (
        "6 assets, 2 links (2 lines); 1 communication with an end that is no asset you may see" in both.text
    )
    one = admin.get("/map", params={"site": "plant-b"}).text
    assert f'data-group="{CELL}"' in one and 'href="/api/v1/communications?site=plant-b"' in one
    assert "style=" not in both.text and re.findall(r"<script(?![^>]*\bsrc=)", both.text) == []
    csp = both.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    alone = admin.get("/map.svg", params={"site": "plant-b"})
    assert alone.headers["content-type"].startswith("image/svg+xml") and alone.text.startswith("<svg")


def _big_plant() -> tuple[list[Asset], list[Edge], list[FunctionStatistics], dict[uuid.UUID, RoleGuess]]:
    """500 assets in one segment and 2,000 polling edges: each asset polls its next four."""
    sightings = [
        arp(START + n, f"10.1.{n // 250}.{n % 250 + 1}", f"02:00:00:00:{n // 256:02x}:{n % 256:02x}")
        for n in range(500)
    ]
    assets = [replace(a, site="plant-a") for a in book_assets(sightings)]
    ips = [f"10.1.{n // 250}.{n % 250 + 1}" for n in range(500)]
    pairs = [(ips[n % 500], ips[(n % 500 + 1 + n // 500) % 500]) for n in range(2000)]
    edges = [replace(polling_edge(START, 10, c, s), site="plant-a") for c, s in pairs]
    stats = [replace(polling_statistics(10, 3, e.client, e.server), site="plant-a") for e in edges]
    kinds = (Role.PLC, Role.HMI, Role.IT_HOST, Role.IOT_DEVICE, Role.NETWORK_DEVICE)
    roles: dict[uuid.UUID, RoleGuess] = {
        by_ip(assets, ip).id: RoleGuess(kinds[n % len(kinds)], 0.8, ("test",)) for n, ip in enumerate(ips)
    }
    return assets, edges, stats, roles


def _zone_in_blocks_of_fifty(store: Store) -> None:
    """Zones, as the plant model will set them: ten of 50 neighbouring addresses each."""
    with store.transaction() as session:
        for asset in list_assets(session, AssetFilter(limit=1000)):
            last = int(asset.ips[0]["address"].rsplit(".", 1)[1])
            block = (int(asset.ips[0]["address"].split(".")[2]) * 250 + last - 1) // 50
            session.execute(
                update(StoredAsset).where(StoredAsset.id == asset.id).values(zone=f"zone-{block}")
            )


def test_the_map_of_500_assets_and_2000_edges_is_served_whole_and_small(tmp_path: Path) -> None:
    for made in server(tmp_path):
        made.user("ada", "admin", "plant-a")
        assets, edges, stats, roles = _big_plant()
        with made.store.transaction() as session:
            save_inventory(session, CTX, assets, edges, stats, roles)
        _zone_in_blocks_of_fifty(made.store)
        with TestClient(made.client.app) as client:
            client.headers["Authorization"] = f"Bearer {made.token('ada')}"
            page = client.get("/map", params={"site": "plant-a"})
            again = client.get("/map", params={"site": "plant-a"})  # the map kept since it was drawn
        size = len(page.content)
        assert page.status_code == 200
        assert page.text.count('class="node ') == 500
        assert "500 assets, 2,000 links" in page.text and 'data-group="zone-9"' in page.text
        assert size < MAP_BYTES and again.text == page.text


def _plant_a_address(n: int) -> str:
    return f"10.1.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """plant-a with the 500 assets of `_big_plant` (every fifth a PLC), plant-b with the HMI and
    PLC cell. Ada is admin of both sites, Vera views plant-b only."""
    for made in server(Path(tmp_path_factory.mktemp("paged"))):
        made.user("ada", "admin", "plant-a")
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "ada", "admin", "plant-b")
        made.user("vera", "viewer", "plant-b")
        assets, _, _, roles = _big_plant()
        with made.store.transaction() as session:
            save_inventory(session, CTX, assets, [], [], roles)
        _save(made.store, "plant-b", run_sightings(START), with_edges=True)
        yield made


def _as(made: Server, user: str) -> TestClient:
    client = TestClient(made.client.app)
    client.headers["Authorization"] = f"Bearer {made.token(user)}"
    return client


def test_the_asset_list_comes_in_pages_of_200_in_numeric_address_order(paged: Server) -> None:
    with _as(paged, "ada") as client:
        pages = [client.get("/assets", params={"site": "plant-a", "page": n}).text for n in (1, 2, 3)]
        first = client.get("/assets", params={"site": "plant-a"}).text
    assert _listed(first) == _listed(pages[0]) == [_plant_a_address(n) for n in range(200)]
    assert _listed(pages[1]) == [_plant_a_address(n) for n in range(200, 400)]
    assert _listed(pages[2]) == [_plant_a_address(n) for n in range(400, 500)]
    assert "Assets 1&ndash;200 of 500 (page 1 of 3)" in pages[0]
    assert "Assets 201&ndash;400 of 500 (page 2 of 3)" in pages[1]
    assert "Assets 401&ndash;500 of 500 (page 3 of 3)" in pages[2]
    assert (
        '<a href="/assets?site=plant-a&amp;page=2" rel="next">' in pages[0] and 'rel="prev"' not in pages[0]
    )
    assert '<a href="/assets?site=plant-a" rel="prev">' in pages[1]
    assert '<a href="/assets?site=plant-a&amp;page=3" rel="next">' in pages[1]
    assert (
        '<a href="/assets?site=plant-a&amp;page=2" rel="prev">' in pages[2] and 'rel="next"' not in pages[2]
    )


def test_the_pages_keep_the_filters_and_count_every_visible_site(paged: Server) -> None:
    with _as(paged, "ada") as client:
        everything = client.get("/assets", params={"page": "3"}).text
        plcs = client.get("/assets", params={"site": "plant-a", "role": "plc"}).text
        every_plc = client.get("/assets", params={"role": "plc"}).text
    assert "Assets 401&ndash;502 of 502" in everything
    assert _listed(everything) == [*(_plant_a_address(n) for n in range(400, 500)), HMI, PLC]
    assert "Assets 1&ndash;100 of 100." in plcs and 'rel="next"' not in plcs
    assert _listed(plcs) == [_plant_a_address(n) for n in range(0, 500, 5)]
    assert "Assets 1&ndash;101 of 101." in every_plc  # and the PLC of plant-b, last
    assert _listed(every_plc)[-2:] == [_plant_a_address(495), PLC]
    with _as(paged, "ada") as client:
        many = client.get("/assets", params={"role": "it_host", "page": "1"}).text
        emptied = client.get("/assets", params={"role": "", "site": "plant-a", "page": "2"}).text
    assert "Assets 1&ndash;100 of 100." in many and _listed(many)[0] == _plant_a_address(2)
    assert '<a href="/assets?site=plant-a&amp;page=3" rel="next">' in emptied  # an empty filter is dropped


def test_a_bad_page_number_is_an_empty_page_with_a_link_back(paged: Server) -> None:
    with _as(paged, "ada") as client:
        for asked in ("0", "-1", "two", "4", "1e3", "99999999999999999999"):
            page = client.get("/assets", params={"site": "plant-a", "role": "plc", "page": asked})
            assert page.status_code == 200, asked
            assert _listed(page.text) == [], asked
            assert "There is no page" in page.text and "it has 1 page (100 assets)" in page.text, asked
            assert '<a href="/assets?site=plant-a&amp;role=plc">Back to the first page</a>' in page.text


def test_paging_keeps_another_site_s_assets_hidden(paged: Server) -> None:
    with _as(paged, "vera") as client:
        mine = client.get("/assets").text
        theirs = client.get("/assets", params={"site": "plant-a"}).text
        past = client.get("/assets", params={"page": "2"}).text
    assert _listed(mine) == [HMI, PLC] and "Assets 1&ndash;2 of 2." in mine and 'rel="next"' not in mine
    assert _listed(theirs) == [] and "No assets in site plant-a" in theirs and "10.1.0." not in theirs
    assert _listed(past) == [] and "it has 1 page (2 assets)" in past
