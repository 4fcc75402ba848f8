"""The merge rules of the asset book, each on hand-built cases (issue 8)."""

from __future__ import annotations

import uuid

import pytest

from plantwarden.inventory import Asset, AssetBook, AssetNotFound, InvalidSighting, RouterMac, Sighting
from tests.unit.inventory.support import CELL, ROUTER_MAC, SITE, S, arp, arp_with, at, dhcp, flow, sighting

HOST_MAC = "02:00:00:00:00:01"


def only(book: AssetBook) -> Asset:
    (asset,) = book.assets()
    return asset


# -- rule 1: keyed by (site, segment, IP); MAC-only sightings ------------------------------------


def test_one_ip_in_two_segments_is_two_assets() -> None:
    book = AssetBook()
    book.add_many([flow(1, "10.0.0.1", HOST_MAC), flow(2, "10.0.0.1", HOST_MAC, segment="cell-b")])
    assert [(a.segment, set(a.ips)) for a in book.assets()] == [
        ("cell-a", {at("10.0.0.1")}),
        ("cell-b", {at("10.0.0.1", "cell-b")}),
    ]
    assert book.find(SITE, "cell-b", "10.0.0.1") == book.assets()[1]
    assert book.find(SITE, "cell-c", "10.0.0.1") is None


def test_a_sighting_without_ip_joins_the_asset_its_mac_is_bound_to() -> None:
    book = AssetBook()
    book.add(arp(1, "10.0.0.5", HOST_MAC))
    book.add(sighting(2, "pn_dcp", mac=HOST_MAC, station_name="tank-1"))
    asset = only(book)
    assert asset.ips == {at("10.0.0.5")} and asset.macs == {at(HOST_MAC)}
    assert asset.facts["station_name"].value == "tank-1"
    assert asset.sources == {"arp", "pn_dcp"}


def test_a_mac_only_asset_merges_into_the_ip_asset_once_arp_binds_them() -> None:
    book = AssetBook()
    mac_only = book.add(sighting(1, "lldp", mac=HOST_MAC, chassis_id="00:1b:1b:aa:bb:cc"))
    ip_asset = book.add(flow(2, "10.0.0.5", HOST_MAC))
    assert len(book.assets()) == 2  # an observed MAC alone does not tie them
    assert book.add(arp(3, "10.0.0.5", HOST_MAC)) == mac_only
    asset = only(book)
    assert asset.id == mac_only and asset.merged_ids == (ip_asset,)
    assert asset.ips == {at("10.0.0.5")} and asset.facts["chassis_id"].value == "00:1b:1b:aa:bb:cc"
    assert book.get(ip_asset) == asset


def test_a_sighting_binding_nothing_attaches_by_ip_and_records_no_mac() -> None:
    book = AssetBook()
    book.add(sighting(1, "cip_identity", ip="10.0.0.7", mac=HOST_MAC, vendor="Rockwell Automation"))
    assert only(book).macs == frozenset()


# -- rule 2: router MACs ------------------------------------------------------------------------


def test_a_router_mac_in_front_of_50_ips_gives_50_assets_and_the_router() -> None:
    book = AssetBook()
    book.add(arp(0, "10.0.0.1", ROUTER_MAC))
    book.add_many(flow(1 + n, f"192.168.7.{n}", ROUTER_MAC) for n in range(1, 51))
    assets = book.assets()
    assert len(assets) == 51
    router = book.find(SITE, CELL, "10.0.0.1")
    assert router is not None and router.macs == {at(ROUTER_MAC)}
    hosts = [asset for asset in assets if asset.id != router.id]
    assert sorted(host.ips for host in hosts) == sorted({at(f"192.168.7.{n}")} for n in range(1, 51))
    assert all(host.macs == frozenset() for host in hosts)
    assert router.carried_ips == {at(f"192.168.7.{n}") for n in range(1, 51)}
    assert router.last_seen_ns == 51 * S  # it forwarded the last frame
    assert book.router_macs() == {RouterMac(SITE, CELL, ROUTER_MAC)}


