"""Frames built by scapy's EtherNet/IP layer and by spec-written CIP builders decode with the
expected fields on both paths (the exact decoder and the column extractor)."""

from __future__ import annotations

import struct

import pytest

from plantwarden.protocols import enip
from plantwarden.protocols.common import Operation, ParseStatus, Summary
from plantwarden.protocols.enip import EnipFinding

from . import builders as b
from .builders import both_paths, one


def test_the_module_declares_itself() -> None:
    assert enip.MODULE.name == "enip"
    assert enip.MODULE.tcp_ports == (44818,)
    assert enip.MODULE.udp_ports == (44818, 2222)


def test_the_encapsulation_header_is_read() -> None:
    message = one(b.register_session(version=1))
    assert (message.command, message.length, message.session) == (0x65, 4, b.SESSION)
    assert (message.encapsulation_status, message.sender_context, message.options) == (0, b.CONTEXT, 0)
    assert message.protocol_version == 1
    assert message.summary() == Summary(0x65, "register_session", Operation.OTHER, False)


@pytest.mark.parametrize(
    ("command", "name", "operation"),
    [
        (0x0000, "nop", Operation.OTHER),
        (0x0004, "list_services", Operation.OTHER),
        (0x0063, "list_identity", Operation.IDENTIFY),
        (0x0064, "list_interfaces", Operation.OTHER),
        (0x0066, "unregister_session", Operation.OTHER),
    ],
)
def test_the_commands_without_data_are_named(command: int, name: str, operation: Operation) -> None:
    message = one(b.encapsulation(command))
    assert message.summary() == Summary(command, name, operation, False)


def test_a_list_identity_reply_gives_the_device_identity() -> None:
    pdu = b.list_identity_reply(b.identity_item(productName=b"1756-L61/B LOGIX5561", serialNumber=0xC0FFEE))
    message = one(pdu, from_server=True)
    assert (message.vendor_id, message.device_type, message.product_code) == (1, 12, 58)
    assert (message.revision, message.device_status, message.serial_number) == ("4.3", 0x30, 0xC0FFEE)
    assert (message.product_name, message.state) == ("1756-L61/B LOGIX5561", 3)
    assert message.identities[0].socket_address == "192.168.1.20"
    assert message.identities[0].socket_port == 44818
    summary = message.summary()
    assert (summary.function, summary.operation, summary.quantity, summary.result) == (
        "list_identity",
        Operation.IDENTIFY,
        1,
        0,
    )


def test_a_list_identity_reply_over_udp_is_one_datagram() -> None:
    pdu = b.list_identity_reply(b.identity_item(), b.identity_item(vendorId=283, productName=b"X"))
    messages, rest = enip.decode_datagram(pdu, True)
    assert rest == b"" and len(messages) == 1
    assert [identity.vendor_id for identity in messages[0].identities] == [1, 283]
    columns = both_paths([(pdu, True, 1)])
    assert columns.summary.summaries() == [messages[0].summary()]
    assert int(columns.command[0]) == 0x63


def test_a_list_services_reply_names_the_service() -> None:
    message = one(b.list_services_reply(), from_server=True)
    assert message.service_names == ("Communications",)


def test_an_identity_item_of_the_wrong_length_is_malformed() -> None:
    item = bytearray(b.identity_item())
    item[2] += 1  # item length one more than its fields
    pdu = b.list_identity_reply(bytes(item) + b"\0")
    message = one(pdu, from_server=True)
    assert message.summary().finding == EnipFinding.BAD_IDENTITY
    assert message.summary().status == ParseStatus.MALFORMED


