"""Rulesets tested by behaviour: loaded into a router namespace between zone namespaces, every
allowed channel connects and everything else does not, exactly as the model says.

Needs root, `ip` and `nft`; skips without them, except under CI=true, where it fails.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.zones.firewall.drift import drift, running_document
from plantwarden.zones.firewall.render import render_ruleset
from plantwarden.zones.plant.model import Conduit, SecurityLevel, SiteModel, Window
from tests.functional.netns_plant import (
    PlantNetwork,
    Probe,
    cell_plant,
    make_asset,
    make_channel,
    make_zone,
    model_allows,
    zone_hosts,
)

TCP_PORTS = (22, 102, 502, 4840, 8080)
UDP_PORTS = (2222, 47808)


def _require_root() -> None:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        if os.environ.get("CI") == "true":
            pytest.fail("firewall behaviour tests need root, nft and ip")
        pytest.skip("firewall behaviour tests need root, nft and ip")


def all_probes(site: SiteModel, network: PlantNetwork) -> list[Probe]:
    """Every host to every host of another zone, on every probed port, both transports."""
    hosts = [(zone_id, host) for zone_id, _, zone_hosts_ in network.zones for host in zone_hosts_]
    return [
        Probe(transport, source, destination, port)
        for source_zone, source in hosts
        for destination_zone, destination in hosts
        if source_zone != destination_zone
        for transport, ports in (("tcp", TCP_PORTS), ("udp", UDP_PORTS))
        for port in ports
    ]


def assert_as_model(
    site: SiteModel, network: PlantNetwork, probes: list[Probe], **variant: str | None
) -> None:
    now = datetime.now(UTC)
    outcome = network.probe(probes)
    wrong = {p: seen for p, seen in outcome.items() if seen != model_allows(site, p, now, **variant)}  # type: ignore[arg-type]
    assert not wrong, "\n".join(f"{p} crossed={seen}, the model says {not seen}" for p, seen in wrong.items())


@pytest.fixture(scope="module")
def cell_network() -> Iterator[PlantNetwork]:
    _require_root()
    with PlantNetwork(zone_hosts(cell_plant()), TCP_PORTS, UDP_PORTS) as network:
        yield network


def test_every_allowed_channel_connects_and_nothing_else(cell_network: PlantNetwork) -> None:
    site = cell_plant()
    cell_network.load(render_ruleset(site))
    cell_network.load(render_ruleset(site))  # twice: the second load replaces, it does not add
    probes = all_probes(site, cell_network)
    outcome = cell_network.probe(probes)
    assert outcome[Probe("tcp", "10.91.2.20", "10.91.3.11", 502)]  # the HMI polls plc2
    assert not outcome[Probe("tcp", "10.91.3.11", "10.91.2.20", 502)]  # never the reverse
    assert not outcome[Probe("tcp", "10.91.2.20", "10.91.3.10", 502)]  # plc1 is gateway-only
    assert outcome[Probe("tcp", "10.91.2.5", "10.91.3.10", 502)]  # ... and the gateway reaches it
    assert not outcome[Probe("udp", "10.91.2.20", "10.91.3.10", 2222)]
    assert outcome[Probe("udp", "10.91.2.5", "10.91.3.10", 2222)]
    assert not outcome[Probe("tcp", "10.91.1.30", "10.91.3.11", 502)]  # IT never reaches the cell
    assert_as_model(site, cell_network, probes)
    assert drift(site, running_document(netns=cell_network.router), at=datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("variant", "zone"),
    [("island", "cell"), ("island", "scada"), ("fail-closed", "cell"), ("fail-closed", None)],
)
def test_island_and_fail_closed_variants_behave_as_declared(
    cell_network: PlantNetwork, variant: str, zone: str | None
) -> None:
    site = cell_plant()
    cell_network.load(render_ruleset(site, variant=variant, zone=zone))  # type: ignore[arg-type]
    probes = all_probes(site, cell_network)
    outcome = cell_network.probe(probes)
    assert_as_model(site, cell_network, probes, variant=variant, zone=zone)
    if variant == "island":
        assert not any(
            seen
            for p, seen in outcome.items()
            if zone in (cell_network.zone_of(p.source), cell_network.zone_of(p.destination))
        )
    else:
        assert outcome[Probe("tcp", "10.91.2.5", "10.91.3.11", 502)]  # the gateway still reaches the cell
        assert not outcome[Probe("tcp", "10.91.2.20", "10.91.3.11", 502)]


def _window_around(now: datetime, zone: str, start_offset: timedelta, length: timedelta) -> Window:
    local = (now + start_offset).astimezone(ZoneInfo(zone))
    start = local.hour * 60 + local.minute
    return Window("w", (local.weekday(),), start, (start + int(length.total_seconds() // 60)) % 1440)


@pytest.mark.parametrize("timezone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_schedule_windows_open_only_inside_them_in_the_site_time_zone(
    cell_network: PlantNetwork, timezone: str
) -> None:
    now = datetime.now(UTC)
    open_window = _window_around(now, timezone, timedelta(minutes=-30), timedelta(hours=1))
    closed_window = _window_around(now, timezone, timedelta(hours=3), timedelta(hours=1))
    ssh = Probe("tcp", "10.91.1.30", "10.91.2.20", 22)
    for window, expected in ((open_window, True), (closed_window, False)):
        site = cell_plant(timezone=timezone, windows={"w": window}, schedule=("w",))
        cell_network.load(render_ruleset(site))
        assert cell_network.probe([ssh]) == {ssh: expected}, (window, render_ruleset(site))
        assert model_allows(site, ssh, datetime.now(UTC)) is expected


# Random models: 2-4 zones, random conduits and channels, sometimes a gateway-only asset.

ZONE_HOSTS = ("5", "10", "11")


@st.composite
def random_sites(draw: st.DrawFn) -> SiteModel:
    count = draw(st.integers(2, 4))
    zones = tuple(make_zone(f"z{i}", f"10.91.{i + 1}.0/24") for i in range(count))
    ids = [z.id for z in zones]
    conduits = []
    for c in range(draw(st.integers(1, 3))):
        ends = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))
        channels = []
        for h in range(draw(st.integers(1, 2))):
            transport: Literal["tcp", "udp"] = draw(st.sampled_from(("tcp", "udp")))
            pool = TCP_PORTS if transport == "tcp" else UDP_PORTS
            ports = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)))
            initiators, responders = (ends[0],), (ends[1],) if draw(st.booleans()) else tuple(ends)
            channels.append(make_channel(f"ch{h}", transport, transport, ports, initiators, responders))
        conduits.append(Conduit(f"c{c}", f"c{c}", tuple(ends), tuple(channels), SecurityLevel.uniform(1)))
    gateway_zone = draw(st.integers(0, count - 1))
    plc_zone = draw(st.integers(0, count - 1))
    assets = (
        make_asset("plc", f"10.91.{plc_zone + 1}.10", f"z{plc_zone}", gateway_only=draw(st.booleans())),
    )
    gateways = (ipaddress.ip_address(f"10.91.{gateway_zone + 1}.5"),)
    return SiteModel(
        "r", "random", "UTC", zones, tuple(conduits), assets, MappingProxyType({}), gateways=gateways
    )


@pytest.fixture(scope="module")
def four_zones() -> Iterator[PlantNetwork]:
    _require_root()
    zones = [(f"z{i}", f"10.91.{i + 1}.0/24", [f"10.91.{i + 1}.{h}" for h in ZONE_HOSTS]) for i in range(4)]
    with PlantNetwork(zones, TCP_PORTS, UDP_PORTS) as network:
        yield network


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=random_sites())
def test_random_models_behave_as_the_model_says(four_zones: PlantNetwork, site: SiteModel) -> None:
    four_zones.load(render_ruleset(site))
    in_model = {z.id for z in site.zones}
    probes = [
        p
        for p in all_probes(site, four_zones)
        if {four_zones.zone_of(p.source), four_zones.zone_of(p.destination)} <= in_model
    ]
    assert_as_model(site, four_zones, probes)
