"""The stored inventory on a real store (SQLite and PostgreSQL): a run's snapshot saved, a second
run continuing the same assets, edges and statistics upserted, the events, and the read side."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.eventlog import EventRecord
from plantwarden.inventory import Asset, Edge, FunctionStatistics
from plantwarden.inventory.errors import AssetNotFound
from plantwarden.inventory.models import StoredAsset, StoredEdge
from plantwarden.inventory.queries import AssetFilter, EdgeFilter, get_asset, list_assets, list_edges
from plantwarden.inventory.roles import Role, RoleGuess
from plantwarden.inventory.store import save_inventory
from tests.unit.inventory.store_support import (
    HMI,
    HMI_MAC,
    PLC,
    PLC_MAC,
    book_assets,
    by_ip,
    plc_role,
    polling_edge,
    polling_statistics,
    run_sightings,
)
from tests.unit.inventory.support import CELL, SITE, S, arp, dhcp

FIRST, SECOND = 1_767_600_000, 1_767_700_000  # two runs, a little over a day apart


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def events(store: Store) -> list[tuple[str, dict[str, Any]]]:
    with store.transaction() as session:
        rows = session.scalars(select(EventRecord).order_by(EventRecord.position))
        return [(row.type, dict(row.payload)) for row in rows]


def save_first_run(store: Store, ctx: Context) -> list[Asset]:
    assets = book_assets(run_sightings(FIRST))
    roles = {by_ip(assets, PLC).id: plc_role()}
    with store.transaction() as session:
        save_inventory(session, ctx, assets, [polling_edge(FIRST)], [polling_statistics()], roles)
    return assets


def test_a_first_save_stores_the_book_s_assets_edges_and_announces_them(ready: Store, ctx: Context) -> None:
    assets = save_first_run(ready, ctx)
    plc_id = by_ip(assets, PLC).id
    with ready.transaction() as session:
        plc = get_asset(session, plc_id)
        assert plc.ips == [{"segment": CELL, "address": PLC}]
        assert plc.macs == [{"segment": CELL, "address": PLC_MAC}]
        assert plc.facts["firmware"] == {
            "value": "33.11",
            "source": "cip_identity",
            "confidence": 0.95,
            "first_ns": (FIRST + 2) * S,
            "last_ns": (FIRST + 2) * S,
        }
        assert (plc.role, plc.role_confidence, plc.role_evidence[1]) == (
            "plc",
            0.9,
            "CIP identity: 1756-L83E",
        )
        assert (plc.server_protocols, plc.client_protocols) == (["modbus"], [])
        assert plc.first_seen == datetime.fromtimestamp(FIRST + 1, UTC)
        hmi = get_asset(session, HMI)
        assert (hmi.role, hmi.client_protocols, hmi.last_seen.timestamp()) == (None, ["modbus"], FIRST + 30)
        [found] = list_edges(session, EdgeFilter(site=SITE))
        assert (found.edge.client_asset_id, found.edge.server_asset_id) == (hmi.id, plc_id)
        assert [(f.function, f.requests, f.response_median_ns) for f in found.functions] == [
            (3, 60, 3_000_000)
        ]
    kinds = [kind for kind, _ in events(ready)]
    assert kinds == ["inventory.AssetDiscovered"] * 2 + ["inventory.CommunicationDiscovered"]
    discovered = {payload["asset_id"]: payload for kind, payload in events(ready)[:2]}
    assert discovered[str(plc_id)]["ips"] == [f"{CELL}/{PLC}"] and discovered[str(plc_id)]["role"] == "plc"


def test_a_second_run_continues_the_same_assets_and_adds_up_the_traffic(ready: Store, ctx: Context) -> None:
    first = save_first_run(ready, ctx)
    second = book_assets(run_sightings(SECOND, firmware="34.01"))
    assert {a.id for a in second}.isdisjoint({a.id for a in first})  # a new book names them anew
    with ready.transaction() as session:
        result = save_inventory(
            session,
            ctx,
            second,
            [polling_edge(SECOND, requests=30)],
            [polling_statistics(requests=30, median_ms=4)],
            {by_ip(second, PLC).id: plc_role(0.95)},
        )
    assert result.ids == {a.id: b.id for a in second for b in first if a.ips == b.ips}
    assert (result.assets_created, result.assets_changed, result.edges_created) == (0, 1, 0)
    with ready.transaction() as session:
        assert len(list_assets(session, AssetFilter())) == 2
        plc = get_asset(session, PLC)
        assert plc.id == by_ip(first, PLC).id
        assert plc.facts["firmware"]["value"] == "34.01"  # equally confident, more recent
        assert [f["value"] for f in plc.history["firmware"]] == ["33.11"]
        vendor = plc.facts["vendor"]  # the same value again: its times widen
        assert (vendor["first_ns"], vendor["last_ns"]) == ((FIRST + 2) * S, (SECOND + 2) * S)
        assert (plc.first_seen.timestamp(), plc.last_seen.timestamp()) == (FIRST + 1, SECOND + 2)
        assert plc.role_confidence == 0.95
        [found] = list_edges(session, EdgeFilter(asset=plc.id))
        assert (found.edge.requests, found.edge.packets) == (90, 360)
        assert (found.edge.first_seen.timestamp(), found.edge.last_seen.timestamp()) == (FIRST, SECOND + 29)
        [stats] = found.functions
        assert (stats.requests, stats.unanswered, stats.exceptions, stats.responses) == (90, 2, 4, 88)
        assert (stats.response_median_ns, stats.intervals) == (4_000_000, 29.0)  # the newer run's
    later = events(ready)[3:]
    assert later == [
        (
            "inventory.AssetChanged",
            {"asset_id": str(plc.id), "changes": {"firmware": {"old": "33.11", "new": "34.01"}}},
        )
    ]


def test_saving_the_same_run_again_changes_no_asset(ready: Store, ctx: Context) -> None:
    assets = save_first_run(ready, ctx)
    with ready.transaction() as session:
        result = save_inventory(session, ctx, assets, [], [])
    assert result.ids == {a.id: a.id for a in assets}
    assert (result.assets_created, result.assets_changed) == (0, 0)
    assert len(events(ready)) == 3


def test_an_asset_is_found_by_its_mac_when_its_address_changed(ready: Store, ctx: Context) -> None:
    assets = save_first_run(ready, ctx)
    moved = book_assets([arp(SECOND, "10.0.0.77", PLC_MAC)])
    with ready.transaction() as session:
        result = save_inventory(session, ctx, moved, [], [])
    plc_id = by_ip(assets, PLC).id
    assert result.ids == {moved[0].id: plc_id}
    with ready.transaction() as session:
        assert get_asset(session, "10.0.0.77").id == plc_id
    kind, payload = events(ready)[-1]
    assert kind == "inventory.AssetChanged"
    assert payload["changes"] == {
        "ips": {"old": [f"{CELL}/{PLC}"], "new": [f"{CELL}/{PLC}", f"{CELL}/10.0.0.77"]}
    }


def test_an_address_taken_by_a_new_device_leaves_the_old_asset_as_a_past_ip(
    ready: Store, ctx: Context
) -> None:
    # The HMI had a second address; now a new device answers ARP for it.
    first = book_assets([arp(FIRST, HMI, HMI_MAC), arp(FIRST + 1, "10.0.0.8", HMI_MAC)])
    with ready.transaction() as session:
        save_inventory(session, ctx, first, [], [])
    second = book_assets([arp(SECOND, HMI, HMI_MAC), arp(SECOND + 1, "10.0.0.8", "00:0c:29:00:00:08")])
    with ready.transaction() as session:
        result = save_inventory(session, ctx, second, [], [])
    assert result.assets_created == 1
    with ready.transaction() as session:
        hmi = get_asset(session, HMI)
        newcomer = get_asset(session, "10.0.0.8")
        assert newcomer.id != hmi.id
        assert (hmi.ips, hmi.past_ips) == (
            [{"segment": CELL, "address": HMI}],
            [{"segment": CELL, "address": "10.0.0.8"}],
        )
    kinds = [kind for kind, _ in events(ready)[1:]]
    assert kinds == ["inventory.AssetDiscovered", "inventory.AssetChanged"]
    assert events(ready)[-1][1]["changes"]["past_ips"] == {"old": [], "new": [f"{CELL}/10.0.0.8"]}


def test_a_changed_role_is_announced(ready: Store, ctx: Context) -> None:
    assets = save_first_run(ready, ctx)
    hmi = by_ip(assets, HMI)
    guess = RoleGuess(Role.HMI, 0.8, ("polls 1 PLC every second",))
    with ready.transaction() as session:
        save_inventory(session, ctx, [hmi], [], [], {hmi.id: guess})
    assert events(ready)[-1] == (
        "inventory.AssetChanged",
        {"asset_id": str(hmi.id), "changes": {"role": {"old": None, "new": "hmi"}}},
    )


def test_a_less_confident_guess_of_another_role_keeps_the_stored_one(ready: Store, ctx: Context) -> None:
    """A periodic save sees part of a device's behaviour: a quiet period does not demote it."""
    assets = save_first_run(ready, ctx)
    hmi = by_ip(assets, HMI)
    guesses = [
        (RoleGuess(Role.ENGINEERING_WORKSTATION, 0.8, ("writes to 1 PLC",)), "engineering_workstation"),
        (RoleGuess(Role.IT_HOST, 0.6, ("talks IP",)), "engineering_workstation"),
        (
            RoleGuess(Role.ENGINEERING_WORKSTATION, 0.5, ("reads 1 PLC now and then",)),
            "engineering_workstation",
        ),
        (RoleGuess(Role.HMI, 0.8, ("polls 1 PLC every second",)), "hmi"),
    ]
    for guess, kept in guesses:
        with ready.transaction() as session:
            save_inventory(session, ctx, [hmi], [], [], {hmi.id: guess})
        with ready.transaction() as session:
            stored = get_asset(session, HMI)
            assert stored.role == kept, guess
            if guess.role.value == kept:  # the same role takes the fresher evidence and confidence
                assert (stored.role_confidence, stored.role_evidence) == (
                    guess.confidence,
                    list(guess.evidence),
                )


