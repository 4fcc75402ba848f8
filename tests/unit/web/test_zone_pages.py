"""The console's zone pages: the Riverside plant model applied, two open zone violations raised
(and a closed one), a small inventory saved; the map, the zone and violation tables, a conduit
with its channels and its traffic marked covered or not, scoped to the caller's sites and zones,
with hostile names escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, close, raise_alert
from plantwarden.core.records.schema import Protocol
from plantwarden.inventory import Edge
from plantwarden.inventory.store import save_inventory
from plantwarden.zones.applied import apply_plant
from tests.unit.inventory.store_support import book_assets
from tests.unit.inventory.support import S, arp
from tests.web_support import CTX, Server, server

PLANT = Path(__file__).parents[3] / "examples" / "riverside" / "plant.yaml"
SITE, SEGMENT = "riverside", "default"
START = 1_767_600_000
HOSTILE_ZONE = "<script>alert(1)</script>"
HOSTILE_CONDUIT = '"><img src=x onerror=alert(1)>'
HMI, ENG, HISTORIAN, STRANGER = "127.10.1.10", "127.10.1.20", "127.10.1.30", "127.10.1.99"
TANK_1, TANK_2, MIXER, BOILER, BROKER = (
    "127.10.2.11",
    "127.10.2.12",
    "127.10.3.12",
    "127.10.3.13",
    "127.10.1.40",
)
OUTSIDER = "198.51.100.7"


def _hostile_plant() -> bytes:
    """Riverside, with a zone and a conduit named to break out of the page."""
    text = PLANT.read_text()
    text = text.replace("name: Control cell A", f"name: '{HOSTILE_ZONE}'")
    text = text.replace("name: Supervisory to the control cells", f"name: '{HOSTILE_CONDUIT}'")
    return text.encode()


def _violation(
    rule: str, src: str, dst: str, zones: tuple[str | None, str | None], operation: str, **more: str
) -> AlertDraft:
    """An alert as the zone check raises it: a summary first in the evidence."""
    summary = {
        "kind": "zone-check", "rule": rule, "records": 12, "segment": SEGMENT, "src": src, "dst": dst,
        "src_zone": zones[0], "dst_zone": zones[1], "protocol": "modbus", "transport": "tcp", "port": 502,
        "conduit": more.get("conduit"), "channel": more.get("channel"),
    }  # fmt: skip
    return AlertDraft(
        site=SITE,
        title=f"{rule}: {src} -> {dst} ({operation})",
        severity=Severity.HIGH,
        detector="detection.segmentation",
        rule_id=rule,
        rule_name=rule,
        assets=[src, dst],
        evidence=[summary],
        dedup_key="|".join((rule, SITE, SEGMENT, src, dst, operation, "2026-01-05T08:00:00Z")),
        seen_at=datetime.fromtimestamp(START, UTC),
        zone=zones[1] or zones[0],
    )


def _edge(
    client: str, server: str, operations: set[str], protocol: Protocol = Protocol.MODBUS, port: int = 502
) -> Edge:
    return Edge(
        site=SITE, segment=SEGMENT, client=client, server=server, protocol=protocol,
        operations=frozenset(operations), requests=40, first_ns=START * S, last_ns=(START + 39) * S,
        flows=1, packets=160, bytes=9000, services=((6, port),),
    )  # fmt: skip


def _populate(made: Server) -> None:
    with made.store.transaction() as session:
        apply_plant(session, CTX, _hostile_plant(), "examples/riverside/plant.yaml")
        operation = ("supervisory", "cell-b")
        raise_alert(session, CTX, _violation("zone.operation-not-allowed", HMI, BOILER, operation, "write",
                                             conduit="supervisory-cells", channel="hmi-polling"))  # fmt: skip
        raise_alert(
            session, CTX, _violation("zone.no-conduit", OUTSIDER, TANK_1, ("internet", "cell-a"), "read")
        )
        closed = raise_alert(
            session, CTX, _violation("zone.no-conduit", OUTSIDER, MIXER, ("internet", "cell-b"), "read")
        )
        close(session, CTX, closed.id, "the pen tester's scan", verdict="benign")
        hosts = [HMI, ENG, STRANGER, TANK_1, TANK_2, BOILER]
        assets = book_assets(
            [arp(START + n, ip, f"02:00:00:00:01:{n:02x}", segment=SEGMENT) for n, ip in enumerate(hosts)]
        )
        edges = [
            _edge(HMI, TANK_1, {"READ"}),  # hmi-polling
            _edge(HMI, BOILER, {"READ", "WRITE"}),  # hmi-polling allows reads only
            _edge(ENG, MIXER, {"READ", "PROGRAM"}),  # engineering, in the weekend window only
            _edge(STRANGER, TANK_2, {"READ"}),  # no channel names that client
            _edge(TANK_1, BROKER, {"WRITE"}, Protocol.MQTT, 1883),  # telemetry
            _edge(TANK_1, TANK_2, {"READ"}),  # inside cell-a: crosses no conduit
        ]
        save_inventory(session, CTX, assets, edges, [])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Vera views Riverside; Otto views another site; Adam administers Riverside (reads sites,
    not alerts); Cleo views cell B of Riverside only."""
    for made in server(Path(tmp_path_factory.mktemp("zones"))):
        made.user("vera", "viewer", SITE)
        made.user("otto", "viewer", "plant-b")
        made.user("adam", "admin", SITE)
        made.user("cleo", "viewer", SITE, "cell-b")
        _populate(made)
        yield made