def test_get_attribute_single_to_the_identity_object_identifies() -> None:
    message = one(b.send_rr_data(b.request(0x0E, b.path(0x01, 1, 7))))
    assert message.summary() == Summary(
        0x0E, "get_attribute_single", Operation.IDENTIFY, False, address=1, quantity=1,
        targets=("class 0x01 instance 1 attribute 7",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("service", "name", "operation"),
    [
        (0x01, "get_attributes_all", Operation.READ),
        (0x10, "set_attribute_single", Operation.WRITE),
        (0x02, "set_attributes_all", Operation.WRITE),
        (0x05, "reset", Operation.CONTROL),
        (0x06, "start", Operation.CONTROL),
        (0x07, "stop", Operation.CONTROL),
    ],
)
def test_common_services_have_their_category(service: int, name: str, operation: Operation) -> None:
    message = one(b.send_unit_data(0x1234, 7, b.request(service, b.path(0x8E, 1))))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (service, name, operation)
    assert (message.connection_id, message.sequence, summary.address) == (0x1234, 7, 0x8E)


def test_sixteen_and_thirty_two_bit_segments_and_symbols_make_the_target_text() -> None:
    epath = b.logical(0, 0x1234) + b.logical(1, 0x12345678) + b.logical(4, 300)
    assert one(b.send_rr_data(b.request(0x0E, epath))).summary().targets == (
        "class 0x1234 instance 305419896 attribute 300",
    )
    element = b.symbol("Big") + b.logical(2, 70000)  # a 32-bit member (Logix element index)
    assert one(b.send_rr_data(b.request(0x4C, element, b"\1\0"))).summary().targets == ("Big[70000]",)
    tag = b.symbol("Program:Main") + b.symbol("Motor") + b.logical(2, 3)
    summary = one(b.send_rr_data(b.request(0x4C, tag, b"\x01\x00"))).summary()
    assert (summary.function, summary.operation, summary.targets) == (
        "read_tag",
        Operation.READ,
        ("Program:Main.Motor[3]",),
    )


def test_a_reply_carries_the_general_and_extended_status() -> None:
    message = one(b.send_rr_data(b.reply(0x10, 0x05, (0x0102,))), from_server=True)
    assert message.cip is not None and message.cip.extended_status == (0x0102,)
    summary = message.summary()
    assert (summary.function, summary.is_response, summary.result) == ("set_attribute_single", True, 5)
    assert message.general_status == 5 and message.cip_service == 0x90


def test_an_unconnected_send_is_the_request_it_carries() -> None:
    inner = b.request(0x01, b.path(0xAC, 1))
    message = one(b.send_rr_data(b.unconnected_send(inner, b.port(1, 3))))
    assert message.cip is not None and message.cip.service == 0x52
    assert message.summary() == Summary(
        0x01, "get_attributes_all", Operation.READ, False, unit=3, address=0xAC, quantity=1,
        targets=("class 0xac instance 1",),
    )  # fmt: skip


def test_a_multiple_service_packet_is_one_row_counting_its_services() -> None:
    services = [
        b.request(0x03, b.path(0x01, 1), struct.pack("<HHH", 2, 1, 7)),
        b.request(0x0E, b.path(0x8E, 1, 3)),
        b.request(0x10, b.path(0xAC, 1, 5), b"\x01\x00"),
    ]
    message = one(b.send_unit_data(9, 1, b.multiple(*services)))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        0x0A,
        "multiple_service_packet",
        Operation.WRITE,
    )
    assert summary.quantity == 3 and summary.address == 0x01
    assert summary.targets == (
        "class 0x01 instance 1 attribute 1",
        "class 0x8e instance 1 attribute 3",
        "class 0xac instance 1 attribute 5",
    )
    assert message.cip is not None and [inner.service for inner in message.cip.embedded] == [0x03, 0x0E, 0x10]


def test_a_multiple_service_reply_keeps_each_reply() -> None:
    pdu = b.send_unit_data(9, 1, b.multiple(b.reply(0x0E, data=b"\x01"), b.reply(0x10, 0x0E), is_reply=True))
    message = one(pdu, from_server=True)
    assert message.cip is not None
    assert [inner.general_status for inner in message.cip.embedded] == [0, 0x0E]
    assert message.summary().quantity == 2 and message.summary().result == 0


