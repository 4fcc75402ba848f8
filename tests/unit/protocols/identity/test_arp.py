"""ARP frames built by scapy (an independent encoder) decode with the expected fields on both
paths: requests, replies, gratuitous ARP, probes, RARP, other address formats, short frames."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from scapy.layers.l2 import ARP

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.identity import ArpMessage, IdentityFinding, Kind, decode_arp
from plantwarden.protocols.identity.vendors import shipped
from tests.unit.protocols.identity.test_identity_paths import both_paths

SIEMENS = "00:1b:1b:01:02:03"
PLC, HMI = "192.168.0.10", "192.168.0.20"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def arp(**fields: Any) -> ArpMessage:
    (message,), _ = both_paths(Kind.ARP, [bytes(ARP(**fields))])
    assert isinstance(message, ArpMessage)
    return message


def test_a_request_and_a_reply() -> None:
    request = arp(op=1, hwsrc=SIEMENS, psrc=PLC, hwdst="00:00:00:00:00:00", pdst=HMI)
    assert (request.opcode, request.sender_mac, request.sender_ip) == (1, mac(SIEMENS), ip(PLC))
    assert (request.target_mac, request.target_ip) == (0, ip(HMI))
    assert not request.gratuitous and not request.probe
    summary = request.summary()
    assert (summary.function_code, summary.function, summary.operation) == (1, "request", Operation.OTHER)
    assert not summary.is_response and summary.address == ip(HMI) and summary.targets == (HMI,)
    assert request.identity().mac == mac(SIEMENS) and request.identity().ip == ip(PLC)
    assert (shipped().lookup(request.identity().mac) or "").startswith("Siemens AG")

    reply = arp(op=2, hwsrc="00:0e:8c:aa:bb:cc", psrc=HMI, hwdst=SIEMENS, pdst=PLC)
    summary = reply.summary()
    assert (summary.function, summary.is_response, summary.address) == ("reply", True, ip(HMI))
    assert summary.status == ParseStatus.OK and summary.finding == IdentityFinding.OK


def test_gratuitous_arp_and_probes_are_fields_not_findings() -> None:
    announcement = arp(op=1, hwsrc=SIEMENS, psrc=PLC, hwdst="ff:ff:ff:ff:ff:ff", pdst=PLC)
    assert announcement.gratuitous and not announcement.probe
    assert announcement.identity().gratuitous and announcement.status == ParseStatus.OK
    gratuitous_reply = arp(op=2, hwsrc=SIEMENS, psrc=PLC, hwdst="ff:ff:ff:ff:ff:ff", pdst=PLC)
    assert gratuitous_reply.gratuitous
    probe = arp(op=1, hwsrc=SIEMENS, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=PLC)
    assert probe.probe and not probe.gratuitous and probe.finding == IdentityFinding.OK
    assert probe.identity().ip == -1 and probe.identity().probe


@pytest.mark.parametrize(("op", "name", "response"), [(3, "rarp_request", False), (4, "rarp_reply", True)])
def test_rarp_operations_are_named(op: int, name: str, response: bool) -> None:
    summary = arp(op=op, hwsrc=SIEMENS, psrc=PLC, pdst=HMI).summary()
    assert (summary.function_code, summary.function, summary.is_response) == (op, name, response)


def test_other_address_formats_are_partial() -> None:
    frame = bytes(ARP(hwtype=1, ptype=0x86DD, hwlen=6, plen=16, op=1, hwsrc=SIEMENS)) + bytes(40)
    (message,), _ = both_paths(Kind.ARP, [frame])
    assert isinstance(message, ArpMessage)
    assert (message.ptype, message.plen, message.status) == (0x86DD, 16, ParseStatus.PARTIAL)
    assert message.sender_mac == -1 and message.finding == IdentityFinding.OK


def test_malformed_frames() -> None:
    frame = bytes(ARP(op=1, hwsrc=SIEMENS, psrc=PLC, pdst=HMI))
    messages, _ = both_paths(Kind.ARP, [frame[:7], frame[:27], frame[:6] + b"\x00\x00" + frame[8:]])
    assert [m.summary().finding for m in messages] == [
        IdentityFinding.TRUNCATED,
        IdentityFinding.TRUNCATED,
        IdentityFinding.BAD_ARP_OPCODE,
    ]
    assert messages[0].summary().operation == Operation.MALFORMED
    assert messages[1].summary().function == "request"


def test_ethernet_padding_is_ignored() -> None:
    message = decode_arp(bytes(ARP(op=1, hwsrc=SIEMENS, psrc=PLC, pdst=HMI)) + bytes(18))
    assert message.status == ParseStatus.OK and message.target_ip == ip(HMI)