def test_a_router_mac_is_removed_from_hosts_it_was_recorded_on_before_the_threshold() -> None:
    book = AssetBook(router_threshold=3)
    book.add_many([flow(1, "192.168.7.1", ROUTER_MAC), flow(2, "192.168.7.2", ROUTER_MAC)])
    assert [asset.macs for asset in book.assets()] == [{at(ROUTER_MAC)}] * 2
    assert book.router_macs() == frozenset()
    book.add(flow(3, "192.168.7.3", ROUTER_MAC))
    hosts, router = book.assets()[:3], book.assets()[3]
    assert all(host.macs == frozenset() for host in hosts)
    assert router.ips == frozenset() and router.macs == {at(ROUTER_MAC)}
    assert (router.first_seen_ns, router.last_seen_ns) == (1 * S, 3 * S)


def test_a_router_found_before_its_own_address_takes_it_when_arp_gives_it() -> None:
    book = AssetBook()
    book.add_many(flow(n, f"192.168.7.{n}", ROUTER_MAC) for n in range(1, 4))
    book.add(flow(4, "10.0.0.1", ROUTER_MAC))  # the router's own traffic, not yet known as such
    book.add(arp(5, "10.0.0.1", ROUTER_MAC, hostname="gw-cell-a"))
    router = book.find(SITE, CELL, "10.0.0.1")
    assert router is not None and len(book.assets()) == 4
    assert router.macs == {at(ROUTER_MAC)} and router.facts["hostname"].value == "gw-cell-a"


def test_a_router_answering_arp_for_hosts_behind_it_takes_none_of_them() -> None:
    book = AssetBook()
    book.add(arp(0, "10.0.0.1", ROUTER_MAC))
    book.add_many(flow(n, f"192.168.7.{n}", ROUTER_MAC) for n in range(1, 4))
    book.add(arp(5, "192.168.7.1", ROUTER_MAC))  # proxy ARP
    host = book.find(SITE, CELL, "192.168.7.1")
    router = book.find(SITE, CELL, "10.0.0.1")
    assert host is not None and router is not None and host.id != router.id
    assert host.macs == frozenset() and router.ips == {at("10.0.0.1")}


@pytest.mark.parametrize("remote", [1, 2])
@pytest.mark.parametrize("arp_first", [True, False], ids=["arp-first", "arp-last"])
def test_a_router_stated_by_arp_stays_off_the_few_hosts_it_forwards_for(remote: int, arp_first: bool) -> None:
    """Below the threshold the MAC is no router MAC yet, but ARP says whose it is: the router's."""
    book = AssetBook(router_threshold=3)
    behind = [flow(10 + n, f"192.168.7.{n}", ROUTER_MAC) for n in range(1, remote + 1)]
    book.add_many(
        [arp(1, "10.0.0.1", ROUTER_MAC), *behind] if arp_first else [*behind, arp(20, "10.0.0.1", ROUTER_MAC)]
    )
    router = book.find(SITE, CELL, "10.0.0.1")
    hosts = [book.find(SITE, CELL, f"192.168.7.{n}") for n in range(1, remote + 1)]
    assert router is not None and router.macs == {at(ROUTER_MAC)} and router.ips == {at("10.0.0.1")}
    assert router.carried_ips == {at(f"192.168.7.{n}") for n in range(1, remote + 1)}
    assert all(host is not None and host.macs == frozenset() and host.ips for host in hosts)
    assert len(book.assets()) == remote + 1 and book.router_macs() == frozenset()
    if arp_first:
        assert router.last_seen_ns == (10 + remote) * S  # it sent the frames it forwarded


def test_a_late_binding_keeps_the_macs_a_host_stated_itself() -> None:
    book = AssetBook()
    book.add_many(
        [arp(1, "10.0.0.5", HOST_MAC), flow(2, "10.0.0.5", ROUTER_MAC), flow(3, "10.0.0.5", HOST_MAC)]
    )
    assert only(book).macs == {at(HOST_MAC), at(ROUTER_MAC)}
    book.add(arp(4, "10.0.0.1", ROUTER_MAC))
    host = book.find(SITE, CELL, "10.0.0.5")
    assert host is not None and host.macs == {at(HOST_MAC)} and host.carried_ips == frozenset()


