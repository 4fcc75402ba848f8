"""`ZoneLookup` against a brute-force search with `ipaddress` over random subnets and hosts."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.schema import ADDRESS_DTYPE, address
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import Asset, SecurityLevel, SiteModel, Zone

SEGMENTS = ("default", "line-2")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(version: int, value: int, prefix: int) -> Network:
    if version == 4:
        return ipaddress.IPv4Network((value >> (32 - prefix) << (32 - prefix), prefix))
    return ipaddress.IPv6Network(((value >> (128 - prefix) << (128 - prefix)), prefix))


# Addresses drawn from a small corner of each space, so that subnets, hosts and edges meet often.
V4 = st.integers(0x0A000000, 0x0A00FFFF)
V6 = st.integers(0xFD00 << 112, (0xFD00 << 112) + 0xFFFFF)
SUBNETS = st.lists(
    st.one_of(
        st.tuples(st.just(4), V4, st.integers(16, 32)),
        st.tuples(st.just(6), V6, st.integers(108, 128)),
    ).map(lambda t: _network(*t)),
    max_size=12,
)
HOSTS = st.lists(st.one_of(V4.map(ipaddress.IPv4Address), V6.map(ipaddress.IPv6Address)), max_size=10)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def build_site(
    subnets: list[Network], zones_of: list[int], two_segments: bool, hosts: list[Address]
) -> SiteModel:
    """Subnets dealt to four zones (dropping any that overlaps one already kept in its segment;
    with `two_segments`, odd zones are on the second), and assets declared on the hosts (in
    zones that may not hold their address)."""

    def segment(zone: int) -> int:
        return zone % 2 if two_segments else 0

    kept: dict[int, list[Network]] = {z: [] for z in range(4)}
    for index, net in enumerate(subnets):
        zone = zones_of[index % len(zones_of)]
        rivals = [other for z in range(4) if segment(z) == segment(zone) for other in kept[z]]
        if not any(net.version == other.version and net.overlaps(other) for other in rivals):
            kept[zone].append(net)
    level = SecurityLevel.uniform(1)
    zones = tuple(
        Zone(f"z{z}", f"z{z}", 1, tuple(kept[z]), (), level, segment=SEGMENTS[segment(z)]) for z in range(4)
    )
    unique = list(dict.fromkeys(hosts))
    assets = tuple(Asset(f"a{i}", f"a{i}", (host,), f"z{(i * 3) % 4}") for i, host in enumerate(unique))
    return SiteModel("s", "s", "UTC", zones, (), assets)


def brute_force(site: SiteModel, text: str, segment: str) -> tuple[str | None, str | None]:
    host = ipaddress.ip_address(text)
    for asset in site.assets:
        if host in asset.addresses and site.zone(asset.zone).segment == segment:
            return asset.zone, asset.id
    for zone in site.zones:
        if zone.segment == segment and any(
            net.version == host.version and host in net for net in zone.subnets
        ):
            return zone.id, None
    return None, None


def probes(site: SiteModel, extra: list[Address]) -> list[str]:
    """Every subnet's edges and the addresses beside them, the hosts and their neighbours."""
    values: list[tuple[int, int]] = []
    for zone in site.zones:
        for net in zone.subnets:
            first, last = int(net.network_address), int(net.broadcast_address)
            values += [(net.version, v) for v in (first - 1, first, first + 1, last - 1, last, last + 1)]
    for host in extra:
        values += [(host.version, int(host) + step) for step in (-1, 0, 1)]
    kinds = {4: (ipaddress.IPv4Address, 2**32), 6: (ipaddress.IPv6Address, 2**128)}
    return [str(kinds[version][0](v)) for version, v in values if 0 <= v < kinds[version][1]]


@settings(max_examples=40, deadline=None)
@given(SUBNETS, st.lists(st.integers(0, 3), min_size=1, max_size=12), st.booleans(), HOSTS, HOSTS)
def test_lookup_equals_a_brute_force_search(
    subnets: list[Network],
    zones_of: list[int],
    two_segments: bool,
    assets: list[Address],
    strangers: list[Address],
) -> None:
    site = build_site(subnets, zones_of, two_segments, assets)
    lookup = ZoneLookup(site)
    texts = probes(site, [*assets, *strangers])
    for segment in (*SEGMENTS, "elsewhere"):
        column = np.array([address(t) for t in texts], dtype=ADDRESS_DTYPE)
        endpoints = lookup.endpoints(column, np.array([segment] * len(texts), dtype=object))
        for text, endpoint in zip(texts, endpoints.tolist(), strict=True):
            zone, asset = lookup.endpoint_zone[endpoint], lookup.endpoint_asset[endpoint]
            found = (
                lookup.zone_ids[zone] if zone >= 0 else None,
                lookup.asset_ids[asset] if asset >= 0 else None,
            )
            assert found == brute_force(site, text, segment), (text, segment)


def test_an_asset_wins_over_the_subnet_around_it_and_segments_keep_apart() -> None:
    site = SiteModel(
        "s",
        "s",
        "UTC",
        (
            Zone("cell", "cell", 1, (ipaddress.ip_network("10.2.0.0/24"),), (), SecurityLevel.uniform(1)),
            Zone("scada", "scada", 2, (ipaddress.ip_network("10.1.0.0/24"),), (), SecurityLevel.uniform(1)),
            Zone(
                "nat",
                "nat",
                1,
                (ipaddress.ip_network("10.2.0.0/24"),),
                (),
                SecurityLevel.uniform(1),
                segment="b",
            ),
        ),
        (),
        (Asset("hmi", "hmi", (ipaddress.ip_address("10.1.0.99"),), "cell"),),
    )
    lookup = ZoneLookup(site)
    assert lookup.zone_of("10.1.0.99") == "cell" and lookup.asset_of("10.1.0.99") == "hmi"
    assert lookup.zone_of("10.1.0.98") == "scada" and lookup.asset_of("10.1.0.98") is None
    assert lookup.zone_of("10.2.0.7") == "cell"
    assert lookup.zone_of("10.2.0.7", "b") == "nat"
    assert lookup.zone_of("10.1.0.99", "b") is None  # the asset is on the default segment
    assert lookup.zone_of("10.2.0.7", "unknown") is None
    assert lookup.zone_of("::ffff:10.2.0.7") == "cell"
    mixed = np.array(["default", "b", "c"], dtype=object)
    column = np.array([address("10.2.0.7")] * 3, dtype=ADDRESS_DTYPE)
    assert [lookup.zone_ids[z] if z >= 0 else None for z in lookup.zones(column, mixed)] == [
        "cell",
        "nat",
        None,
    ]
    with pytest.raises(InvalidInput, match="not an IP address"):
        lookup.zone_of("10.2.0.300")
