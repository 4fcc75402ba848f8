"""Sightings from what the sensor decodes: hand-built frames (scapy) of every identity source and
of plain IP traffic, each checked for its addresses, binding, attributes and confidence, and fed
to an asset book where the merge is the point (a DHCP hostname reaching the leased address, a
router MAC found from flows). Garbage frames never make it raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUManagementAddress,
    LLDPDUPortDescription,
    LLDPDUPortID,
    LLDPDUSystemDescription,
    LLDPDUSystemName,
    LLDPDUTimeToLive,
)
from scapy.contrib.pnio import ProfinetIO
from scapy.contrib.pnio_dcp import (
    DCPControlBlock,
    DCPDeviceIDBlock,
    DCPIPBlock,
    DCPManufacturerSpecificBlock,
    DCPNameOfStationBlock,
    ProfinetDCP,
)
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.inventory import AssetBook, Binding, RouterMac, Sighting
from plantwarden.monitoring.sensor import Sensor
from plantwarden.monitoring.sightings import ASSIGNED, OBSERVED, STATED, sightings

S = 1_000_000_000
PLC, HMI, SERVER = "00:1b:1b:01:02:03", "00:0e:8c:aa:bb:cc", "00:50:56:00:00:01"
BROADCAST, LLDP_GROUP, DCP_GROUP = "ff:ff:ff:ff:ff:ff", "01:80:c2:00:00:0e", "01:0e:cf:00:00:00"


def run(frames: Sequence[Packet | bytes], *, identity: bool = True) -> list[Sighting]:
    """The sightings of one batch of `frames`, one a millisecond from second 1."""
    batch = PacketBatch.from_packets([(S + i * 1_000_000, bytes(f)) for i, f in enumerate(frames)])
    sensor = Sensor(identity=identity)
    sensor.process(batch)
    return sightings(batch, decode_layers(batch), sensor.last_identity, "plant", "cell-1")


def only(found: list[Sighting], source: str) -> list[Sighting]:
    return [sighting for sighting in found if sighting.source == source]


# -- ARP -----------------------------------------------------------------------------------------


def test_arp_requests_and_replies_state_the_senders_pair_and_probes_state_nothing() -> None:
    found = run(
        [
            Ether(src=HMI, dst=BROADCAST) / ARP(op=1, hwsrc=HMI, psrc="10.0.0.20", pdst="10.0.0.10"),
            Ether(src=PLC, dst=HMI) / ARP(op=2, hwsrc=PLC, psrc="10.0.0.10", hwdst=HMI, pdst="10.0.0.20"),
            Ether(src=PLC, dst=BROADCAST) / ARP(op=1, hwsrc=PLC, psrc="0.0.0.0", pdst="10.0.0.11"),
            Ether(src=PLC, dst=BROADCAST) / ARP(op=3, hwsrc=PLC, psrc="10.0.0.10", pdst="10.0.0.10"),
        ]
    )
    assert [(s.source, s.ip, s.mac, s.binding, s.confidence) for s in found] == [
        ("arp", "10.0.0.20", HMI, Binding.AUTHORITATIVE, STATED),
        ("arp", "10.0.0.10", PLC, Binding.AUTHORITATIVE, STATED),
    ]
    assert [s.ts_ns for s in found] == [S, S + 1_000_000]
    assert {(s.site, s.segment) for s in found} == {("plant", "cell-1")}
    assert all(not s.attributes for s in found)


def test_arp_takes_the_sender_hardware_address_not_the_ethernet_source() -> None:
    (found,) = run([Ether(src=SERVER, dst=BROADCAST) / ARP(op=2, hwsrc=PLC, psrc="10.0.0.10")])
    assert found.mac == PLC


# -- DHCP ----------------------------------------------------------------------------------------


def dhcp(kind: str, source: tuple[str, int], destination: tuple[str, int], **bootp: Any) -> Packet:
    options: list[object] = [("message-type", kind)]
    if kind in ("discover", "request"):
        options += [("hostname", "plc-1"), ("vendor_class_id", "Siemens")]
    return (
        Ether(src=PLC if source[1] == 68 else SERVER, dst=BROADCAST)
        / IP(src=source[0], dst=destination[0])
        / UDP(sport=source[1], dport=destination[1])
        / BOOTP(op=1 if source[1] == 68 else 2, xid=7, chaddr=bytes.fromhex(PLC.replace(":", "")), **bootp)
        / DHCP(options=[*options, "end"])
    )


def test_a_dhcp_ack_binds_the_leased_address_and_the_clients_request_names_the_host() -> None:
    frames = [
        dhcp("discover", ("0.0.0.0", 68), ("255.255.255.255", 67)),
        dhcp("offer", ("10.0.0.1", 67), ("10.0.0.10", 68), yiaddr="10.0.0.10"),
        dhcp("request", ("0.0.0.0", 68), ("255.255.255.255", 67)),
        dhcp("ack", ("10.0.0.1", 67), ("10.0.0.10", 68), yiaddr="10.0.0.10"),
    ]
    found = only(run(frames), "dhcp")
    named = {"hostname": "plc-1", "vendor_class": "Siemens"}
    assert [(s.ip, s.mac, s.binding, dict(s.attributes)) for s in found] == [
        ("", PLC, Binding.NONE, named),  # discover
        ("", PLC, Binding.NONE, named),  # request; the offer binds nothing
        ("10.0.0.10", PLC, Binding.AUTHORITATIVE, {}),  # ack
    ]
    book = AssetBook()
    book.add_many(run(frames))
    asset = book.find("plant", "cell-1", "10.0.0.10")
    assert asset is not None
    assert asset.facts["hostname"].value == "plc-1"
    assert asset.facts["hostname"].source == "dhcp"
    assert asset.facts["vendor_class"].value == "Siemens"


def test_an_ack_to_a_relay_agent_binds_nothing_in_this_segment() -> None:
    relayed = dhcp("ack", ("10.9.0.1", 67), ("10.0.0.1", 67), yiaddr="10.0.0.10", giaddr="10.0.0.1")
    assert only(run([relayed]), "dhcp") == []
    to_client = dhcp("ack", ("10.0.0.1", 67), ("10.0.0.10", 68), yiaddr="10.0.0.10", giaddr="10.0.0.1")
    assert [s.ip for s in only(run([to_client]), "dhcp")] == ["10.0.0.10"]


def test_a_dhcp_ack_carries_the_host_name_when_the_server_echoes_it() -> None:
    ack = (
        Ether(src=SERVER, dst=PLC)
        / IP(src="10.0.0.1", dst="10.0.0.10")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, chaddr=bytes.fromhex(PLC.replace(":", "")), yiaddr="10.0.0.10")
        / DHCP(options=[("message-type", "ack"), ("hostname", "plc-1"), "end"])
    )
    (found,) = only(run([ack]), "dhcp")
    assert (found.ip, found.mac, dict(found.attributes)) == ("10.0.0.10", PLC, {"hostname": "plc-1"})


# -- LLDP ----------------------------------------------------------------------------------------


def lldp(source: str, chassis: LLDPDUChassisID, *more: Packet) -> Packet:
    frame = Ether(src=source, dst=LLDP_GROUP) / chassis / LLDPDUPortID(subtype=7, id="port-001")
    frame = frame / LLDPDUTimeToLive(ttl=120)
    for tlv in more:
        frame = frame / tlv
    return frame / LLDPDUEndOfLLDPDU()


def management(address: bytes, subtype: int = 1) -> LLDPDUManagementAddress:
    return LLDPDUManagementAddress(
        management_address_subtype=subtype,
        management_address=address,
        interface_numbering_subtype=2,
        interface_number=1,
    )


def test_lldp_binds_the_frames_source_to_its_management_address_and_names_the_system() -> None:
    frame = lldp(
        HMI,
        LLDPDUChassisID(subtype=7, id="scada-pc-1"),
        LLDPDUPortDescription(description="Intel NIC"),
        LLDPDUSystemName(system_name="SCADA-PC-1"),
        LLDPDUSystemDescription(description="Dell Inc. OptiPlex 990"),
        management(bytes([10, 0, 0, 20])),
    )
    (found,) = run([frame])
    assert (found.source, found.ip, found.mac, found.binding) == (
        "lldp",
        "10.0.0.20",
        HMI,
        Binding.AUTHORITATIVE,
    )
    assert dict(found.attributes) == {
        "chassis_id": "scada-pc-1",
        "port_id": "port-001",
        "port_description": "Intel NIC",
        "system_name": "SCADA-PC-1",
        "system_description": "Dell Inc. OptiPlex 990",
    }
    assert found.confidence == STATED


def test_lldp_without_a_usable_management_address_names_the_mac_only() -> None:
    no_address = lldp(PLC, LLDPDUChassisID(subtype=4, id=PLC))
    unset = lldp(PLC, LLDPDUChassisID(subtype=4, id=PLC), management(bytes(4)))
    for frame in (no_address, unset):
        (found,) = run([frame])
        assert (found.ip, found.mac, found.binding) == ("", PLC, Binding.NONE)
        assert found.attributes["chassis_id"] == PLC


def test_lldp_takes_an_ipv6_management_address_when_there_is_no_ipv4() -> None:
    address = bytes.fromhex("fe800000000000000000000000010000")
    (found,) = run([lldp(PLC, LLDPDUChassisID(subtype=4, id=PLC), management(address, subtype=2))])
    assert found.ip == "fe80::1:0"


def test_two_lldp_interfaces_of_one_chassis_are_one_asset() -> None:
    chassis = LLDPDUChassisID(subtype=7, id="scalance-x208")
    book = AssetBook()
    book.add_many(run([lldp(PLC, chassis, management(bytes([10, 0, 0, 2]))), lldp(HMI, chassis)]))
    (asset,) = book.assets()
    assert {address.address for address in asset.macs} == {PLC, HMI}


# -- PROFINET DCP --------------------------------------------------------------------------------


def identify_response(station: bytes = b"plc-1", ip: str = "10.0.0.10") -> Packet:
    blocks = [
        DCPNameOfStationBlock(name_of_station=station),
        DCPDeviceIDBlock(vendor_id=0x002A, device_id=0x0A01, dcp_block_length=6, padding=b""),
        DCPManufacturerSpecificBlock(device_vendor_value=b"S7-1500", dcp_block_length=9),
        DCPIPBlock(ip=ip, netmask="255.255.255.0", gateway="10.0.0.1", dcp_block_length=14, padding=b""),
    ]
    length = sum(len(bytes(block)) for block in blocks)
    return (
        Ether(src=PLC, dst=HMI)
        / ProfinetIO(frameID=0xFEFF)
        / ProfinetDCP(service_id=5, service_type=1, dcp_data_length=length, dcp_blocks=blocks)
    )


def set_request(**fields: Any) -> Packet:
    return (
        Ether(src=HMI, dst=PLC)
        / ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(service_id=4, service_type=0, **fields)
    )


SET_IP: dict[str, Any] = {
    "option": 1,
    "sub_option": 2,
    "dcp_block_length": 14,
    "block_qualifier": 1,
    "ip": "10.0.0.99",
    "netmask": "255.255.255.0",
    "gateway": "10.0.0.1",
    "dcp_data_length": 18,
}
SET_NAME: dict[str, Any] = {
    "option": 2,
    "sub_option": 2,
    "dcp_block_length": 9,
    "block_qualifier": 1,
    "name_of_station": b"plc-new",
    "dcp_data_length": 14,
}


def test_a_dcp_identify_response_states_the_senders_identity() -> None:
    identify = ProfinetDCP(service_id=5, service_type=0, option=2, sub_option=2, dcp_data_length=9)
    request = Ether(src=HMI, dst=DCP_GROUP) / ProfinetIO(frameID=0xFEFE) / identify
    found = run([request, identify_response()])
    (response,) = found  # the request names the station searched for, not its sender
    assert (response.source, response.ip, response.mac) == ("pn_dcp", "10.0.0.10", PLC)
    assert response.binding == Binding.AUTHORITATIVE
    assert dict(response.attributes) == {
        "station_name": "plc-1",
        "vendor_id": "0x002a",
        "device_id": "0x0a01",
        "device_vendor": "S7-1500",
    }


def test_an_unaddressed_dcp_device_is_named_by_its_mac() -> None:
    (found,) = run([identify_response(ip="0.0.0.0")])
    assert (found.ip, found.mac, found.binding) == ("", PLC, Binding.NONE)
    assert found.attributes["station_name"] == "plc-1"


def test_dcp_set_requests_assign_to_the_destination_with_less_confidence() -> None:
    reset = {"option": 5, "sub_option": 6, "dcp_block_length": 2, "block_qualifier": 2, "dcp_data_length": 6}
    set_response = (
        Ether(src=PLC, dst=HMI)
        / ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=1,
            dcp_data_length=8,
            dcp_blocks=[DCPControlBlock(response=1, response_sub_option=2, block_error=0)],
        )
    )
    found = run([set_request(**SET_IP), set_request(**SET_NAME), set_request(**reset), set_response])
    assert [(s.ip, s.mac, s.binding, dict(s.attributes), s.confidence) for s in found] == [
        ("10.0.0.99", PLC, Binding.AUTHORITATIVE, {}, ASSIGNED),
        ("", PLC, Binding.NONE, {"station_name": "plc-new"}, ASSIGNED),
    ]


def test_a_renamed_station_keeps_the_devices_own_statement_until_it_repeats_the_new_name() -> None:
    book = AssetBook()
    book.add_many(run([identify_response(), set_request(**SET_NAME)]))
    (asset,) = book.assets()
    assert asset.facts["station_name"].value == "plc-1"  # stated (0.9) beats assigned (0.7)
    book.add_many(run([identify_response(station=b"plc-new")]))
    assert book.get(asset.id).facts["station_name"].value == "plc-new"


# -- flows ---------------------------------------------------------------------------------------


def tcp(source_mac: str, source: str, destination: str = "10.0.0.10") -> Packet:
    return Ether(src=source_mac, dst=PLC) / IP(src=source, dst=destination) / TCP(sport=40000, dport=502)


def test_each_distinct_mac_and_ip_pair_is_observed_once_at_its_first_packet() -> None:
    frames = [
        tcp(HMI, "10.0.0.20"),
        tcp(HMI, "10.0.0.20"),
        tcp(SERVER, "10.0.0.1"),
        tcp(HMI, "10.0.0.21"),
        tcp(SERVER, "10.0.0.1"),
    ]
    found = run(frames)
    assert [(s.source, s.mac, s.ip, s.binding, s.confidence) for s in found] == [
        ("flow", HMI, "10.0.0.20", Binding.OBSERVED, OBSERVED),
        ("flow", SERVER, "10.0.0.1", Binding.OBSERVED, OBSERVED),
        ("flow", HMI, "10.0.0.21", Binding.OBSERVED, OBSERVED),
    ]
    assert [s.ts_ns for s in found] == [S, S + 2_000_000, S + 3_000_000]


def test_flows_skip_sources_that_name_no_host_and_keep_ipv6() -> None:
    frames = [
        Ether(src=PLC, dst=BROADCAST) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67),
        tcp(BROADCAST, "10.0.0.20"),  # a group MAC as source: forged or broken
        Ether(src=HMI, dst=PLC) / IPv6(src="fe80::1:0", dst="fe80::2") / TCP(),
    ]
    found = run(frames, identity=False)
    assert [(s.mac, s.ip) for s in found] == [(HMI, "fe80::1:0")]


def test_flows_find_a_router_mac_and_keep_it_off_the_hosts_behind_it() -> None:
    router = "00:00:5e:00:01:01"
    frames = [
        Ether(src=router, dst=BROADCAST) / ARP(op=2, hwsrc=router, psrc="10.0.0.1"),
        *(tcp(router, f"192.168.7.{host}") for host in (1, 2, 3)),
    ]
    book = AssetBook()
    book.add_many(run(frames))
    assert book.router_macs() == {RouterMac("plant", "cell-1", router)}
    behind = book.find("plant", "cell-1", "192.168.7.2")
    assert behind is not None and not behind.macs


def test_without_identity_decoding_only_flows_come_out() -> None:
    arp = Ether(src=PLC, dst=BROADCAST) / ARP(op=1, hwsrc=PLC, psrc="10.0.0.10", pdst="10.0.0.1")
    assert [s.source for s in run([arp, tcp(HMI, "10.0.0.20")], identity=False)] == ["flow"]


def test_sightings_come_in_packet_order_identity_before_the_packets_flow() -> None:
    ack = dhcp("ack", ("10.0.0.1", 67), ("10.0.0.10", 68), yiaddr="10.0.0.10")
    arp = Ether(src=HMI, dst=BROADCAST) / ARP(op=1, hwsrc=HMI, psrc="10.0.0.20", pdst="10.0.0.10")
    found = run([tcp(HMI, "10.0.0.20"), ack, arp])
    assert [(s.source, s.ip) for s in found] == [
        ("flow", "10.0.0.20"),
        ("dhcp", "10.0.0.10"),
        ("flow", "10.0.0.1"),
        ("arp", "10.0.0.20"),
    ]


# -- hostile input -------------------------------------------------------------------------------

IDENTITY_HEADERS = [
    bytes.fromhex("ffffffffffff001b1b0102030806"),
    bytes.fromhex("0180c200000e001b1b01020388cc"),
    bytes.fromhex("010ecf000000001b1b0102038892feff"),
    bytes.fromhex("001b1b010203000e8caabbcc8892fefd"),
    bytes(dhcp("ack", ("10.0.0.1", 67), ("10.0.0.10", 68)))[:42],
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(IDENTITY_HEADERS), st.binary(max_size=300)), min_size=1, max_size=8)
)
def test_garbage_frames_never_raise(frames: list[tuple[bytes, bytes]]) -> None:
    for sighting in run([header + body for header, body in frames]):
        assert isinstance(sighting, Sighting)


@pytest.mark.parametrize(
    "frame",
    [
        identify_response(),
        lldp(HMI, LLDPDUChassisID(subtype=4, id=HMI), management(bytes([10, 0, 0, 20]))),
        dhcp("ack", ("10.0.0.1", 67), ("10.0.0.10", 68), yiaddr="10.0.0.10"),
    ],
    ids=["dcp", "lldp", "dhcp"],
)
def test_a_truncated_identity_frame_gives_what_it_carries_or_nothing(frame: Packet) -> None:
    whole = bytes(frame)
    for cut in range(14, len(whole)):
        for sighting in run([whole[:cut]]):
            assert sighting.mac in (PLC, HMI, SERVER)
            assert sighting.ip in ("", "10.0.0.1", "10.0.0.10", "10.0.0.20")
