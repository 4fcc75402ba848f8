"""What the map reads from the stored inventory, on each backend: the label and the first address
picked out of the assets' JSON by the database, the edges' ends matched to the assets as stored,
and the ids as the API writes them."""

from __future__ import annotations

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.inventory.commmap import MapLink
from plantwarden.inventory.queries import AssetFilter, list_assets
from plantwarden.inventory.store import save_inventory
from plantwarden.web.inventory_views import map_input
from tests.unit.inventory.store_support import (
    HMI,
    PLC,
    book_assets,
    by_ip,
    plc_role,
    polling_edge,
    polling_statistics,
    run_sightings,
)
from tests.unit.inventory.support import CELL, SITE, arp, dhcp

START = 1_767_600_000
STRAY = "10.0.0.99"


def test_the_map_reads_labels_addresses_and_links_as_stored(store: Store, ctx: Context) -> None:
    migrate.ensure_ready(store)
    sightings = [*run_sightings(START), dhcp(START + 5, "10.0.0.20", "02:00:00:00:00:20", hostname="eng-ws")]
    sightings.append(arp(START + 6, "10.0.0.21", "02:00:00:00:00:21"))
    assets = book_assets(sightings)
    edges = [polling_edge(START), polling_edge(START, 5, HMI, STRAY)]
    statistics = [polling_statistics(), polling_statistics(5, 3, HMI, STRAY)]
    with store.transaction() as session:
        save_inventory(session, ctx, assets, edges, statistics, {by_ip(assets, PLC).id: plc_role()})
    with store.transaction() as session:
        ids = {a.ips[0]["address"]: str(a.id) for a in list_assets(session, AssetFilter())}
        found = map_input(session, [(SITE, None)])
    nodes = {node.address: node for node in found.nodes}
    assert set(nodes) == {HMI, PLC, "10.0.0.20", "10.0.0.21"} and found.sites == [SITE]
    assert {address: node.id for address, node in nodes.items()} == ids
    assert nodes[PLC].label == "1756-L83E" and nodes[PLC].role == "plc"  # product_name: no hostname
    assert nodes["10.0.0.20"].label == "eng-ws"  # the DHCP host name
    assert nodes["10.0.0.21"].label == "10.0.0.21"  # no naming fact: its address
    assert {node.group for node in found.nodes} == {CELL}
    (link,) = found.links
    assert link == MapLink(ids[HMI], ids[PLC], link.protocol, 60, link.operations) and link.operations
    assert found.undrawn == 1  # the poll of an address that is no asset
    with store.transaction() as session:
        assert map_input(session, [("plant-z", None)]).nodes == []
