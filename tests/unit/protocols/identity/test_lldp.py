"""LLDPDUs built by scapy's contrib LLDP layer (an independent encoder) decode with the expected
fields on both paths: identifiers of every kind, capabilities, management addresses, PROFINET
and other organizationally specific TLVs, and the mandatory TLVs' order as a finding."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from scapy.config import conf
from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUGenericOrganisationSpecific,
    LLDPDUManagementAddress,
    LLDPDUPortDescription,
    LLDPDUPortID,
    LLDPDUSystemCapabilities,
    LLDPDUSystemDescription,
    LLDPDUSystemName,
    LLDPDUTimeToLive,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.identity import IdentityFinding, Kind, LldpMessage
from tests.unit.protocols.identity.test_identity_paths import both_paths

NEAREST_BRIDGE = "01:80:c2:00:00:0e"
SIEMENS = "00:1b:1b:01:02:03"


def lldpdu(tlvs: Packet) -> bytes:
    """The LLDPDU's bytes without Ethernet padding: scapy checks the TLVs in strict mode (unless a
    test turned it off) when built over Ethernet, which pads to 60 bytes; the bytes are the TLVs'."""
    framed = bytes(Ether(dst=NEAREST_BRIDGE, src=SIEMENS) / tlvs)[14:]
    strict = conf.contribs["LLDP"].strict_mode()
    conf.contribs["LLDP"].strict_mode_disable()
    try:
        data = bytes(tlvs.copy())
    finally:
        if strict:
            conf.contribs["LLDP"].strict_mode_enable()
    assert framed.startswith(data)
    return data


def decode(data: bytes) -> LldpMessage:
    (message,), _ = both_paths(Kind.LLDP, [data])
    assert isinstance(message, LldpMessage)
    return message


@pytest.fixture
def lenient() -> Iterator[None]:
    """scapy refuses to build LLDPDUs that break the standard unless strict mode is off."""
    conf.contribs["LLDP"].strict_mode_disable()
    try:
        yield
    finally:
        conf.contribs["LLDP"].strict_mode_enable()


def test_a_full_lldpdu() -> None:
    data = lldpdu(
        LLDPDUChassisID(subtype=4, id=SIEMENS)
        / LLDPDUPortID(subtype=7, id="port-001.plc-1")
        / LLDPDUTimeToLive(ttl=20)
        / LLDPDUPortDescription(description="Siemens, SIMATIC S7, CPU 1516, X1 P1")
        / LLDPDUSystemName(system_name="plc-1")
        / LLDPDUSystemDescription(description="SIMATIC S7-1500 6ES7 516-3AN02-0AB0")
        / LLDPDUSystemCapabilities(mac_bridge_available=1, station_only_available=1, station_only_enabled=1)
        / LLDPDUManagementAddress(
            management_address_subtype=1,
            management_address=ipaddress.IPv4Address("192.168.0.10").packed,
            interface_numbering_subtype=2,
            interface_number=3,
        )
        / LLDPDUManagementAddress(
            management_address_subtype=2,
            management_address=ipaddress.IPv6Address("fe80::21b:1bff:fe01:203").packed,
            interface_numbering_subtype=3,
            interface_number=1,
            object_id=b"\x2b\x06\x01",
        )
        / LLDPDUGenericOrganisationSpecific(org_code=0x000ECF, subtype=2, data=b"\x00\x00\x00\x00")
        / LLDPDUGenericOrganisationSpecific(org_code=0x000ECF, subtype=5, data=bytes.fromhex("001b1b010203"))
        / LLDPDUGenericOrganisationSpecific(org_code=0x00120F, subtype=1, data=b"\x03\x6c\x00\x00\x10")
        / LLDPDUEndOfLLDPDU()
    )
    message = decode(data + bytes(12))
    assert (message.chassis_subtype, message.chassis_id) == (4, SIEMENS)
    assert message.chassis_mac == int(SIEMENS.replace(":", ""), 16)
    assert (message.port_subtype, message.port_id, message.ttl) == (7, "port-001.plc-1", 20)
    assert message.port_description == "Siemens, SIMATIC S7, CPU 1516, X1 P1"
    assert (message.system_name, message.system_description) == (
        "plc-1",
        "SIMATIC S7-1500 6ES7 516-3AN02-0AB0",
    )
    assert (message.capabilities, message.enabled_capabilities) == (0x0084, 0x0080)
    assert message.management_addresses == ("192.168.0.10", "fe80::21b:1bff:fe01:203")
    assert message.management_interfaces == ((2, 3), (3, 1))
    assert message.organization_tlvs == ((0x000ECF, 2), (0x000ECF, 5), (0x00120F, 1))
    assert message.profinet == ("port_status", "chassis_mac")
    assert message.tlv_types == (1, 2, 3, 4, 5, 6, 7, 8, 8, 127, 127, 127, 0)
    assert message.status == ParseStatus.OK and message.finding == IdentityFinding.OK
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        1,
        "advertise",
        Operation.IDENTIFY,
    )
    assert summary.quantity == 12 and not summary.is_response
    identity = message.identity()
    assert (identity.mac, identity.ip, identity.name) == (
        message.chassis_mac,
        int(ipaddress.IPv4Address("192.168.0.10")),
        "plc-1",
    )
    assert identity.vendor_text == "SIMATIC S7-1500 6ES7 516-3AN02-0AB0"


