"""PROFINET DCP frames built by scapy's contrib pnio_dcp layer (an independent encoder; frames
it cannot build are written here from IEC 61158-6-10's block layout) decode with the expected
fields on both paths: Identify, Get, Set (IP, NameOfStation, reset, signal), Hello, responses,
and malformed frames as findings. Set IP, Set name and factory reset are explicit fields."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from scapy.contrib.pnio import ProfinetIO
from scapy.contrib.pnio_dcp import (
    DCPControlBlock,
    DCPDeviceIDBlock,
    DCPDeviceRoleBlock,
    DCPIPBlock,
    DCPMACBlock,
    DCPManufacturerSpecificBlock,
    DCPNameOfStationBlock,
    ProfinetDCP,
)
from scapy.packet import Packet

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.identity import DcpMessage, IdentityFinding, Kind
from plantwarden.protocols.identity.pn_dcp import NOT_SUPPORTED_RESULT
from tests.unit.protocols.identity.test_identity_paths import both_paths

SIEMENS = "00:1b:1b:01:02:03"
XID = 0x0300BF9A


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def dcp(frame: bytes) -> DcpMessage:
    (message,), _ = both_paths(Kind.DCP, [frame])
    assert isinstance(message, DcpMessage)
    return message


def response(service_id: int, blocks: list[Packet], frame_id: int = 0xFEFF) -> bytes:
    """A response by scapy; its data length is left 0 by scapy's LenField, so it is given here.

    scapy 2.8's blocks also need help: fixed-size blocks get their block length given (their
    LenField counts nothing), and even-length blocks `padding=b""` (the padding field writes its
    default byte whatever the length)."""
    length = sum(len(bytes(block)) for block in blocks)
    return bytes(
        ProfinetIO(frameID=frame_id)
        / ProfinetDCP(
            service_id=service_id, service_type=1, xid=XID, dcp_data_length=length, dcp_blocks=blocks
        )
    )


def spec_frame(frame_id: int, service_id: int, service_type: int, body: bytes, delay: int = 0) -> bytes:
    """A frame written from the specification: FrameID, ServiceID, ServiceType, Xid,
    ResponseDelay (or reserved), DCPDataLength, then the blocks."""
    return struct.pack(">HBBIHH", frame_id, service_id, service_type, XID, delay, len(body)) + body


def block(option: int, suboption: int, value: bytes) -> bytes:
    padding = b"\x00" if len(value) % 2 else b""
    return struct.pack(">BBH", option, suboption, len(value)) + value + padding


def test_an_identify_all_request() -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFE)
        / ProfinetDCP(
            service_id=5, service_type=0, xid=XID, reserved=1, option=255, sub_option=255, dcp_data_length=4
        )
    )
    message = dcp(frame)
    assert (message.frame_id, message.service_id, message.service_type) == (0xFEFE, 5, 0)
    assert (message.xid, message.response_delay, message.data_length) == (XID, 1, 4)
    assert [(b.option, b.suboption, b.length) for b in message.blocks] == [(255, 255, 0)]
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (5, "identify", Operation.IDENTIFY)
    assert not summary.is_response and summary.targets == ("all",) and summary.result == -1
    assert message.status == ParseStatus.OK


def test_an_identify_request_by_name() -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFE)
        / ProfinetDCP(
            service_id=5,
            service_type=0,
            xid=XID,
            option=2,
            sub_option=2,
            dcp_block_length=7,
            name_of_station=b"switch3",
            dcp_data_length=12,
        )
    )
    message = dcp(frame)
    assert message.name_of_station == "switch3" and message.blocks[0].info == -1
    assert message.summary().targets == ("name_of_station=switch3",)


def test_an_identify_response() -> None:
    frame = response(
        5,
        [
            DCPManufacturerSpecificBlock(device_vendor_value=b"S7-1500", dcp_block_length=9),
            DCPNameOfStationBlock(name_of_station=b"plc-1"),
            DCPDeviceIDBlock(vendor_id=0x002A, device_id=0x0A01, dcp_block_length=6, padding=b""),
            DCPDeviceRoleBlock(device_role_details=2, padding=b""),
            DCPIPBlock(
                block_info=1,
                ip="192.168.0.10",
                netmask="255.255.255.0",
                gateway="192.168.0.1",
                dcp_block_length=14,
                padding=b"",
            ),
            DCPMACBlock(mac=SIEMENS, dcp_block_length=8, padding=b""),
        ],
    )
    message = dcp(frame)
    assert (message.vendor_text, message.name_of_station) == ("S7-1500", "plc-1")
    assert (message.vendor_id, message.device_id, message.device_role) == (0x002A, 0x0A01, 2)
    assert (message.ip, message.netmask, message.gateway) == (
        ip("192.168.0.10"),
        ip("255.255.255.0"),
        ip("192.168.0.1"),
    )
    assert message.ip_block_info == 1 and message.mac == int(SIEMENS.replace(":", ""), 16)
    assert message.status == ParseStatus.OK and message.finding == IdentityFinding.OK
    summary = message.summary()
    assert summary.is_response and summary.result == 0 and summary.quantity == 6
    assert summary.targets[:3] == ("vendor_text=S7-1500", "name_of_station=plc-1", "device_id=0x002a/0x0a01")
    identity = message.identity()
    assert (identity.name, identity.vendor_id, identity.device_id, identity.xid) == (
        "plc-1",
        0x2A,
        0x0A01,
        XID,
    )
    assert identity.ip == ip("192.168.0.10") and not identity.sets_ip


def test_a_set_ip_request_is_a_write_with_sets_ip() -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=0,
            xid=XID,
            option=1,
            sub_option=2,
            dcp_block_length=14,
            block_qualifier=1,
            ip="192.168.0.10",
            netmask="255.255.255.0",
            gateway="192.168.0.1",
            dcp_data_length=18,
        )
    )
    message = dcp(frame)
    assert message.sets_ip and not message.sets_name and not message.resets
    assert message.qualifiers == (1,) and message.ip == ip("192.168.0.10") and message.ip_block_info == -1
    summary = message.summary()
    assert (summary.function, summary.operation, summary.targets) == (
        "set",
        Operation.WRITE,
        ("ip_parameter=192.168.0.10",),
    )
    assert message.identity().sets_ip


def test_a_set_name_request_stored_temporarily() -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=0,
            xid=XID,
            option=2,
            sub_option=2,
            dcp_block_length=9,
            block_qualifier=0,
            name_of_station=b"plc-new",
            dcp_data_length=14,
        )
    )
    message = dcp(frame)
    assert message.sets_name and message.name_of_station == "plc-new" and message.qualifiers == (0,)
    assert message.summary().operation == Operation.WRITE and message.identity().sets_name


@pytest.mark.parametrize(("suboption", "name"), [(5, "reset_factory_settings"), (6, "reset_to_factory")])
def test_a_factory_reset_is_control(suboption: int, name: str) -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=0,
            xid=XID,
            option=5,
            sub_option=suboption,
            dcp_block_length=2,
            block_qualifier=2,
            dcp_data_length=6,
        )
    )
    message = dcp(frame)
    assert message.resets and message.identity().resets
    summary = message.summary()
    assert (summary.operation, summary.targets) == (Operation.CONTROL, (name,))


def test_a_signal_flashes_the_led() -> None:
    message = dcp(spec_frame(0xFEFD, 4, 0, block(5, 3, b"\x00\x01\x01\x00")))
    assert message.signals and message.signal_value == 0x0100 and not message.resets
    assert message.summary().operation == Operation.CONTROL


def test_a_set_with_end_transaction_stays_a_write() -> None:
    body = block(2, 2, b"\x00\x01plc-7") + block(5, 2, b"\x00\x00")
    message = dcp(spec_frame(0xFEFD, 4, 0, body))
    assert [b.name for b in message.blocks] == ["name_of_station", "end_transaction"]
    assert message.summary().operation == Operation.WRITE and message.sets_name


def test_set_responses_carry_block_errors() -> None:
    ok = dcp(
        response(4, [DCPControlBlock(response=1, response_sub_option=2, block_error=0)], frame_id=0xFEFD)
    )
    assert ok.control_responses == ((1, 2, 0),) and ok.summary().result == 0
    assert ok.summary().operation == Operation.WRITE and ok.summary().targets == ("response=ip_parameter:0",)
    refused = dcp(
        response(4, [DCPControlBlock(response=5, response_sub_option=6, block_error=6)], frame_id=0xFEFD)
    )
    assert refused.summary().result == 6 and refused.summary().operation == Operation.CONTROL


def test_a_get_request_lists_options() -> None:
    message = dcp(spec_frame(0xFEFD, 3, 0, bytes([2, 2, 1, 2, 2, 3])))
    assert [(b.option, b.suboption) for b in message.blocks] == [(2, 2), (1, 2), (2, 3)]
    summary = message.summary()
    assert (summary.function, summary.operation) == ("get", Operation.IDENTIFY)
    assert summary.targets == ("name_of_station", "ip_parameter", "device_id")


def test_a_hello_request() -> None:
    body = block(2, 2, b"\x00\x00io-dev-3") + block(
        1, 2, b"\x00\x01" + bytes([10, 0, 0, 3, 255, 0, 0, 0, 10, 0, 0, 1])
    )
    body += block(2, 3, b"\x00\x00\x00\x2a\x03\x13") + block(6, 1, b"\x00\x00\x00\x01")
    message = dcp(spec_frame(0xFEFC, 6, 0, body))
    assert (message.name_of_station, message.ip, message.vendor_id, message.device_id) == (
        "io-dev-3",
        ip("10.0.0.3"),
        0x2A,
        0x313,
    )
    assert message.device_initiative == 1
    assert message.summary().function == "hello" and message.summary().operation == Operation.IDENTIFY


def test_a_response_not_supported() -> None:
    message = dcp(spec_frame(0xFEFD, 3, 5, b""))
    assert message.summary().result == NOT_SUPPORTED_RESULT and message.summary().is_response


def test_more_device_properties() -> None:
    body = (
        block(2, 5, b"\x00\x00\x02\x02\x01\x02")
        + block(2, 6, b"\x00\x00port-001.plc")
        + block(2, 7, b"\x00\x00\x00\x01")
    )
    body += block(2, 8, b"\x00\x00\x00\x2a\x01\x02")
    message = dcp(spec_frame(0xFEFF, 5, 1, body))
    assert message.device_options == ((2, 2), (1, 2)) and message.alias_name == "port-001.plc"
    assert (message.device_instance, message.oem_vendor_id, message.oem_device_id) == (1, 0x2A, 0x102)


@pytest.mark.parametrize(
    ("frame", "finding"),
    [
        (b"\xfe", IdentityFinding.TRUNCATED),
        (b"\x80\x00" + bytes(40), IdentityFinding.NOT_DCP_FRAME_ID),
        (spec_frame(0xFEFE, 5, 0, block(255, 255, b""))[:11], IdentityFinding.TRUNCATED),
        (spec_frame(0xFEFD, 5, 0, block(255, 255, b"")), IdentityFinding.BAD_DCP_SERVICE),
        (spec_frame(0xFEFE, 5, 1, block(255, 255, b"")), IdentityFinding.BAD_DCP_SERVICE),
        (spec_frame(0xFEFD, 4, 2, b""), IdentityFinding.BAD_DCP_SERVICE),
        (spec_frame(0xFEFD, 9, 0, b""), IdentityFinding.BAD_DCP_SERVICE),
        (spec_frame(0xFEFE, 5, 0, block(255, 255, b""))[:-1], IdentityFinding.LENGTH_OVERRUN),
        (spec_frame(0xFEFD, 4, 0, block(1, 2, b"\x00\x01" + bytes(10))), IdentityFinding.BAD_FIELD_LENGTH),
        (spec_frame(0xFEFD, 4, 0, block(2, 2, b"\x00")), IdentityFinding.BAD_FIELD_LENGTH),
        (spec_frame(0xFEFD, 3, 0, b"\x02\x02\x01"), IdentityFinding.BAD_FIELD_LENGTH),
        (spec_frame(0xFEFD, 4, 1, block(5, 4, b"\x01\x02")), IdentityFinding.BAD_FIELD_LENGTH),
        (spec_frame(0xFEFD, 4, 0, b"\x02\x02\x00\x09\x00\x01plc"), IdentityFinding.LENGTH_OVERRUN),
        (
            spec_frame(0xFEFD, 4, 0, block(2, 2, b"\x00\x01plc-1") + b"\x05\x02"),
            IdentityFinding.LENGTH_OVERRUN,
        ),
    ],
    ids=[
        "short",
        "cyclic",
        "header",
        "identify-on-get-set",
        "response-on-request-id",
        "type",
        "service",
        "data-length",
        "ip-length",
        "no-qualifier",
        "odd-get",
        "control-response",
        "block-overrun",
        "trailing",
    ],
)
def test_malformed_frames(frame: bytes, finding: IdentityFinding) -> None:
    message = dcp(frame)
    assert message.finding == finding and message.status == ParseStatus.MALFORMED


def test_padding_after_the_data_is_ignored() -> None:
    message = dcp(spec_frame(0xFEFE, 5, 0, block(255, 255, b"")) + bytes(30))
    assert message.status == ParseStatus.OK and len(message.blocks) == 1


def test_a_set_full_ip_suite_request() -> None:
    frame = bytes(
        ProfinetIO(frameID=0xFEFD)
        / ProfinetDCP(
            service_id=4,
            service_type=0,
            xid=XID,
            option=1,
            sub_option=3,
            dcp_block_length=30,
            block_qualifier=1,
            ip="10.0.0.5",
            netmask="255.255.255.0",
            gateway="10.0.0.1",
            dnsaddr=["10.0.0.2", "10.0.0.3", "0.0.0.0", "0.0.0.0"],
            dcp_data_length=34,
        )
    )
    message = dcp(frame)
    assert message.sets_ip and message.ip == ip("10.0.0.5") and message.gateway == ip("10.0.0.1")
    assert message.dns_servers == (ip("10.0.0.2"), ip("10.0.0.3"), 0, 0)
    assert message.summary().targets == ("full_ip_suite=10.0.0.5",)
