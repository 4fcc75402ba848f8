"""The console places an address in a zone of the segment it was seen on, as the zone check does:
two lines behind NAT reuse 10.0.1.0/24 and 10.0.2.0/24, and line 1's PLC at 10.0.1.5 is not the
host that line 2's HMI polls at 10.0.1.5."""

from __future__ import annotations

import ipaddress

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.records.schema import Protocol
from plantwarden.inventory import Edge
from plantwarden.inventory.store import save_inventory
from plantwarden.web.conduit_views import conduit_traffic
from plantwarden.web.zone_views import Endpoints, seen_per_zone
from plantwarden.zones.plant.model import Asset, Channel, Conduit, SecurityLevel, SiteModel, Zone
from tests.unit.inventory.store_support import book_assets
from tests.unit.inventory.support import SITE, S, arp

LEVEL = SecurityLevel.uniform(2)
START = 1_767_600_000
PLC, HMI = "10.0.1.5", "10.0.2.10"


def two_lines() -> SiteModel:
    """Per line (segment line1, line2): an HMI zone 10.0.2.0/24 and a cell 10.0.1.0/24 joined by a
    Modbus conduit; line 1's PLC is declared at 10.0.1.5."""
    zones, conduits = [], []
    for line in ("line1", "line2"):
        zones.append(
            Zone(f"hmi-{line}", line, 2, (ipaddress.ip_network("10.0.2.0/24"),), (), LEVEL, segment=line)
        )
        zones.append(
            Zone(f"cell-{line}", line, 1, (ipaddress.ip_network("10.0.1.0/24"),), (), LEVEL, segment=line)
        )
        modbus = Channel(
            "modbus", "modbus", "tcp", (502,), (f"hmi-{line}",), (f"cell-{line}",), frozenset({"read"})
        )
        conduits.append(Conduit(line, line, (f"hmi-{line}", f"cell-{line}"), (modbus,), LEVEL))
    plc = Asset("plc1", "PLC 1", (ipaddress.ip_address(PLC),), "cell-line1")
    return SiteModel(SITE, "Riverside", "UTC", tuple(zones), tuple(conduits), (plc,))


def test_a_declared_address_belongs_to_its_zone_on_its_own_segment_only() -> None:
    endpoints = Endpoints(two_lines())
    assert endpoints.zone_of(PLC, "line1") == "cell-line1"
    assert endpoints.zone_of(PLC, "line2") == "cell-line2"
    assert endpoints.zone_of(HMI, "line2") == "hmi-line2"
    assert endpoints.zone_of(PLC, "default") is None  # no zone on that segment
    assert endpoints.zone_of("not an address", "line1") is None


def test_many_addresses_are_placed_at_once_as_one_at_a_time() -> None:
    # the pages place thousands of addresses in one vectorised lookup; it must agree with zone_of
    # on declared and subnet addresses, other segments, IPv6, leading zeros and non-addresses
    endpoints = Endpoints(two_lines())
    seen = [
        (PLC, "line1"), (PLC, "line2"), (HMI, "line2"), (PLC, "default"), ("10.0.3.1", "line1"),
        ("::ffff:10.0.2.10", "line1"), ("2001:db8::1", "line2"), ("010.0.1.5", "line1"),
        ("not an address", "line1"), ("", "line2"),
    ]  # fmt: skip
    expected = [endpoints.zone_of(address, segment) for address, segment in seen]
    assert expected[:5] == ["cell-line1", "cell-line2", "hmi-line2", None, None]
    assert endpoints.zones_of(seen) == expected
    assert endpoints.zones_of([]) == []


def _edge(segment: str) -> Edge:
    return Edge(
        site=SITE, segment=segment, client=HMI, server=PLC, protocol=Protocol.MODBUS,
        operations=frozenset({"READ"}), requests=40, first_ns=START * S, last_ns=(START + 39) * S,
        flows=1, packets=160, bytes=9000, services=((6, 502),),
    )  # fmt: skip


def test_the_zone_pages_count_and_list_line_2_traffic_in_line_2(store: Store, ctx: Context) -> None:
    migrate.ensure_ready(store)
    site = two_lines()
    sightings = [
        arp(START, PLC, "02:00:00:00:01:05", segment="line1"),
        arp(START + 1, PLC, "02:00:00:00:02:05", segment="line2"),
        arp(START + 2, HMI, "02:00:00:00:02:10", segment="line2"),
    ]
    with store.transaction() as session:
        save_inventory(session, ctx, book_assets(sightings), [_edge("line2")], [])
    with store.transaction() as session:
        seen = seen_per_zone(session, site, {(SITE, None)})
        assert dict(seen) == {"cell-line1": 1, "cell-line2": 1, "hmi-line2": 1}
        zones = [zone.id for zone in site.zones]
        line1, _ = conduit_traffic(session, site, site.conduit("line1"), zones)
        line2, _ = conduit_traffic(session, site, site.conduit("line2"), zones)
    assert line1 == []
    assert [(t.client_zone, t.server_zone, t.coverage.covered) for t in line2] == [
        ("hmi-line2", "cell-line2", True)
    ]