def _client(running: Server, username: str) -> TestClient:
    client = TestClient(running.client.app)
    client.headers["Authorization"] = f"Bearer {running.token(username)}"
    return client


@pytest.fixture(scope="module")
def vera(running: Server) -> Iterator[TestClient]:
    with _client(running, "vera") as client:
        yield client


def _svg(text: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", text, re.S)
    assert found is not None, text
    return ET.fromstring(found[0])  # noqa: S314 (our own output, checked for being well-formed)


def _zones_drawn(svg: ET.Element) -> dict[str, ET.Element]:
    ns = "{http://www.w3.org/2000/svg}"
    return {g.attrib["data-zone"]: g for g in svg.iter(f"{ns}g") if "data-zone" in g.attrib}


def _conduits_drawn(svg: ET.Element) -> dict[str, ET.Element]:
    ns = "{http://www.w3.org/2000/svg}"
    return {g.attrib["data-conduit"]: g for g in svg.iter(f"{ns}g") if "data-conduit" in g.attrib}


def _text_of(element: ET.Element) -> str:
    return " ".join(t for t in element.itertext())


def test_the_map_draws_every_zone_and_conduit_with_assets_and_violations(vera: TestClient) -> None:
    page = vera.get("/zones")
    assert page.status_code == 200, page.text
    svg = _svg(page.text)
    zones = _zones_drawn(svg)
    assert set(zones) == {"internet", "enterprise", "supervisory", "cell-a", "cell-b"}
    assert set(_conduits_drawn(svg)) == {"supervisory-cells", "plant-services", "enterprise-internet"}
    assert "assets: 5 declared, 3 seen" in _text_of(zones["supervisory"])  # hmi, eng-ws, stranger
    assert "assets: 3 declared, 1 seen" in _text_of(zones["cell-b"])  # seen: the boiler
    assert "1 open violation" in _text_of(zones["cell-b"]) and "1 open violation" in _text_of(
        zones["internet"]
    )
    assert "0 open violations" in _text_of(zones["enterprise"])
    assert "supervisory-cells (4 channels)" in _text_of(_conduits_drawn(svg)["supervisory-cells"])
    assert 'href="/conduits/supervisory-cells?site=riverside"' in page.text
    assert "no conduit: 1 open violation" in page.text  # internet - cell-a, dashed
    assert "style=" not in page.text and re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []


def test_the_zone_and_violation_tables(vera: TestClient) -> None:
    page = vera.get("/zones", params={"site": SITE}).text
    assert "<td>SL-T (IAC 3, UC 3, SI 3, DC 2, RDF 3, TRE 2, RA 3)</td>" in page
    assert "<td>127.10.3.0/24</td>" in page
    rows = re.findall(r"<tr>\s*<td><code>(zone\.[a-z-]+)</code></td>(.*?)</tr>", page, re.S)
    assert [rule for rule, _ in rows] == [
        "zone.no-conduit",
        "zone.operation-not-allowed",
    ]  # seen at once: newest id first
    text = dict(rows)
    assert f"<code>{HMI}</code> (supervisory)" in text["zone.operation-not-allowed"]
    assert f"<code>{BOILER}</code> (cell-b)" in text["zone.operation-not-allowed"]
    assert "<td>write (modbus)</td>" in text["zone.operation-not-allowed"]
    assert "<td>2026-01-05 08:00:00</td>" in text["zone.no-conduit"]
    assert re.search(r'href="/api/v1/alerts/[0-9a-f-]{36}"', text["zone.no-conduit"])
    assert MIXER not in page  # the closed alert is no open violation


def test_the_conduit_page_lists_channels_and_traffic_marked_covered_or_not(vera: TestClient) -> None:
    page = vera.get("/conduits/supervisory-cells", params={"site": SITE})
    assert page.status_code == 200, page.text
    text = page.text
    for channel in ("hmi-polling", "historian-polling", "engineering", "telemetry"):
        assert f"<td><code>{channel}</code></td>" in text
    assert "maintenance weekend-maintenance: sat, sun 06:00-18:00" in text
    assert "supervisory \u2192 cell-a, cell-b" in text and "<td>tcp/1883</td>" in text
    ip = r"<code>([\d.]+)</code>"
    row = rf'<tr class="(covered|uncovered)">\s*<td>.*?</td>\s*<td>{ip}.*?<td>{ip}'
    rows = {(m[1], m[2]): m[0] for m in re.findall(row, text, re.S)}
    assert rows == {
        (HMI, TANK_1): "covered",
        (ENG, MIXER): "covered",
        (TANK_1, BROKER): "covered",
        (HMI, BOILER): "uncovered",
        (STRANGER, TANK_2): "uncovered",
    }
    assert "5 communications, 2 not covered by a channel" in text
    assert "supervisory-cells/hmi-polling: operations not allowed: write" in text
    assert "no channel allows it" in text and "program only in weekend-maintenance" in text
    assert "zone.operation-not-allowed" in text and "zone.no-conduit" not in text


def test_another_site_s_viewer_sees_nothing_of_this_site(running: Server) -> None:
    with _client(running, "otto") as otto:
        page = otto.get("/zones").text
        assert "The plant model in force names no site you may read." in page and "<svg" not in page
        assert (
            "No site riverside in the plant model in force that you may read."
            in otto.get("/zones", params={"site": SITE}).text
        )
        hidden = otto.get("/conduits/supervisory-cells", params={"site": SITE})
        assert hidden.status_code == 404 and "conduit_not_found" in hidden.text
        assert otto.get("/zones.svg", params={"site": SITE}).status_code == 404
        for text in (page, hidden.text):
            assert HMI not in text and "cell-a" not in text


def test_a_zone_viewer_sees_only_their_zone_and_its_conduits(running: Server) -> None:
    with _client(running, "cleo") as cleo:
        page = cleo.get("/zones").text
        svg = _svg(page)
        assert set(_zones_drawn(svg)) == {"cell-b"} and _conduits_drawn(svg) == {}
        assert "zone.operation-not-allowed" in page and "zone.no-conduit" not in page
        conduit = cleo.get("/conduits/supervisory-cells").text
        assert f"<code>{BOILER}</code>" in conduit and TANK_1 not in conduit and TANK_2 not in conduit
        assert cleo.get("/conduits/enterprise-internet").status_code == 404


def test_an_administrator_reads_zones_but_no_violations(running: Server) -> None:
    with _client(running, "adam") as adam:
        page = adam.get("/zones").text
        assert "Violations are alerts, which you may not read." in page
        assert (
            "zone.no-conduit" not in page and "0 open violations" in page and "1 open violation<" not in page
        )


def test_hostile_names_are_escaped_and_the_svg_parses(vera: TestClient) -> None:
    page = vera.get("/zones").text
    conduit = vera.get("/conduits/supervisory-cells").text
    alone = vera.get("/zones.svg", params={"site": SITE})
    for text in (page, conduit, alone.text):
        assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in conduit
    assert alone.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(alone.text)  # noqa: S314 (our own output, checked for being well-formed)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and HOSTILE_ZONE in _text_of(root)


def test_without_a_plant_model_the_page_says_how_to_apply_one(tmp_path: Path) -> None:
    for made in server(tmp_path):
        made.user("vera", "viewer", SITE)
        with _client(made, "vera") as client:
            page = client.get("/zones")
            assert page.status_code == 200
            assert "<code>plantwarden plant apply plant.yaml</code>" in page.text
            missing = client.get("/zones.svg")
            assert missing.status_code == 404 and "plantwarden plant apply plant.yaml" in missing.text
            assert client.get("/conduits/supervisory-cells").status_code == 404


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Riverside with 250 covered reads of the HMI into cell A, 30 reads of a stranger into cell A
    (no channel names that client) and 5 covered reads of the HMI into cell B; 55 open violations
    of the HMI writing into cell A. Vera views Riverside; Cleo views cell B only."""
    for made in server(Path(tmp_path_factory.mktemp("busy"))):
        made.user("vera", "viewer", SITE)
        made.user("cleo", "viewer", SITE, "cell-b")
        edges = [
            *(_edge(HMI, f"127.10.2.{n}", {"READ"}) for n in range(1, 251)),
            *(_edge(STRANGER, f"127.10.2.{n}", {"READ"}) for n in range(1, 31)),
            *(_edge(HMI, f"127.10.3.{n}", {"READ"}) for n in range(101, 106)),
        ]
        with made.store.transaction() as session:
            apply_plant(session, CTX, PLANT.read_bytes(), "examples/riverside/plant.yaml")
            save_inventory(session, CTX, [], edges, [])
            for n in range(1, 56):  # 55 open violations on the conduit
                target = f"127.10.2.{n}"
                zones = ("supervisory", "cell-a")
                draft = _violation("zone.operation-not-allowed", HMI, target, zones, "write",
                                   conduit="supervisory-cells", channel="hmi-polling")  # fmt: skip
                raise_alert(session, CTX, draft, rate_limit=100)
        yield made


def _traffic_rows(text: str) -> list[tuple[str, str, str]]:
    ip = r"<code>([\d.]+)</code>"
    return re.findall(rf'<tr class="(covered|uncovered)">\s*<td>.*?</td>\s*<td>{ip}.*?<td>{ip}', text, re.S)


def test_the_conduit_s_traffic_comes_in_pages_with_counts_over_all_of_it(busy: Server) -> None:
    with _client(busy, "vera") as client:
        first = client.get("/conduits/supervisory-cells", params={"site": SITE}).text
        second = client.get("/conduits/supervisory-cells", params={"site": SITE, "page": "2"}).text
    for text in (first, second):
        assert "285 communications, 30 not covered by a channel" in text
    one, two = _traffic_rows(first), _traffic_rows(second)
    assert len(one) == 200 and len(two) == 85 and not set(one) & set(two)
    assert [row[0] for row in one[:30]] == ["uncovered"] * 30 and one[30][0] == "covered"
    assert {row[0] for row in two} == {"covered"} and {row[1] for row in one[:30]} == {STRANGER}
    assert "Communications 1&ndash;200 of 285 (page 1 of 2)" in first
    assert "Communications 201&ndash;285 of 285 (page 2 of 2)" in second
    assert '<a href="/conduits/supervisory-cells?site=riverside&amp;page=2" rel="next">' in first
    assert '<a href="/conduits/supervisory-cells?site=riverside" rel="prev">' in second


def test_a_bad_conduit_page_is_empty_with_a_link_back(busy: Server) -> None:
    with _client(busy, "vera") as client:
        for asked in ("0", "-2", "last", "3"):
            page = client.get("/conduits/supervisory-cells", params={"page": asked})
            assert page.status_code == 200 and _traffic_rows(page.text) == [], asked
            assert "285 communications, 30 not covered by a channel" in page.text
            assert "There is no page" in page.text and "it has 2 pages" in page.text
            assert '<a href="/conduits/supervisory-cells">Back to the first page</a>' in page.text


def test_a_zone_viewer_s_pages_count_only_their_zone_s_traffic(busy: Server) -> None:
    with _client(busy, "cleo") as client:
        page = client.get("/conduits/supervisory-cells").text
    assert "5 communications, 0 not covered by a channel" in page and 'rel="next"' not in page
    assert sorted(row[2] for row in _traffic_rows(page)) == [f"127.10.3.{n}" for n in range(101, 106)]
    assert "127.10.2." not in page


def test_the_conduit_page_lists_the_50_latest_violations_and_counts_all(busy: Server) -> None:
    with _client(busy, "vera") as client:
        page = client.get("/conduits/supervisory-cells").text
    listed = re.findall(r"<td><code>zone\.operation-not-allowed</code></td>", page)
    assert len(listed) == 50
    assert "55 open violations on this conduit; the 50 most recently seen are listed." in page