def test_a_router_mac_found_without_arp_still_marks_at_three_and_arp_names_it_later() -> None:
    book = AssetBook(router_threshold=3)
    book.add_many(flow(n, f"192.168.7.{n}", ROUTER_MAC) for n in (1, 2))
    assert [asset.macs for asset in book.assets()] == [{at(ROUTER_MAC)}] * 2  # whose MAC: unknown yet
    book.add(flow(3, "192.168.7.3", ROUTER_MAC))
    book.add(arp(4, "10.0.0.1", ROUTER_MAC))
    assert book.router_macs() == {RouterMac(SITE, CELL, ROUTER_MAC)}
    router = book.find(SITE, CELL, "10.0.0.1")
    assert router is not None and router.macs == {at(ROUTER_MAC)}
    assert router.carried_ips == {at(f"192.168.7.{n}") for n in (1, 2, 3)}
    assert [asset.id for asset in book.assets() if asset.macs] == [router.id]


@pytest.mark.parametrize("claim_first", [True, False], ids=["claim-first", "traffic-first"])
def test_a_secondary_address_stated_by_arp_is_one_asset_with_its_mac(claim_first: bool) -> None:
    book = AssetBook()
    book.add(arp(1, "10.0.0.5", HOST_MAC))
    claim, traffic = arp(3 if claim_first else 4, "10.0.0.6", HOST_MAC), flow(3, "10.0.0.6", HOST_MAC)
    book.add_many([claim, traffic] if claim_first else [traffic, claim])
    asset = only(book)
    assert asset.ips == {at("10.0.0.5"), at("10.0.0.6")} and asset.macs == {at(HOST_MAC)}
    assert asset.carried_ips == frozenset() and book.router_macs() == frozenset()


def test_a_secondary_address_never_stated_is_an_asset_of_its_own_without_a_mac() -> None:
    """Traffic alone cannot tell a host's unstated second address from a host behind a router
    (no TTL, no netmask in a sighting): the address gets its own asset, the MAC stays where it
    was stated, and the address is listed among what that MAC carries."""
    book = AssetBook()
    host = book.add(arp(1, "10.0.0.5", HOST_MAC))
    book.add_many(flow(2 + n, "10.0.0.6", HOST_MAC) for n in range(3))
    second = book.find(SITE, CELL, "10.0.0.6")
    assert second is not None and second.id != host and second.macs == frozenset()
    assert book.get(host).macs == {at(HOST_MAC)} and book.get(host).carried_ips == {at("10.0.0.6")}
    assert book.get(host).last_seen_ns == 4 * S
    assert book.router_macs() == frozenset()  # one foreign address is far below the threshold


def test_a_moved_hosts_late_frame_from_its_old_address_carries_no_mac() -> None:
    book = AssetBook()
    moved = book.add(dhcp(1, "10.0.0.50", HOST_MAC))
    book.add(dhcp(2, "10.0.0.51", HOST_MAC))
    stale = book.add(flow(3, "10.0.0.50", HOST_MAC))
    assert stale != moved and book.get(stale).macs == frozenset()
    assert book.get(moved).macs == {at(HOST_MAC)} and book.get(moved).carried_ips == frozenset()


def test_a_host_with_a_few_addresses_is_not_a_router() -> None:
    book = AssetBook(router_threshold=3)
    book.add_many([arp(1, "10.0.0.5", HOST_MAC), arp(2, "10.0.0.6", HOST_MAC), arp(3, "10.0.0.7", HOST_MAC)])
    book.add_many(flow(4 + n, f"10.0.0.{n}", HOST_MAC) for n in (5, 6, 7, 8))
    assert book.router_macs() == frozenset()  # claimed addresses do not count, 1 foreign is below 3


def test_the_threshold_must_be_at_least_two() -> None:
    with pytest.raises(InvalidSighting, match="router_threshold"):
        AssetBook(router_threshold=1)


# -- rule 3: DHCP moves -------------------------------------------------------------------------


def test_a_dhcp_ack_for_a_new_address_moves_the_asset() -> None:
    book = AssetBook()
    first = book.add(dhcp(1, "10.0.0.50", HOST_MAC, hostname="hmi-1"))
    book.add(flow(2, "10.0.0.50", HOST_MAC))
    assert book.add(dhcp(3, "10.0.0.51", HOST_MAC)) == first
    asset = only(book)
    assert asset.id == first
    assert asset.ips == {at("10.0.0.51")} and asset.past_ips == {at("10.0.0.50")}
    assert book.find(SITE, CELL, "10.0.0.50") is None
    assert book.find(SITE, CELL, "10.0.0.51") == asset
    assert book.router_macs() == frozenset()