def test_bad_snapshots_are_refused_and_nothing_is_stored(ready: Store, ctx: Context) -> None:
    assets = book_assets(run_sightings(FIRST))
    stray = {uuid.uuid4(): plc_role()}
    cases: list[tuple[list[Asset], list[Edge], list[FunctionStatistics], dict[uuid.UUID, RoleGuess], str]] = [
        (assets + assets[:1], [], [], {}, "one asset twice"),
        (assets, [], [], stray, "not in the snapshot"),
        (assets, [], [], {assets[0].id: RoleGuess(Role.PLC, 1.5, ())}, "within 0..1"),
        (assets, [], [polling_statistics()], {}, "not in the snapshot or store"),
        (assets, [polling_edge(FIRST)] * 2, [], {}, "lists the edge 10.0.0.9 -> 10.0.0.10 twice"),
        (assets, [polling_edge(FIRST)], [polling_statistics()] * 2, {}, "function 3 of one edge twice"),
    ]
    for listed, edges, statistics, roles, message in cases:
        with pytest.raises(InvalidInput, match=message), ready.transaction() as session:
            save_inventory(session, ctx, listed, edges, statistics, roles)
    with ready.transaction() as session:
        assert session.scalars(select(StoredAsset)).all() == []
        assert session.scalars(select(StoredEdge)).all() == []