@pytest.mark.parametrize(
    ("chassis", "text", "ip"),
    [
        (LLDPDUChassisID(subtype=5, family=1, id="10.1.2.3"), "10.1.2.3", "10.1.2.3"),
        (LLDPDUChassisID(subtype=5, family=2, id="2001:db8::1"), "2001:db8::1", None),
        (LLDPDUChassisID(subtype=7, id="scada-pc-060839"), "scada-pc-060839", None),
        (LLDPDUChassisID(subtype=6, id="eth0"), "eth0", None),
    ],
    ids=["ipv4", "ipv6", "local", "interface"],
)
def test_chassis_id_subtypes(chassis: Packet, text: str, ip: str | None) -> None:
    message = decode(
        lldpdu(
            chassis / LLDPDUPortID(subtype=3, id=SIEMENS) / LLDPDUTimeToLive(ttl=120) / LLDPDUEndOfLLDPDU()
        )
    )
    assert message.chassis_id == text and message.port_id == SIEMENS and message.chassis_mac == -1
    assert message.identity().ip == (int(ipaddress.IPv4Address(ip)) if ip else -1)


def test_a_shutdown_lldpdu() -> None:
    message = decode(
        lldpdu(
            LLDPDUChassisID(subtype=4, id=SIEMENS)
            / LLDPDUPortID(subtype=5, id="X1P1")
            / LLDPDUTimeToLive(ttl=0)
            / LLDPDUEndOfLLDPDU()
        )
    )
    assert message.summary().function == "shutdown" and message.summary().function_code == 2


def test_missing_or_misordered_mandatory_tlvs(lenient: None) -> None:
    del lenient
    no_port = lldpdu(LLDPDUChassisID(subtype=4, id=SIEMENS) / LLDPDUTimeToLive(ttl=20) / LLDPDUEndOfLLDPDU())
    no_chassis = lldpdu(LLDPDUPortID(subtype=5, id="X1") / LLDPDUTimeToLive(ttl=20) / LLDPDUEndOfLLDPDU())
    twice = lldpdu(
        LLDPDUChassisID(subtype=4, id=SIEMENS)
        / LLDPDUPortID(subtype=5, id="X1")
        / LLDPDUTimeToLive(ttl=20)
        / LLDPDUTimeToLive(ttl=30)
        / LLDPDUEndOfLLDPDU()
    )
    bad_ttl = lldpdu(
        LLDPDUChassisID(subtype=4, id=SIEMENS)
        / LLDPDUPortID(subtype=5, id="X1")
        / LLDPDUTimeToLive(_length=3, ttl=20)
        / b"\x00"
        / LLDPDUEndOfLLDPDU()
    )
    messages, _ = both_paths(Kind.LLDP, [no_port, no_chassis, twice, bad_ttl, no_port[:1], no_port[:5]])
    assert [m.summary().finding for m in messages] == [
        IdentityFinding.MISSING_MANDATORY_TLV,
        IdentityFinding.MISSING_MANDATORY_TLV,
        IdentityFinding.MISSING_MANDATORY_TLV,
        IdentityFinding.BAD_FIELD_LENGTH,
        IdentityFinding.TRUNCATED,
        IdentityFinding.LENGTH_OVERRUN,
    ]
    assert all(m.summary().status == ParseStatus.MALFORMED for m in messages)
    assert messages[2].summary().function == "advertise"


def test_bad_tlv_lengths(lenient: None) -> None:
    del lenient
    head = (
        LLDPDUChassisID(subtype=4, id=SIEMENS) / LLDPDUPortID(subtype=5, id="X1") / LLDPDUTimeToLive(ttl=20)
    )
    short_capabilities = lldpdu(head / LLDPDUSystemCapabilities(_length=2) / LLDPDUEndOfLLDPDU())
    overrun = lldpdu(head) + bytes.fromhex("0a10") + b"plc"
    org = lldpdu(head) + bytes.fromhex("fe03000ecf") + bytes(2)
    messages, _ = both_paths(Kind.LLDP, [short_capabilities[:-2] + bytes(2), overrun, org])
    assert [m.summary().finding for m in messages] == [
        IdentityFinding.BAD_FIELD_LENGTH,
        IdentityFinding.LENGTH_OVERRUN,
        IdentityFinding.BAD_FIELD_LENGTH,
    ]


def test_no_end_tlv_is_no_finding() -> None:
    head = (
        LLDPDUChassisID(subtype=4, id=SIEMENS) / LLDPDUPortID(subtype=5, id="X1") / LLDPDUTimeToLive(ttl=20)
    )
    message = decode(lldpdu(head / LLDPDUSystemName(system_name="rtu")))
    assert message.system_name == "rtu" and message.finding == IdentityFinding.OK