def test_the_old_address_of_a_dhcp_move_is_a_new_asset_when_another_device_uses_it() -> None:
    book = AssetBook()
    moved = book.add(dhcp(1, "10.0.0.50", HOST_MAC))
    book.add(dhcp(2, "10.0.0.51", HOST_MAC))
    other = book.add(dhcp(3, "10.0.0.50", "02:00:00:00:00:02"))
    assert other != moved and book.get(moved).past_ips == {at("10.0.0.50")}
    assert book.get(other).ips == {at("10.0.0.50")}


def test_traffic_seen_before_the_dhcp_ack_joins_the_moved_asset() -> None:
    book = AssetBook()
    moved = book.add(dhcp(1, "10.0.0.50", HOST_MAC))
    early = book.add(flow(2, "10.0.0.51", HOST_MAC))
    assert book.add(dhcp(3, "10.0.0.51", HOST_MAC)) == moved
    assert only(book).merged_ids == (early,)


def test_a_dhcp_lease_taking_another_devices_address_leaves_it_in_that_devices_past() -> None:
    book = AssetBook()
    other = book.add(arp(1, "10.0.0.51", "02:00:00:00:00:02"))
    moved = book.add(dhcp(2, "10.0.0.50", HOST_MAC))
    book.add(dhcp(3, "10.0.0.51", HOST_MAC))
    assert book.get(other).ips == frozenset() and book.get(other).past_ips == {at("10.0.0.51")}
    assert book.get(moved).ips == {at("10.0.0.51")}


def test_arp_for_a_second_address_adds_it_without_moving() -> None:
    book = AssetBook()
    book.add_many([arp(1, "10.0.0.5", HOST_MAC), arp(2, "10.0.0.6", HOST_MAC)])
    assert only(book).ips == {at("10.0.0.5"), at("10.0.0.6")}


def test_a_new_mac_claiming_a_known_address_joins_its_asset() -> None:
    book = AssetBook()
    book.add_many([arp(1, "10.0.0.5", HOST_MAC), arp(2, "10.0.0.5", "02:00:00:00:00:02")])
    assert only(book).macs == {at(HOST_MAC), at("02:00:00:00:00:02")}


# -- rule 4: one device with two interfaces -----------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [
        {"chassis_id": "00:1b:1b:aa:bb:cc"},
        {"vendor": "Siemens", "serial": "S C-X4U12345"},
        {"device_id": "0x010d", "station_name": "eng-ws-1"},
    ],
)
def test_two_interfaces_with_one_strong_identity_are_one_asset(identity: dict[str, str]) -> None:
    book = AssetBook()
    first = book.add(arp_with(1, "10.10.1.20", HOST_MAC, identity, "supervisory"))
    assert book.add(arp_with(2, "10.10.2.20", "02:00:00:00:01:01", identity)) == first
    asset = only(book)
    assert asset.id == first and len(asset.merged_ids) == 1 and book.get(asset.merged_ids[0]) == asset
    assert asset.segment == "supervisory"
    assert asset.ips == {at("10.10.1.20", "supervisory"), at("10.10.2.20")}
    assert asset.macs == {at(HOST_MAC, "supervisory"), at("02:00:00:00:01:01")}
    assert book.find(SITE, CELL, "10.10.2.20") == book.find(SITE, "supervisory", "10.10.1.20") == asset


def test_the_asset_first_seen_keeps_its_id_whichever_reports_later() -> None:
    book = AssetBook()
    later = book.add(arp(5, "10.0.0.5", HOST_MAC))
    earlier = book.add(arp(2, "10.0.0.6", "02:00:00:00:00:02", serial="123", vendor="Wago"))
    book.add(arp(6, "10.0.0.5", HOST_MAC, serial="123", vendor="Wago"))
    assert only(book).id == earlier and only(book).merged_ids == (later,)
    assert (only(book).first_seen_ns, only(book).last_seen_ns) == (2 * S, 6 * S)