def test_asset_queries_filter_and_find(ready: Store, ctx: Context) -> None:
    save_first_run(ready, ctx)
    with ready.transaction() as session:

        def ips(**filters: object) -> list[str]:
            found = list_assets(session, AssetFilter(**filters))  # type: ignore[arg-type]
            return [a.ips[0]["address"] for a in found]

        assert ips() == [HMI, PLC]  # by first seen
        assert ips(role="plc") == [PLC] and ips(role="hmi") == []
        assert ips(vendor="rockwell") == [PLC] and ips(ip="0.0.1") == [PLC]
        assert ips(protocol="modbus") == [HMI, PLC] and ips(protocol="s7comm") == []
        assert ips(site="elsewhere") == [] and ips(segment=CELL, limit=1, offset=1) == [PLC]
        assert ips(since=datetime.fromtimestamp(FIRST + 10, UTC)) == [HMI]  # last seen at +30
        assert ips(until=datetime.fromtimestamp(FIRST + 1, UTC)) == [HMI]  # first seen at +0
        hmi = get_asset(session, HMI, site=SITE)
        assert get_asset(session, str(hmi.id)).id == hmi.id
        assert list_assets(session, AssetFilter(), places=[(SITE, None)])[0].id == hmi.id
        assert list_assets(session, AssetFilter(), places=[(SITE, "cell-a-zone")]) == []
        with pytest.raises(AssetNotFound):
            get_asset(session, HMI, site="elsewhere")
        with pytest.raises(AssetNotFound):
            get_asset(session, uuid.uuid4())
        with pytest.raises(InvalidInput, match="neither an asset id nor an IP"):
            get_asset(session, "plc-1")
        assert list_edges(session, EdgeFilter(protocol="MODBUS"))[0].edge.client == HMI
        assert list_edges(session, EdgeFilter(protocol="s7comm")) == []
        assert list_edges(session, EdgeFilter(), places=[("elsewhere", None)]) == []