def test_bad_offsets_in_a_multiple_service_packet_are_a_finding() -> None:
    body = struct.pack("<HHH", 2, 6, 200) + b.request(0x0E, b.path(1, 1, 1))
    message = one(b.send_rr_data(b.request(0x0A, b.path(2, 1), body)))
    assert message.summary().finding == EnipFinding.BAD_EMBEDDED


@pytest.mark.parametrize(("class_id", "service", "name", "operation"), [
    (0x37, 0x4C, "initiate_download", Operation.PROGRAM),
    (0x37, 0x50, "download_transfer", Operation.PROGRAM),
    (0x37, 0x4B, "initiate_upload", Operation.READ),
    (0xA1, 0x4D, "nvs_service_0x4d", Operation.PROGRAM),
    (0x72, 0x4C, "object_specific_0x4c", Operation.OTHER),
])  # fmt: skip
def test_object_specific_services_are_named_by_class(
    class_id: int, service: int, name: str, operation: Operation
) -> None:
    summary = one(b.send_rr_data(b.request(service, b.path(class_id, 1)))).summary()
    assert (summary.function, summary.operation) == (name, operation)


def test_forward_open_and_close_are_parsed_and_tracked() -> None:
    connection_path = b.port(1, 0) + b.path(0x02, 1)
    opened = one(b.send_rr_data(b.forward_open(0x80001111, connection_path)))
    assert opened.cip is not None and opened.cip.connection is not None
    assert opened.cip.connection.t_o_connection_id == 0x80001111
    assert opened.cip.connection.triad == b.TRIAD
    assert opened.summary().targets == ("class 0x02 instance 1",)
    answer = one(b.send_rr_data(b.forward_open_reply(0x2222, 0x80001111)), from_server=True)
    assert answer.cip is not None and answer.cip.connection is not None
    assert answer.cip.connection.o_t_connection_id == 0x2222
    connected = one(b.send_unit_data(0x2222, 1, b.request(0x0E, b.path(0x01, 1, 1))))
    later = one(b.send_rr_data(b.forward_close(connection_path)))
    tracker = enip.ConnectionTracker()
    for message in (opened, answer):
        tracker.observe(message)
    assert tracker.target(connected) == "class 0x02 instance 1"
    tracker.observe(later)
    assert tracker.resolve(connected) is None


def test_a_large_forward_open_and_a_refused_one() -> None:
    message = one(b.send_rr_data(b.forward_open(5, b.path(0x04, 0x64), large=True)))
    assert message.summary().function == "large_forward_open"
    refused = one(b.send_rr_data(b.forward_open_reply(0, 0, status=0x01)), from_server=True)
    assert refused.summary().result == 1
    assert refused.cip is not None and refused.cip.connection is not None
    tracker = enip.ConnectionTracker()
    tracker.observe(message)
    tracker.observe(refused)
    assert tracker.paths == {}


def test_a_class1_datagram_is_detected_and_counted() -> None:
    messages, rest = enip.decode_io_datagram(b.io_datagram(0x004B0603, 4166875), True)
    assert rest == b"" and len(messages) == 1
    message = messages[0]
    assert (message.io, message.connection_id, message.sequence) == (True, 0x004B0603, 4166875)
    assert message.summary() == Summary(
        -1, "class1_io", Operation.OTHER, True, address=0x004B0603, status=ParseStatus.PARTIAL
    )
    columns = both_paths([(b.io_datagram(0x004B0603, 4166875), True, 2), (b"\x01\x00", False, 2)])
    assert columns.summary.finding.tolist() == [0, EnipFinding.BAD_IO_DATAGRAM]


def test_several_pdus_per_segment_and_one_split_over_two() -> None:
    first, second = b.register_session(), b.send_rr_data(b.request(0x01, b.path(1, 1)))
    payload = first + second + second[:10]
    messages, rest = enip.decode_payload(payload, False)
    assert [message.command for message in messages] == [0x65, 0x6F] and rest == second[:10]
    messages, rest = enip.decode_payload(rest + second[10:], False)
    assert [message.command for message in messages] == [0x6F] and rest == b""
    columns = both_paths([(payload, False, 0), (second, False, 0), (second[:5], False, 0)])
    assert columns.leftover.tolist() == [10, 0, 5]
    assert columns.pdu_index.tolist() == [0, 1, 0] and columns.offset.tolist() == [0, 28, 0]