@pytest.mark.parametrize(
    "identity",
    [
        {"vendor": "Wago", "serial": "0000000"},
        {"vendor": "Wago", "serial": "unknown"},
        {"chassis_id": "00:00:00:00:00:00"},
        {"hostname": "DESKTOP-1", "client_id": "01:02"},  # weak by choice: see inventory.assets
        {"serial": "123"},  # a serial without its vendor
    ],
)
def test_placeholder_or_weak_identities_merge_nothing(identity: dict[str, str]) -> None:
    book = AssetBook()
    book.add_many(
        [arp_with(1, "10.0.0.5", HOST_MAC, identity), arp_with(2, "10.0.0.6", "02:00:00:00:00:02", identity)]
    )
    assert len(book.assets()) == 2


def test_different_sites_never_merge() -> None:
    book = AssetBook()
    book.add(arp(1, "10.0.0.5", HOST_MAC, chassis_id="c1"))
    book.add(
        Sighting(
            ts_ns=2,
            site="hillside",
            segment=CELL,
            source="lldp",
            confidence=0.9,
            mac=HOST_MAC,
            attributes={"chassis_id": "c1"},
        )
    )
    assert len(book.assets()) == 2


def test_a_router_mac_never_merges_the_hosts_behind_it() -> None:
    book = AssetBook(router_threshold=3)
    book.add_many([flow(1, "192.168.7.1", ROUTER_MAC), flow(2, "192.168.7.2", ROUTER_MAC)])
    book.add(sighting(3, "lldp", mac=ROUTER_MAC, chassis_id="gw-chassis"))  # the router's own LLDP
    book.add(sighting(4, "lldp", mac=ROUTER_MAC, chassis_id="gw-chassis"))
    book.add(flow(5, "192.168.7.3", ROUTER_MAC))
    hosts = [book.find(SITE, CELL, f"192.168.7.{n}") for n in (1, 2, 3)]
    assert len({host.id for host in hosts if host is not None}) == 3
    assert all(host is not None and "chassis_id" not in host.facts and not host.macs for host in hosts)
    (router,) = [asset for asset in book.assets() if "chassis_id" in asset.facts]
    assert router.macs == {at(ROUTER_MAC)} and router.ips == frozenset()
    assert len(book.assets()) == 4


def test_a_changed_identity_is_forgotten_for_later_merges() -> None:
    book = AssetBook()
    book.add(arp(1, "10.0.0.5", HOST_MAC, vendor="Wago", serial="111", confidence=0.5))
    book.add(arp(2, "10.0.0.5", HOST_MAC, vendor="Wago", serial="222", confidence=0.9))
    book.add(arp(3, "10.0.0.6", "02:00:00:00:00:02", vendor="Wago", serial="111"))
    assert len(book.assets()) == 2


# -- rule 5: times, sources, facts --------------------------------------------------------------


def test_an_asset_keeps_first_and_last_seen_sources_and_facts_with_history() -> None:
    book = AssetBook()
    book.add(flow(20, "10.0.0.5", HOST_MAC))
    book.add(sighting(10, "modbus_43_14", ip="10.0.0.5", confidence=0.8, firmware="1.4.2", vendor="Sim"))
    book.add(sighting(30, "modbus_43_14", ip="10.0.0.5", confidence=0.8, firmware="1.5.0"))
    asset = only(book)
    assert (asset.first_seen_ns, asset.last_seen_ns) == (10 * S, 30 * S)
    assert asset.sources == {"flow", "modbus_43_14"}
    assert asset.facts["firmware"].value == "1.5.0"
    assert [(f.value, f.first_ns, f.last_ns) for f in asset.history["firmware"]] == [
        ("1.4.2", 10 * S, 10 * S)
    ]
    assert asset.facts["vendor"].source == "modbus_43_14" and asset.facts["vendor"].confidence == 0.8


def test_reading_validates_and_names_what_is_missing() -> None:
    book = AssetBook()
    with pytest.raises(InvalidSighting, match="not an IPv4 or IPv6 address"):
        book.find(SITE, CELL, "10.0.0.300")
    with pytest.raises(AssetNotFound):
        book.get(uuid.uuid4())
    with pytest.raises(InvalidSighting, match="expected a Sighting"):
        book.add({"ip": "10.0.0.1"})  # type: ignore[arg-type]