def test_an_ip_current_in_two_sites_needs_the_site(ready: Store, ctx: Context) -> None:
    save_first_run(ready, ctx)
    moved = [replace(a, site="harbour") for a in book_assets([arp(FIRST, HMI, HMI_MAC)])]  # another plant
    with ready.transaction() as session:
        save_inventory(session, ctx, moved, [], [])
        with pytest.raises(InvalidInput, match="name the site"):
            get_asset(session, HMI)
        assert get_asset(session, HMI, site="harbour").site == "harbour"
        # a caller of one site sees only its asset, and never learns of the other in an error
        harbour = get_asset(session, HMI, places=[("harbour", None)])
        assert harbour.site == "harbour"
        assert get_asset(session, HMI, places=[(SITE, None)]).site == SITE
        with pytest.raises(AssetNotFound) as hidden:
            get_asset(session, HMI, places=[("nowhere", None)])
        assert "harbour" not in str(hidden.value) and SITE not in str(hidden.value)
        with pytest.raises(AssetNotFound):
            get_asset(session, harbour.id, places=[(SITE, None)])
        with pytest.raises(AssetNotFound):
            get_asset(session, HMI, site="harbour", places=[(SITE, None)])


def test_five_hundred_assets_and_two_thousand_edges_save_twice_and_list(ready: Store, ctx: Context) -> None:
    def run(start: int) -> tuple[list[Asset], list[Edge], list[FunctionStatistics]]:
        sightings = [
            arp(start + n, f"10.1.{n // 250}.{n % 250 + 1}", f"02:00:00:00:{n // 256:02x}:{n % 256:02x}")
            for n in range(500)
        ]
        assets = book_assets(sightings)
        ips = sorted(next(iter(a.ips)).address for a in assets)
        pairs = [(ips[n % 500], ips[(n % 500 + 1 + n // 500) % 500]) for n in range(2000)]
        edges = [polling_edge(start, 10, client, server) for client, server in pairs]
        stats = [polling_statistics(10, 3, e.client, e.server) for e in edges]
        return assets, edges, stats

    for start in (FIRST, SECOND):
        assets, edges, stats = run(start)
        with ready.transaction() as session:
            result = save_inventory(session, ctx, assets, edges, stats)
    assert (result.assets_created, result.edges_created, result.edges_updated) == (0, 0, len(edges))
    with ready.transaction() as session:
        listed = list_assets(session, AssetFilter(limit=1000))
        edges_listed = list_edges(session, EdgeFilter(limit=5000))
    assert len(listed) == 500 and len(edges_listed) == len(edges) == 2000
    assert all(e.functions[0].requests == 20 for e in edges_listed)


def test_a_dhcp_move_seen_by_the_second_run_moves_the_stored_address(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        first = save_inventory(session, ctx, book_assets([dhcp(FIRST, "10.0.0.50", HMI_MAC)]), [], [])
    moved = book_assets([dhcp(SECOND, "10.0.0.50", HMI_MAC), dhcp(SECOND + 60, "10.0.0.51", HMI_MAC)])
    with ready.transaction() as session:
        second = save_inventory(session, ctx, moved, [], [])
        [asset] = list_assets(session, AssetFilter())
        assert (asset.ips, asset.past_ips) == (
            [{"segment": CELL, "address": "10.0.0.51"}],
            [{"segment": CELL, "address": "10.0.0.50"}],
        )
        with pytest.raises(AssetNotFound):
            get_asset(session, "10.0.0.50")
    assert list(second.ids.values()) == list(first.ids.values()) == [asset.id]
    assert events(ready)[-1][1]["changes"] == {
        "ips": {"old": [f"{CELL}/10.0.0.50"], "new": [f"{CELL}/10.0.0.51"]},
        "past_ips": {"old": [], "new": [f"{CELL}/10.0.0.50"]},
    }
