"""DHCP messages built by scapy (an independent encoder) decode with the expected fields on both
paths: the BOOTP header, the options in scope, overload, and malformed options as findings."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.identity import DhcpMessage, IdentityFinding, Kind
from tests.unit.protocols.identity.test_identity_paths import both_paths

CLIENT = bytes.fromhex("001b1b010203")


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def dhcp(payload: bytes) -> DhcpMessage:
    (message,), _ = both_paths(Kind.DHCP, [payload])
    assert isinstance(message, DhcpMessage)
    return message


def build(options: list[Any], **header: Any) -> bytes:
    fields: dict[str, Any] = {"op": 1, "chaddr": CLIENT, "xid": 0x3903F326}
    fields.update(header)
    return bytes(BOOTP(**fields) / DHCP(options=options))


def raw(options: bytes) -> bytes:
    """A BOOTP header by scapy, then the cookie and `options` as given (bytes scapy will not build)."""
    return bytes(BOOTP(op=1, chaddr=CLIENT, xid=7))[:236] + b"\x63\x82\x53\x63" + options


def test_a_request_with_every_option_in_scope() -> None:
    message = dhcp(
        build(
            [
                ("message-type", "request"),
                ("hostname", "plc-1"),
                ("requested_addr", "10.0.0.9"),
                ("server_id", "10.0.0.1"),
                ("lease_time", 3600),
                ("subnet_mask", "255.255.255.0"),
                ("router", "10.0.0.1"),
                ("name_server", "10.0.0.2", "10.0.0.3"),
                ("vendor_class_id", "Siemens PLC"),
                ("client_id", b"\x01" + CLIENT),
                ("param_req_list", [1, 3, 6, 15]),
                ("client_FQDN", b"\x01\x00\x00plc-1.plant.example"),
                ("vendor_specific", b"\x01\x02\x03\x04\x05"),
                "end",
            ],
            flags=0x8000,
        )
    )
    assert (message.op, message.xid, message.htype, message.hlen) == (1, 0x3903F326, 1, 6)
    assert message.broadcast and message.client_mac == int(CLIENT.hex(), 16)
    assert (message.message_type, message.host_name, message.requested_ip) == (3, "plc-1", ip("10.0.0.9"))
    assert (message.server_id, message.lease_time, message.subnet_mask) == (
        ip("10.0.0.1"),
        3600,
        ip("255.255.255.0"),
    )
    assert message.routers == (ip("10.0.0.1"),) and message.dns_servers == (ip("10.0.0.2"), ip("10.0.0.3"))
    assert message.vendor_class == "Siemens PLC" and message.client_id == b"\x01" + CLIENT
    assert message.parameter_requests == (1, 3, 6, 15) and message.client_fqdn == "plc-1.plant.example"
    assert message.vendor_specific_length == 5
    assert message.status == ParseStatus.OK and message.finding == IdentityFinding.OK
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (3, "request", Operation.OTHER)
    assert not summary.is_response and summary.quantity == 13
    identity = message.identity()
    assert (identity.mac, identity.ip, identity.name) == (int(CLIENT.hex(), 16), ip("10.0.0.9"), "plc-1")
    assert (identity.vendor_text, identity.xid) == ("Siemens PLC", 0x3903F326)


@pytest.mark.parametrize(
    ("kind", "name", "response", "result"),
    [
        ("discover", "discover", False, -1),
        ("offer", "offer", True, -1),
        ("ack", "ack", True, 0),
        ("nak", "nak", True, 1),
    ],
)
def test_message_types(kind: str, name: str, response: bool, result: int) -> None:
    op = 2 if response else 1
    message = dhcp(
        build([("message-type", kind), "end"], op=op, yiaddr="10.0.0.9" if response else "0.0.0.0")
    )
    summary = message.summary()
    assert (summary.function, summary.is_response, summary.result) == (name, response, result)
    assert message.identity().ip == (ip("10.0.0.9") if response else -1)


def test_a_dns_wire_format_fqdn() -> None:
    wire = b"\x05\x00\x00\x05plc-1\x05plant\x00"
    assert (
        dhcp(build([("message-type", "request"), ("client_FQDN", wire), "end"])).client_fqdn == "plc-1.plant"
    )


def test_plain_bootp_has_no_message_type() -> None:
    message = dhcp(bytes(BOOTP(op=2, chaddr=CLIENT, yiaddr="10.0.0.7"))[:236])
    assert message.summary().function == "bootreply" and message.summary().function_code == -1
    assert message.status == ParseStatus.OK and not message.has_cookie


def test_overload_reads_the_file_and_sname_fields() -> None:
    file_options = b"\x0c\x05plc-9\xff"
    sname_options = b"\x3c\x03ABC\xff"
    payload = bytes(
        BOOTP(op=1, chaddr=CLIENT, file=file_options, sname=sname_options)
        / DHCP(options=[("message-type", "discover"), ("dhcp-option-overload", 3), "end"])
    )
    message = dhcp(payload)
    assert (message.overload, message.host_name, message.vendor_class) == (3, "plc-9", "ABC")
    assert message.option_codes == (53, 52, 12, 60) and message.finding == IdentityFinding.OK
    only_file = dhcp(
        bytes(
            BOOTP(op=1, chaddr=CLIENT, file=file_options, sname=sname_options)
            / DHCP(options=[("dhcp-option-overload", 1), "end"])
        )
    )
    assert only_file.host_name == "plc-9" and only_file.vendor_class == ""


def test_pad_options_are_skipped() -> None:
    message = dhcp(build(["pad", ("message-type", "inform"), "pad", "pad", "end"]))
    assert message.message_type == 8 and message.option_codes == (53,)


@pytest.mark.parametrize(
    ("payload", "finding"),
    [
        (build([("message-type", "discover"), "end"])[:200], IdentityFinding.TRUNCATED),
        (b"\x07" + build([("message-type", "discover"), "end"])[1:], IdentityFinding.BAD_DHCP_OP),
        (
            build([("message-type", "discover"), "end"])[:236] + b"\x63\x82\x53\x00\x35\x01\x01\xff",
            IdentityFinding.BAD_MAGIC_COOKIE,
        ),
        (build([("message-type", "discover"), "end"])[:-1], IdentityFinding.NO_END_OPTION),
        (build([("message-type", "discover"), "end"])[:-1] + b"\x0c\x09abc", IdentityFinding.LENGTH_OVERRUN),
        (raw(b"\x35\x02\x01\x02\xff"), IdentityFinding.BAD_FIELD_LENGTH),
        (raw(b"\x32\x03\x0a\x00\x00\xff"), IdentityFinding.BAD_FIELD_LENGTH),
        (raw(b"\x06\x05\x0a\x00\x00\x01\x0a\xff"), IdentityFinding.BAD_FIELD_LENGTH),
        (raw(b"\x35\x01\x63\xff"), IdentityFinding.BAD_DHCP_MESSAGE_TYPE),
        (raw(b"\x35\x01\x01\x34\x01\x04\xff"), IdentityFinding.BAD_OVERLOAD),
    ],
    ids=[
        "short",
        "op",
        "cookie",
        "no-end",
        "overrun",
        "type-length",
        "address-length",
        "list-length",
        "type",
        "overload",
    ],
)
def test_malformed_messages(payload: bytes, finding: IdentityFinding) -> None:
    message = dhcp(payload)
    assert message.finding == finding and message.status == ParseStatus.MALFORMED


def test_options_before_an_overrun_are_kept() -> None:
    message = dhcp(build([("message-type", "discover"), ("hostname", "hmi"), "end"])[:-1] + b"\x0c\x09abc")
    assert message.message_type == 1 and message.host_name == "hmi"


def test_a_long_option_is_concatenated() -> None:
    message = dhcp(build([("message-type", "request"), ("hostname", "plc"), ("hostname", "-7"), "end"]))
    assert message.host_name == "plc-7" and message.finding == IdentityFinding.OK
