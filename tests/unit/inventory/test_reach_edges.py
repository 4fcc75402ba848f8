"""Stored communication edges as observed edges for reachability, on a real store (both backends)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.records.schema import Protocol
from plantwarden.inventory.reach_edges import edge_operations, observed_view
from plantwarden.inventory.store import save_inventory
from plantwarden.zones.plant.model import SecurityLevel, SiteModel, Zone
from plantwarden.zones.reach import ObservedEdge, observed_permits, reachable
from tests.unit.inventory.store_support import HMI, PLC, polling_edge, polling_statistics
from tests.unit.inventory.support import CELL, SITE

START = 1_767_600_000


def cell_site() -> SiteModel:
    """The stored edges' site: the HMI's zone 10.0.0.8/31 and the PLC's 10.0.0.10/31, on segment CELL."""
    zones = tuple(
        Zone(zone_id, zone_id, 1, (ipaddress.ip_network(subnet),), (), SecurityLevel.uniform(2), segment=CELL)
        for zone_id, subnet in (("ops", "10.0.0.8/31"), ("cell", "10.0.0.10/31"))
    )
    return SiteModel(SITE, "Riverside", "UTC", zones, ())


@pytest.fixture
def saved(store: Store, ctx: Context) -> Store:
    migrate.ensure_ready(store)
    polling = polling_edge(START)
    edges = [
        replace(polling, operations=frozenset({"READ", "WRITE", "MALFORMED", "OPERATION_9"})),
        replace(
            polling, protocol=Protocol.UNKNOWN, operations=frozenset(), requests=0, services=((6, 4840),)
        ),
        replace(polling, server="224.0.0.251", protocol=Protocol.UNKNOWN, services=((17, 5353),)),
        replace(polling, client=PLC, server=HMI, protocol=Protocol.UNKNOWN, services=((1, 0),)),
        replace(polling, segment="other-segment"),
    ]
    with store.transaction() as session:
        save_inventory(session, ctx, [], edges, [polling_statistics()])
    return store


def test_stored_edges_become_one_observed_edge_per_service(saved: Store) -> None:
    with saved.transaction() as session:
        view = observed_view(session, cell_site())
    hmi, plc = ipaddress.ip_address(HMI), ipaddress.ip_address(PLC)
    assert set(view.edges) == {
        ObservedEdge(hmi, plc, "tcp", 502, "modbus", frozenset({"read", "write", "other"})),
        ObservedEdge(hmi, plc, "tcp", 4840, "unknown", frozenset()),
    }
    assert view.stored == 5
    assert view.notes() == [
        "1 stored edge(s) to a multicast or broadcast group",
        "1 stored edge(s) on a network segment where no zone of the model lies",
        "1 stored edge(s) over another IP protocol than TCP and UDP, or without a port",
    ]


def test_a_connection_without_operations_still_makes_the_server_reachable(saved: Store) -> None:
    site = cell_site()
    with saved.transaction() as session:
        view = observed_view(session, site)
    only_connection = [edge for edge in view.edges if not edge.operations]
    (target,) = reachable(site, observed_permits(site, only_connection), "ops").zones
    assert (target.id, target.operations) == ("cell", frozenset())
    assert reachable(site, observed_permits(site, view.edges), "cell").zones == ()


def test_operation_names_follow_the_model() -> None:
    assert edge_operations(["READ", "IDENTIFY", "MALFORMED"]) == {"read", "identify"}
    assert edge_operations(["OPERATION_12"]) == {"other"}
    assert edge_operations([]) == frozenset()