def test_a_datagram_cut_short_is_a_row_with_its_finding() -> None:
    pdu = b.list_identity_reply(b.identity_item())
    columns = both_paths([(pdu[:-3], True, 1), (pdu[:10], True, 1)])
    assert columns.summary.finding.tolist() == [EnipFinding.LENGTH_BEYOND_DATA, EnipFinding.TRUNCATED_HEADER]
    assert columns.leftover.tolist() == [0, 0]


def test_a_reserved_command_loses_the_framing() -> None:
    payload = b.encapsulation(0x1234) + b.register_session()
    messages, rest = enip.decode_payload(payload, False)
    assert len(messages) == 1 and rest == b""
    assert messages[0].summary().finding == EnipFinding.UNKNOWN_COMMAND
    assert messages[0].summary().operation == Operation.MALFORMED
    both_paths([(payload, False, 0)])


@pytest.mark.parametrize(
    ("pdu", "finding"),
    [
        (b.encapsulation(0x65, b"\x01\x00"), EnipFinding.BAD_COMMAND_DATA),
        (b.encapsulation(0x6F, b"\0\0\0\0\x0a\0\x02\0\0\0"), EnipFinding.BAD_ITEM_LIST),
        (b.encapsulation(0x6F, b"\0\0\0\0\x0a\0\x01\0\0\0\0\0"), EnipFinding.BAD_ITEM),
        (b.send_rr_data(b"\x0e"), EnipFinding.CIP_TOO_SHORT),
        (b.send_rr_data(b"\x0e\x05\x20\x01"), EnipFinding.BAD_PATH),
        (b.send_rr_data(b"\x0e\x02\x20\x01\x3c\x00"), EnipFinding.BAD_PATH),
        (b.send_rr_data(b.request(0x54, b.path(6, 1), b"\0" * 10)), EnipFinding.BAD_CONNECTION_DATA),
        (b.send_rr_data(b.request(0x52, b.path(6, 1), b"\0\0\x40\0")), EnipFinding.BAD_EMBEDDED),
    ],
)
def test_malformed_frames_have_their_finding(pdu: bytes, finding: EnipFinding) -> None:
    summary = one(pdu).summary()
    assert summary.finding == finding
    assert summary.status == ParseStatus.MALFORMED


def test_an_encapsulation_status_beyond_31_bits_is_saturated_in_the_result() -> None:
    assert one(b.encapsulation(0x00, status=0x80000000), from_server=True).summary().result == 0x7FFFFFFF
    assert one(b.encapsulation(0x6F, status=0x65), from_server=True).summary().result == 0x65


def test_legacy_commands_and_other_interfaces_are_framed_but_not_decoded() -> None:
    legacy = one(b.encapsulation(0x0001, b"\1\2\3"))
    assert legacy.summary().function == "legacy_0x0001"
    assert legacy.summary().status == ParseStatus.PARTIAL
    other = one(b.encapsulation(0x6F, b"\1\0\0\0\x0a\0\0\0"))
    assert (other.interface_handle, other.cip) == (1, None)
    assert other.summary().status == ParseStatus.PARTIAL


def test_a_forward_open_sent_again_replaces_the_pending_one_and_its_reply_opens_both_ids() -> None:
    tracker = enip.ConnectionTracker()
    for class_id in (0x02, 0x04, 0x02):
        opened = one(b.send_rr_data(b.forward_open(0x11, b.path(class_id, 1))))
        tracker.observe(opened)
    assert len(tracker.pending) == 1
    tracker.observe(one(b.send_rr_data(b.forward_open_reply(0x10, 0x11)), from_server=True))
    assert {key: path.text() for key, path in tracker.paths.items()} == {
        0x10: "class 0x02 instance 1",
        0x11: "class 0x02 instance 1",
    }
    assert tracker.pending == {}
