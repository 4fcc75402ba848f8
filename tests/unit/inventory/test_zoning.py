"""`zones suggest` on hand-built inventories: zones by subnet at the level of their hosts'
roles, conduits and channels from the edges, assets, and a draft that always loads."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory.zoning import LOCAL_NETWORKS, SuggestOptions, suggest_plant
from plantwarden.zones.plant.load import load_plant_bytes
from plantwarden.zones.plant.model import SecurityLevel
from tests.unit.inventory.zoning_support import check_draft, comments, edge, host

SITE = "plant"
HMI, HISTORIAN, ENG = "10.1.1.10", "10.1.1.30", "10.1.1.20"
PLCS = ("10.1.2.11", "10.1.2.12", "10.1.2.13")
STRAY = "10.1.2.50"
DC, OFFICE = "10.1.0.5", "10.1.0.10"
WEB = "203.0.113.7"
SWITCH = "10.1.2.2"

HOSTS = [
    host(HMI, "hmi"),
    host(HISTORIAN, "historian", 0.8),
    host(ENG, "engineering_workstation", 0.5),
    *(host(plc, "plc", name=f"tank-{n}") for n, plc in enumerate(PLCS, 1)),
    host(STRAY, "it_host", 0.6),
    host(SWITCH, "network_device"),
    host(DC, "it_host", 0.6),
    host(OFFICE, "it_host", 0.6),
    host(WEB, "it_host", 0.6),
]
EDGES = [
    *(edge(HMI, plc, operations=("READ", "WRITE")) for plc in PLCS),
    *(edge(HISTORIAN, plc) for plc in PLCS),
    edge(ENG, PLCS[0], operations=("READ", "PROGRAM", "MALFORMED")),
    *(edge(plc, DC, "unknown", 123, transport="udp") for plc in PLCS),
    edge(STRAY, DC, "unknown", 123, transport="udp"),
    edge(OFFICE, WEB, "unknown", 443),
    edge(OFFICE, DC, "unknown", 53, transport="udp"),
    edge(HMI, "10.1.1.50", "unknown", 8000),
]


def test_a_plant_of_three_subnets_and_the_outside_becomes_its_zones_conduits_and_assets() -> None:
    suggestion = suggest_plant(SITE, HOSTS, EDGES)
    site = check_draft(suggestion, EDGES)
    levels = {z.id: (z.purdue_level, [str(s) for s in z.subnets], z.security_level) for z in site.zones}
    assert levels == {
        "enterprise-10-1-0": (4, ["10.1.0.0/24"], SecurityLevel.uniform(1)),
        "supervisory-10-1-1": (2, ["10.1.1.0/24"], SecurityLevel.uniform(2)),
        "cell-10-1-2": (1, ["10.1.2.0/24"], SecurityLevel.uniform(2)),
        "external": (5, [], SecurityLevel.uniform(0)),
    }
    assert site.zone("external").assets == ("it-host-203-0-113-7",)
    assert "mixed zone; outliers to move or to split off: 10.1.2.50 it_host (level 4)" in comments(suggestion)
    assert "not voting (network devices, unknown roles): 10.1.2.2" in comments(suggestion)
    conduits = {c.id: sorted(c.zones) for c in site.conduits}
    assert conduits == {
        "enterprise-10-1-0--cell-10-1-2": ["cell-10-1-2", "enterprise-10-1-0"],
        "external--enterprise-10-1-0": ["enterprise-10-1-0", "external"],
        "supervisory-10-1-1--cell-10-1-2": ["cell-10-1-2", "supervisory-10-1-1"],
    }
    modbus = site.conduit("supervisory-10-1-1--cell-10-1-2").channels[0]
    assert (modbus.protocol, modbus.initiators, modbus.responders) == (
        "modbus",
        ("supervisory-10-1-1",),
        ("cell-10-1-2",),
    )
    assert modbus.operations == {"read", "write", "program"}
    assert modbus.clients == ("eng-ws-10-1-1-20", "historian-10-1-1-30", "hmi-10-1-1-10")
    assert "malformed requests were seen too: no channel allows them" in comments(suggestion)
    ntp = site.conduit("enterprise-10-1-0--cell-10-1-2").channels[0]
    assert (ntp.protocol, ntp.transport, ntp.ports, ntp.clients) == ("ntp", "udp", (123,), ())
    https = site.conduit("external--enterprise-10-1-0").channels[0]
    assert (https.initiators, https.clients) == (("enterprise-10-1-0",), ("it-host-10-1-0-10",))
    assets = {a.id: (a.zone, a.criticality) for a in site.assets}
    assert assets["plc-10-1-2-11"] == ("cell-10-1-2", "high")
    assert assets["network-device-10-1-2-2"] == ("cell-10-1-2", "medium")
    assert site.asset("plc-10-1-2-12").name == "tank-2 (PLC)"
    # The engineering workstation's role is below the threshold: an asset only as a named client.
    assert "declared as a client of channel supervisory-10-1-1--cell-10-1-2/modbus" in comments(suggestion)
    assert "10.1.1.50" not in {str(a) for asset in site.assets for a in asset.addresses}


def test_more_than_three_clients_leave_a_channel_open_to_the_whole_zone() -> None:
    cells = [f"10.1.2.{n}" for n in range(11, 15)]
    hosts = [host(DC, "it_host"), *(host(a, "plc", 0.9) for a in cells)]
    edges = [edge(a, DC, "unknown", 123, transport="udp") for a in cells]
    site = check_draft(suggest_plant(SITE, hosts, edges), edges)
    (channel,) = site.conduits[0].channels
    assert channel.clients == ()


def test_an_ipv6_plant_is_zoned_by_slash_64_and_the_ids_stay_valid() -> None:
    plc, hmi = "fd00:1:2:3::11", "fd00:1:2:4::10"
    hosts = [host(plc, "plc"), host(hmi, "hmi"), host("fd00:1:2:3::", "plc")]
    edges = [edge(hmi, plc), edge(hmi, "fd00:1:2:3::")]
    site = check_draft(suggest_plant(SITE, hosts, edges), edges)
    zones = {z.id: [str(s) for s in z.subnets] for z in site.zones}
    assert zones == {"cell-fd00-1-2-3": ["fd00:1:2:3::/64"], "supervisory-fd00-1-2-4": ["fd00:1:2:4::/64"]}
    assert {a.id for a in site.assets} == {"plc-fd00-1-2-3--11", "hmi-fd00-1-2-4--10", "plc-fd00-1-2-3"}
    joined = check_draft(suggest_plant(SITE, hosts, edges, SuggestOptions(ipv6_prefix=48)), edges)
    assert [(z.id, [str(s) for s in z.subnets]) for z in joined.zones] == [
        ("cell-fd00-1-2", ["fd00:1:2::/48"])
    ]


def test_without_roles_a_zone_is_level_3_and_unclassified() -> None:
    hosts = [host("10.9.9.5", None), host("10.9.8.5", "unknown", 0.0)]
    edges = [edge("10.9.9.5", "10.9.8.5", "unknown", 4000)]
    suggestion = suggest_plant(SITE, hosts, edges)
    site = check_draft(suggestion, edges)
    assert [(z.id, z.purdue_level) for z in site.zones] == [
        ("unclassified-10-9-8", 3),
        ("unclassified-10-9-9", 3),
    ]
    assert "no host with a known role" in comments(suggestion)
    (channel,) = site.conduits[0].channels
    assert (channel.protocol, channel.ports, channel.clients) == ("tcp", (4000,), ("host-10-9-9-5",))
    assert [a.id for a in site.assets] == ["host-10-9-9-5"]


def test_a_tie_goes_to_the_lower_level_and_a_shorter_prefix_joins_subnets() -> None:
    hosts = [host("10.1.1.10", "hmi"), host("10.1.1.40", "it_host"), host("10.1.2.11", "plc")]
    edges = [edge("10.1.1.10", "10.1.2.11")]
    suggestion = suggest_plant(SITE, hosts, edges)
    assert check_draft(suggestion, edges).zone("supervisory-10-1-1").purdue_level == 2
    assert "a tie between levels goes to the lower level" in comments(suggestion)
    joined = check_draft(suggest_plant(SITE, hosts, edges, SuggestOptions(ipv4_prefix=16)), edges)
    assert [(z.id, z.purdue_level) for z in joined.zones] == [("cell-10-1", 1)]
    assert joined.conduits == ()


def test_services_ports_and_both_directions_get_their_own_channels() -> None:
    a, b = "10.1.1.10", "10.1.2.11"
    hosts = [host(a, "hmi"), host(b, "plc")]
    edges = [
        edge(a, b, port=5020),
        edge(a, b, "unknown", 8080),
        edge(b, a, "unknown", 8080),
        edge(a, b, "unknown", 502),
        edge(b, a, "mqtt", 1883, operations=("WRITE", "OTHER")),
    ]
    site = check_draft(suggest_plant(SITE, hosts, edges), edges)
    channels = {c.id: (c.protocol, c.ports, c.initiators[0][:4]) for c in site.conduits[0].channels}
    assert channels == {
        "mqtt": ("mqtt", (1883,), "cell"),
        "modbus": ("modbus", (502, 5020), "supe"),
        "tcp-8080": ("tcp", (8080,), "cell"),
        "tcp-8080-from-supervisory-10-1-1": ("tcp", (8080,), "supe"),
    }


def test_an_address_reused_in_two_segments_gives_two_zones_and_one_asset() -> None:
    hosts = [
        host("10.0.2.11", "plc", segment="line-1"),
        host("10.0.2.11", "plc", segment="line-2"),
        host("10.0.1.10", "hmi", segment="line-1"),
    ]
    edges = [edge("10.0.1.10", "10.0.2.11", segment="line-1")]
    suggestion = suggest_plant(SITE, hosts, edges)
    site = check_draft(suggestion, edges)
    zones = {(z.id, z.segment) for z in site.zones}
    assert zones == {
        ("supervisory-10-0-1-line-1", "line-1"),
        ("cell-10-0-2-line-1", "line-1"),
        ("cell-10-0-2-line-2", "line-2"),
    }
    assert [(a.id, a.zone) for a in site.assets if a.id.startswith("plc")] == [
        ("plc-10-0-2-11", "cell-10-0-2-line-1")
    ]
    assert ", zone: cell-10-0-2-line-1," in suggestion.text
    assert "Not declared: the host at 10.0.2.11, whose addresses other assets hold." in comments(suggestion)


def test_a_host_with_addresses_in_two_zones_keeps_those_of_its_first_zone() -> None:
    hosts = [host("10.1.1.10", "hmi", more=("10.1.2.10", "10.1.1.11")), host("10.1.2.11", "plc")]
    edges = [edge("10.1.2.10", "10.1.2.11"), edge("10.1.1.11", "10.1.2.11")]
    suggestion = suggest_plant(SITE, hosts, edges)
    site = check_draft(suggestion, edges)
    hmi = site.asset("hmi-10-1-1-10")
    assert hmi.zone == "supervisory-10-1-1" and [str(a) for a in hmi.addresses] == ["10.1.1.10", "10.1.1.11"]
    assert "also at 10.1.2.10, left to zone cell-10-1-2 (an address belongs to one zone)" in comments(
        suggestion
    )
    assert ", zone: " not in suggestion.text


def test_an_outside_address_seen_in_two_segments_is_one_asset_and_a_host_subnet() -> None:
    edges = [edge("10.0.0.1", WEB, segment="line-a"), edge("10.0.0.1", WEB, segment="line-b")]
    suggestion = suggest_plant(SITE, [host(WEB, "it_host", segment="line-a")], edges)
    site = check_draft(suggestion, edges)
    assert site.zone("external-line-a").assets == ("it-host-203-0-113-7",)
    assert [str(s) for s in site.zone("external-line-b").subnets] == ["203.0.113.7/32"]


def test_a_plant_on_public_addresses_names_them_local_and_zones_stay_inside_them() -> None:
    hosts = [host("203.0.113.5", "plc"), host("203.0.113.6", "hmi"), host("203.0.113.200", "it_host")]
    edges = [edge("203.0.113.6", "203.0.113.5"), edge("203.0.113.6", "203.0.113.200", "unknown", 443)]
    options = SuggestOptions(local_networks=(*LOCAL_NETWORKS, ipaddress.ip_network("203.0.113.0/28")))
    site = check_draft(suggest_plant(SITE, hosts, edges, options), edges)
    zones = {z.id: [str(s) for s in z.subnets] for z in site.zones}
    assert zones == {"cell-203-0-113-0-28": ["203.0.113.0/28"], "external": []}
    assert site.zone("external").assets == ("it-host-203-0-113-200",)


def test_multicast_broadcast_and_portless_traffic_is_left_out_and_said_so() -> None:
    hosts = [host("10.1.2.11", "plc"), host("10.1.1.10", "hmi")]
    edges = [
        edge("10.1.1.10", "10.1.2.11"),
        edge("10.1.2.11", "224.0.0.251", "unknown", 5353, transport="udp"),
        edge("10.1.2.11", "255.255.255.255", "bacnet", 47808, transport="udp"),
        edge("10.1.2.11", "10.1.1.10", "unknown", 0, transport="udp"),
    ]
    suggestion = suggest_plant(SITE, hosts, edges)
    site = check_draft(suggestion, edges[:1])
    assert [z.id for z in site.zones] == ["supervisory-10-1-1", "cell-10-1-2"]
    assert [c.id for c in site.conduits[0].channels] == ["modbus"]
    notes = comments(suggestion)
    assert "Left out, as channels name unicast hosts: 2 communications with a multicast" in notes
    assert (
        "Left out, as channels name TCP and UDP ports: 1 service between zones over an IP protocol" in notes
    )


def test_device_text_cannot_break_out_of_its_line_or_quotes() -> None:
    hostile = 'evil"\n  - {id: x}\u202e #: [\\'
    hosts = [host("10.1.2.11", "plc", name=hostile, evidence=(hostile,)), host("10.1.1.10", "hmi")]
    edges = [edge("10.1.1.10", "10.1.2.11")]
    suggestion = suggest_plant(SITE, hosts, edges)
    site = check_draft(suggestion, edges)
    assert site.asset("plc-10-1-2-11").name == 'evil"\ufffd  - {id: x}\ufffd #: [\\ (PLC)'
    assert len(site.assets) == 2
    assert all(
        line.lstrip().startswith("#")
        for line in suggestion.text.splitlines()
        if "evil" in line and "name:" not in line
    )


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="has no stored hosts or communications"):
        suggest_plant(SITE, [], [])
    with pytest.raises(InvalidInput, match="is not a site id"):
        suggest_plant("Plant 1", HOSTS, EDGES)
    with pytest.raises(InvalidInput, match="is not a site id"):  # Python's `$` matches before a final \n
        suggest_plant("plant\n", HOSTS, EDGES)
    with pytest.raises(InvalidInput, match="not an IP address"):
        suggest_plant(SITE, [host("10.1.1.300", "hmi")], [])
    with pytest.raises(InvalidInput, match="IPv4 prefix length must be 8-32"):
        SuggestOptions(ipv4_prefix=33)


def test_a_numeric_site_id_is_written_so_that_it_reads_back_as_text() -> None:
    suggestion = suggest_plant("123", HOSTS, EDGES)
    assert load_plant_bytes(suggestion.text.encode()).sites[0].id == "123"


ADDRESSES = st.one_of(
    st.builds(lambda c, d: f"10.0.{c}.{d}", st.integers(0, 3), st.integers(1, 6)),
    st.builds(lambda d: f"198.51.100.{d}", st.integers(1, 3)),
    st.builds(lambda h: f"fd00:0:0:{h}::1", st.integers(0, 2)),
    st.sampled_from(["224.0.0.251", "255.255.255.255", "ff02::1", "fe80::1"]),
)
GROUPS = {"224.0.0.251", "255.255.255.255", "ff02::1"}
ROLES = st.sampled_from(
    [
        None,
        "plc",
        "hmi",
        "historian",
        "engineering_workstation",
        "it_host",
        "iot_device",
        "network_device",
        "unknown",
    ]
)
SERVICES = st.sampled_from(
    [
        ("modbus", "tcp", 502),
        ("mqtt", "tcp", 1883),
        ("unknown", "udp", 53),
        ("unknown", "tcp", 8000),
        ("s7comm", "tcp", 102),
        ("unknown", "udp", 47808),
    ]
)


def segment_of(address: str) -> str:
    """Two segments, so that the same subnet is seen in both."""
    return "line-a" if address[-1] in "135" else "line-b"


@settings(max_examples=40, deadline=None)
@given(
    roles=st.dictionaries(
        ADDRESSES,
        st.tuples(ROLES, st.floats(0, 1), st.lists(ADDRESSES, max_size=2), st.text(max_size=12)),
        max_size=12,
    ),
    talks=st.lists(st.tuples(ADDRESSES, ADDRESSES, SERVICES), max_size=15),
    prefix=st.sampled_from([16, 24, 28]),
)
def test_any_inventory_gives_a_draft_that_loads_with_every_edge_carried(
    roles: dict[str, tuple[str | None, float, list[str], str]],
    talks: list[tuple[str, str, tuple[str, str, int]]],
    prefix: int,
) -> None:
    hosts = [
        host(a, role, confidence, segment=segment_of(a), more=tuple(more), name=name)
        for a, (role, confidence, more, name) in roles.items()
    ]
    edges = [
        edge(client, server, protocol, port, transport=transport, segment=segment_of(client))
        for client, server, (protocol, transport, port) in talks
        if client != server
    ]
    talked = [e for e in edges if not {e.client, e.server} & GROUPS]
    if not talked and not {a for h in hosts for a in h.addresses} - GROUPS:
        with pytest.raises(InvalidInput, match="has no stored hosts or communications"):
            suggest_plant(SITE, hosts, edges)
        return
    site = check_draft(suggest_plant(SITE, hosts, edges, SuggestOptions(ipv4_prefix=prefix)), edges)
    outside = {a for e in talked for a in (e.client, e.server)} | {a for h in hosts for a in h.addresses}
    external = {str(a) for asset in site.assets if asset.zone.startswith("external") for a in asset.addresses}
    assert external == {a for a in outside if a.startswith("198.51.100.")}
