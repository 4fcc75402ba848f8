"""Datagrams built from the standard (`builders`) decode with the expected fields, on both paths."""

from __future__ import annotations

import struct

import pytest

from plantwarden.protocols.bacnet import (
    MODULE,
    BacnetFinding,
    BacnetMessage,
    decode,
    decode_payload,
    exact_columns,
    extract,
)
from plantwarden.protocols.common import Operation, ParseStatus, Support

from . import builders as b

F = BacnetFinding
ANALOG_VALUE, DEVICE, FILE, BINARY_OUTPUT, ANALOG_INPUT = 2, 8, 10, 4, 0
PRESENT_VALUE, OBJECT_NAME, PRIORITY_ARRAY, OBJECT_LIST = 85, 77, 87, 76


def one(datagram: bytes) -> BacnetMessage:
    """The exact message of `datagram`, after checking the column extractor gives the same row."""
    messages, leftover = decode_payload(datagram, True)
    assert leftover == b"" and len(messages) == 1
    both([datagram])
    return messages[0]


def both(datagrams: list[bytes]) -> None:
    batch = b.batch(datagrams)
    fast = extract(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    exact = exact_columns(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    assert fast.differences(exact) == []
    assert fast.summary.summaries() == [decode(datagram).summary() for datagram in datagrams]


def test_the_module_declares_bacnet_ip() -> None:
    assert MODULE.name == "bacnet" and MODULE.udp_ports == (47808,) and MODULE.support == Support.PARTIAL


def test_read_property_request() -> None:
    params = b.ctx_object(0, ANALOG_VALUE, 3) + b.ctx_unsigned(1, PRESENT_VALUE)
    message = one(b.unicast(b.confirmed(7, 12, params), expecting_reply=True))
    assert (message.bvlc_type, message.bvlc_function, message.npdu_version, message.npdu_control) == (
        0x81,
        0x0A,
        1,
        0x04,
    )
    assert (message.pdu_type, message.invoke_id, message.service_choice) == (0, 7, 12)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        12,
        "read_property",
        Operation.READ,
    )
    assert summary.targets == ("analog-value:3 present-value",) and summary.quantity == 1
    assert summary.address == (ANALOG_VALUE << 22) | 3 and summary.result == -1 and not summary.is_response
    assert (summary.status, summary.finding) == (ParseStatus.OK, 0)
    assert (message.object_type, message.instance, message.property_id, message.array_index) == (2, 3, 85, -1)


@pytest.mark.parametrize(
    ("prop", "index", "text"),
    [
        (PRIORITY_ARRAY, 8, "analog-value:3 priority-array[8]"),
        (OBJECT_LIST, 300, "analog-value:3 object-list[300]"),
        (4000, -1, "analog-value:3 property-4000"),
        (PRESENT_VALUE, 0, "analog-value:3 present-value[0]"),
    ],
)
def test_read_property_with_an_array_index_and_wide_identifiers(prop: int, index: int, text: str) -> None:
    params = b.ctx_object(0, ANALOG_VALUE, 3) + b.ctx_unsigned(1, prop)
    if index >= 0:
        params += b.ctx_unsigned(2, index)
    message = one(b.unicast(b.confirmed(1, 12, params)))
    assert message.targets == (text,) and (message.property_id, message.array_index) == (prop, index)
    assert message.status == ParseStatus.OK


@pytest.mark.parametrize(
    ("value", "tag", "decoded"),
    [
        (b.app_real(72.5), 4, 72.5),
        (b.app_unsigned(70000), 2, 70000),
        (b.app_signed(-5), 3, -5),
        (b.app_enumerated(1), 9, 1),
        (b.app_boolean(True), 1, True),
        (b.app_null(), 0, None),
        (b.app_characters("Boiler room supply temperature"), 7, "Boiler room supply temperature"),
        (b.app_characters("x" * 300), 7, "x" * 300),
        (b.app_double(1.25), 5, 1.25),
        (b.app_object(DEVICE, 99), 12, (DEVICE, 99)),
    ],
)
def test_read_property_ack_carries_the_first_value(value: bytes, tag: int, decoded: object) -> None:
    params = b.ctx_object(0, ANALOG_VALUE, 3) + b.ctx_unsigned(1, PRESENT_VALUE)
    params += b.opening(3) + value + b.closing(3)
    message = one(b.unicast(b.complex_ack(7, 12, params)))
    assert message.is_response and message.result == 0 and message.pdu_type == 3
    assert (message.value_tag, message.value) == (tag, decoded)
    assert message.targets == ("analog-value:3 present-value",) and message.status == ParseStatus.OK


def test_write_property_with_priority() -> None:
    params = b.ctx_object(0, BINARY_OUTPUT, 12) + b.ctx_unsigned(1, PRESENT_VALUE)
    params += b.opening(3) + b.app_enumerated(1) + b.closing(3) + b.ctx_unsigned(4, 8)
    message = one(b.unicast(b.confirmed(9, 15, params)))
    summary = message.summary()
    assert (summary.function, summary.operation, summary.targets) == (
        "write_property",
        Operation.WRITE,
        ("binary-output:12 present-value",),
    )
    assert (message.priority, message.value_tag, message.value) == (8, 9, 1)
    ack = one(b.unicast(b.simple_ack(9, 15)))
    assert (ack.function, ack.operation, ack.is_response, ack.result, ack.invoke_id) == (
        "write_property",
        Operation.WRITE,
        True,
        0,
        9,
    )


def test_read_property_multiple_lists_every_pair() -> None:
    params = b.ctx_object(0, ANALOG_INPUT, 1) + b.opening(1)
    params += b.ctx_unsigned(0, PRESENT_VALUE) + b.ctx_unsigned(0, OBJECT_NAME) + b.closing(1)
    params += b.ctx_object(0, DEVICE, 260001) + b.opening(1)
    params += b.ctx_unsigned(0, OBJECT_LIST) + b.ctx_unsigned(1, 0) + b.closing(1)
    message = one(b.unicast(b.confirmed(3, 14, params)))
    assert message.targets == (
        "analog-input:1 present-value",
        "analog-input:1 object-name",
        "device:260001 object-list[0]",
    )
    assert message.summary().quantity == 3 and message.operation == Operation.READ


def test_read_property_multiple_ack_with_a_property_error() -> None:
    params = b.ctx_object(0, ANALOG_INPUT, 1) + b.opening(1)
    params += b.ctx_unsigned(2, PRESENT_VALUE) + b.opening(4) + b.app_real(21.5) + b.closing(4)
    params += b.ctx_unsigned(2, 9999) + b.opening(5) + b.app_enumerated(2) + b.app_enumerated(32)
    params += b.closing(5) + b.closing(1)
    message = one(b.unicast(b.complex_ack(3, 14, params)))
    assert message.targets == ("analog-input:1 present-value", "analog-input:1 property-9999")
    assert (message.error_class, message.error_code, message.result) == (2, 32, 0)
    assert (message.value_tag, message.value, message.status) == (4, 21.5, ParseStatus.OK)


def test_write_property_multiple() -> None:
    params = b.ctx_object(0, ANALOG_VALUE, 1) + b.opening(1)
    params += b.ctx_unsigned(0, PRESENT_VALUE) + b.opening(2) + b.app_real(5.0) + b.closing(2)
    params += b.ctx_unsigned(3, 10) + b.closing(1)
    message = one(b.unicast(b.confirmed(4, 16, params)))
    assert message.targets == ("analog-value:1 present-value",)
    assert (message.operation, message.priority, message.value, message.status) == (
        Operation.WRITE,
        10,
        5.0,
        ParseStatus.OK,
    )


@pytest.mark.parametrize(
    ("max_apdu", "vendor"),
    [(1476, 15), (480, 260), (50, 5), (1476, 70000)],
)
def test_i_am(max_apdu: int, vendor: int) -> None:
    params = b.app_object(DEVICE, 389001) + b.app_unsigned(max_apdu) + b.app_enumerated(3)
    params += b.app_unsigned(vendor)
    message = one(b.broadcast(b.unconfirmed(0, params)))
    assert (message.device_instance, message.vendor_id, message.max_apdu, message.segmentation) == (
        389001,
        vendor,
        max_apdu,
        3,
    )
    summary = message.summary()
    assert (summary.function, summary.operation, summary.is_response, summary.unit) == (
        "i_am",
        Operation.IDENTIFY,
        True,
        389001,
    )
    assert summary.targets == ("device:389001",)


def test_who_is_with_and_without_a_range() -> None:
    plain = one(b.broadcast(b.unconfirmed(8)))
    assert (plain.function, plain.low_limit, plain.high_limit, plain.is_response) == ("who_is", -1, -1, False)
    ranged = one(b.broadcast(b.unconfirmed(8, b.ctx_unsigned(0, 100) + b.ctx_unsigned(1, 4194303))))
    assert (ranged.low_limit, ranged.high_limit, ranged.status) == (100, 4194303, ParseStatus.OK)
    half = one(b.broadcast(b.unconfirmed(8, b.ctx_unsigned(0, 100))))
    assert half.finding == F.MISSING_PARAMETER and half.status == ParseStatus.MALFORMED


def test_who_has_and_i_have() -> None:
    who = one(b.broadcast(b.unconfirmed(7, b.ctx_object(2, ANALOG_INPUT, 5))))
    assert (who.function, who.operation, who.targets) == ("who_has", Operation.IDENTIFY, ("analog-input:5",))
    named = one(b.broadcast(b.unconfirmed(7, b.ctx_characters(3, "OAT"))))
    assert named.status == ParseStatus.OK and named.targets == ()
    params = b.app_object(DEVICE, 17) + b.app_object(ANALOG_INPUT, 5) + b.app_characters("OAT")
    have = one(b.broadcast(b.unconfirmed(1, params)))
    assert (have.is_response, have.device_instance, have.targets) == (True, 17, ("analog-input:5",))


def test_error_reject_abort_and_segment_ack() -> None:
    failed = one(b.unicast(b.error(52, 20, 4, 26)))
    assert (failed.function, failed.error_class, failed.error_code, failed.is_response) == (
        "reinitialize_device",
        4,
        26,
        True,
    )
    assert failed.result == (1 << 24) | (4 << 16) | 26 and failed.status == ParseStatus.OK
    refused = one(b.unicast(b.reject(58, 9)))
    assert (refused.function, refused.function_code, refused.reason, refused.result, refused.is_response) == (
        "reject",
        -1,
        9,
        (2 << 24) | 9,
        True,
    )
    by_client = one(b.unicast(b.abort(1, 0, server=False)))
    by_server = one(b.unicast(b.abort(1, 4, server=True)))
    assert (by_client.is_response, by_client.result, by_server.is_response, by_server.reason) == (
        False,
        3 << 24,
        True,
        4,
    )
    acked = one(b.unicast(b.segment_ack(94, 3, 4, server=False)))
    assert (acked.function, acked.invoke_id, acked.sequence_number, acked.window_size) == (
        "segment_ack",
        94,
        3,
        4,
    )
    assert acked.operation == Operation.OTHER and not acked.is_response


def test_segmented_messages_are_partial_beyond_the_header() -> None:
    params = b.ctx_object(0, DEVICE, 1) + b.ctx_unsigned(1, OBJECT_LIST) + b.opening(3)
    first = one(b.unicast(b.complex_ack(93, 12, params, segmented=True, more=True, sequence=0, window=4)))
    assert (first.status, first.finding, first.sequence_number, first.window_size) == (
        ParseStatus.PARTIAL,
        0,
        0,
        4,
    )
    assert (first.function, first.is_response, first.result, first.targets) == ("read_property", True, 0, ())
    middle = one(b.unicast(b.complex_ack(93, 12, b"\x00\xc4\x00", segmented=True, more=True, sequence=1)))
    assert middle.status == ParseStatus.PARTIAL and middle.sequence_number == 1
    request = one(b.unicast(b.confirmed(5, 16, b"\x0c", segmented=True, more=True, sequence=0, window=2)))
    assert (request.status, request.operation, request.invoke_id) == (ParseStatus.PARTIAL, Operation.WRITE, 5)


@pytest.mark.parametrize(
    ("service", "params", "operation", "state"),
    [
        (20, b.ctx_unsigned(0, 0) + b.ctx_characters(1, "secret"), Operation.CONTROL, 0),
        (20, b.ctx_unsigned(0, 1), Operation.CONTROL, 1),
        (17, b.ctx_unsigned(0, 60) + b.ctx_unsigned(1, 1), Operation.CONTROL, 1),
        (17, b.ctx_unsigned(1, 0) + b.ctx_characters(2, "pw"), Operation.CONTROL, 0),
    ],
)
def test_device_management(service: int, params: bytes, operation: Operation, state: int) -> None:
    message = one(b.unicast(b.confirmed(2, service, params)))
    assert (message.operation, message.state, message.status) == (operation, state, ParseStatus.OK)


def test_time_synchronization_is_other() -> None:
    params = b.app_date(2026, 11, 26, 4) + b.app_time(16, 0, 0, 0)
    for service, name in ((6, "time_synchronization"), (9, "utc_time_synchronization")):
        message = one(b.broadcast(b.unconfirmed(service, params)))
        assert (message.function, message.operation, message.status) == (
            name,
            Operation.OTHER,
            ParseStatus.OK,
        )


def test_file_access_and_cov_subscriptions() -> None:
    stream = b.opening(0) + b.app_signed(0) + b.app_unsigned(512) + b.closing(0)
    read = one(b.unicast(b.confirmed(1, 6, b.app_object(FILE, 1) + stream)))
    assert (read.operation, read.targets, read.status) == (Operation.READ, ("file:1",), ParseStatus.PARTIAL)
    data = b.opening(0) + b.app_signed(0) + b.tag(6, b"\x01\x02", context=False) + b.closing(0)
    write = one(b.unicast(b.confirmed(1, 7, b.app_object(FILE, 2) + data)))
    assert (write.operation, write.targets) == (Operation.WRITE, ("file:2",))
    params = b.ctx_unsigned(0, 18) + b.ctx_object(1, ANALOG_INPUT, 10)
    params += b.tag(2, b"\x01", context=True) + b.ctx_unsigned(3, 600)
    cov = one(b.unicast(b.confirmed(1, 5, params)))
    assert (cov.operation, cov.targets, cov.status) == (Operation.READ, ("analog-input:10",), ParseStatus.OK)


def test_services_not_interpreted_are_partial_after_a_tag_walk() -> None:
    params = b.ctx_unsigned(0, 7) + b.ctx_unsigned(1, 511) + b.opening(2)
    params += b.tag(40, b"\x01\x02", context=True) + b.app_characters("y" * 1000)
    params += bytes.fromhex("75ff00000003004142") + b.closing(2)  # a 4-octet length (clause 20.2.1.3.1)
    message = one(b.unicast(b.confirmed(1, 18, params)))
    assert (message.function, message.status, message.finding) == (
        "confirmed_private_transfer",
        ParseStatus.PARTIAL,
        0,
    )


def test_routed_and_forwarded_npdus() -> None:
    apdu = b.confirmed(1, 12, b.ctx_object(0, ANALOG_VALUE, 3) + b.ctx_unsigned(1, PRESENT_VALUE))
    routed = one(
        b.unicast(apdu, dnet=5, dadr=b"\x07", snet=9, sadr=b"\x0a\x00\x00\x01\xba\xc0", hop_count=254)
    )
    assert (routed.dnet, routed.dlen, routed.snet, routed.slen, routed.hop_count) == (5, 1, 9, 6, 254)
    assert (routed.dadr, routed.sadr, routed.targets) == (
        b"\x07",
        b"\x0a\x00\x00\x01\xba\xc0",
        ("analog-value:3 present-value",),
    )
    everywhere = one(b.unicast(apdu, dnet=0xFFFF, hop_count=255))
    assert (everywhere.dnet, everywhere.dlen, everywhere.status) == (0xFFFF, 0, ParseStatus.OK)
    relayed = one(b.forwarded(("192.168.1.20", 47808), b.unconfirmed(8)))
    assert relayed.origin == (0xC0A80114 << 16) | 47808 and relayed.function == "who_is"


@pytest.mark.parametrize(
    ("kind", "body", "name", "targets", "status"),
    [
        (0x00, b"", "who_is_router_to_network", (), ParseStatus.OK),
        (0x00, struct.pack(">H", 5), "who_is_router_to_network", ("network:5",), ParseStatus.OK),
        (
            0x01,
            struct.pack(">HH", 5, 6),
            "i_am_router_to_network",
            ("network:5", "network:6"),
            ParseStatus.OK,
        ),
        (0x03, b"\x01" + struct.pack(">H", 7), "reject_message_to_network", ("network:7",), ParseStatus.OK),
        (0x12, b"", "what_is_network_number", (), ParseStatus.OK),
        (0x13, struct.pack(">HB", 12, 1), "network_number_is", ("network:12",), ParseStatus.OK),
        (0x06, b"\x00", "initialize_routing_table", (), ParseStatus.PARTIAL),
        (0x80, b"\x01\x02", "proprietary_network_message_128", (), ParseStatus.PARTIAL),
    ],
)
def test_network_layer_messages(
    kind: int, body: bytes, name: str, targets: tuple[str, ...], status: ParseStatus
) -> None:
    message = one(b.bvll(b.ORIGINAL_BROADCAST, b.npdu(body, network_message=kind, vendor=260)))
    assert (message.network_message, message.function, message.function_code) == (kind, name, kind)
    assert (message.targets, message.status, message.pdu_type) == (targets, status, -1)
    if kind >= 0x80:
        assert message.vendor_id == 260


@pytest.mark.parametrize(
    ("function", "body", "name", "operation", "response", "targets", "result"),
    [
        (0x00, b"\x00\x00", "bvlc_result", Operation.OTHER, True, (), 0),
        (0x00, b"\x00\x30", "bvlc_result", Operation.OTHER, True, (), 0x30),
        (0x05, b"\x00\x3c", "register_foreign_device", Operation.CONTROL, False, (), -1),
        (0x02, b"", "read_broadcast_distribution_table", Operation.READ, False, (), -1),
        (
            0x03,
            b.bip_address("10.0.0.1", 47808) + b"\xff" * 4 + b.bip_address("10.0.1.1", 47808) + b"\xff" * 4,
            "read_broadcast_distribution_table_ack",
            Operation.READ,
            True,
            ("10.0.0.1:47808", "10.0.1.1:47808"),
            0,
        ),
        (
            0x01,
            b.bip_address("10.0.0.1", 47808) + b"\xff" * 4,
            "write_broadcast_distribution_table",
            Operation.CONTROL,
            False,
            ("10.0.0.1:47808",),
            -1,
        ),
        (
            0x07,
            b.bip_address("10.9.0.1", 47809) + b"\x00\x3c\x00\x10",
            "read_foreign_device_table_ack",
            Operation.READ,
            True,
            ("10.9.0.1:47809",),
            0,
        ),
        (
            0x08,
            b.bip_address("10.9.0.1", 47809),
            "delete_foreign_device_table_entry",
            Operation.CONTROL,
            False,
            ("10.9.0.1:47809",),
            -1,
        ),
    ],
)
def test_bvlc_messages_without_an_npdu(
    function: int,
    body: bytes,
    name: str,
    operation: Operation,
    response: bool,
    targets: tuple[str, ...],
    result: int,
) -> None:
    message = one(b.bvll(function, body))
    assert (message.function, message.function_code, message.operation, message.is_response) == (
        name,
        function,
        operation,
        response,
    )
    assert (message.targets, message.result, message.status) == (targets, result, ParseStatus.OK)


READ = b.confirmed(1, 12, b.ctx_object(0, ANALOG_VALUE, 3) + b.ctx_unsigned(1, PRESENT_VALUE))
MALFORMED_CASES: list[tuple[bytes, BacnetFinding]] = [
    (b"\x81\x0a", F.TRUNCATED),
    (b"", F.TRUNCATED),
    (b"\x82\x0a\x00\x08\x01\x00\x10\x08", F.BAD_BVLC_TYPE),
    (b.unicast(READ)[:2] + b"\x00\x30" + b.unicast(READ)[4:], F.BAD_BVLC_LENGTH),
    (b.bvll(0x0D, b""), F.UNKNOWN_BVLC_FUNCTION),
    (b.bvll(0x00, b"\x00"), F.BAD_BVLC_BODY),
    (b.bvll(0x03, b"\x00" * 9), F.BAD_BVLC_BODY),
    (b.bvll(b.FORWARDED, b"\x0a\x00"), F.BAD_BVLC_BODY),
    (b.bvll(0x0A, b"\x02\x00\x10\x08"), F.BAD_NPDU_VERSION),
    (b.bvll(0x0A, b"\x01"), F.NPDU_TOO_SHORT),
    (b.bvll(0x0A, b"\x01\x20\x00\x05\x06\x01"), F.NPDU_TOO_SHORT),
    (b.unicast(READ, snet=5, sadr=b""), F.BAD_NPDU_ADDRESS),
    (b.bvll(0x0A, b.npdu(b"\x00", network_message=0x00)), F.BAD_NETWORK_MESSAGE),
    (b.bvll(0x0A, b.npdu(b"", network_message=0x20)), F.BAD_NETWORK_MESSAGE),
    (b.bvll(0x0A, b.npdu(b"")), F.APDU_TOO_SHORT),
    (b.unicast(b"\x00\x05\x01"), F.APDU_TOO_SHORT),
    (b.unicast(b"\x80\x01\x02"), F.UNKNOWN_PDU_TYPE),
    (b.unicast(b.confirmed(1, 40)), F.UNKNOWN_SERVICE),
    (b.unicast(b.unconfirmed(15)), F.UNKNOWN_SERVICE),
    (b.unicast(b.confirmed(1, 12, b"\x0c\x00\x80")), F.BAD_TAG),
    (b.unicast(b.confirmed(1, 12, b"\x0b\x00\x80\x00\x01\x19\x55")), F.BAD_TAG),
    (b.unicast(b.confirmed(1, 12, b.ctx_object(0, 2, 3))), F.MISSING_PARAMETER),
    (b.unicast(b.confirmed(1, 15, b.ctx_object(0, 2, 3) + b.ctx_unsigned(1, 85) + b.opening(3))), F.BAD_TAG),
    (b.unicast(b.confirmed(1, 18, b.closing(2))), F.BAD_TAG),
    (b.unicast(READ + b"\x00"), F.TRAILING_BYTES),
    (b.unicast(b.simple_ack(1, 15) + b"\x00"), F.TRAILING_BYTES),
    (b.unicast(b.reject(1, 2) + b"\x00"), F.TRAILING_BYTES),
    (
        b.unicast(b.complex_ack(1, 12, b.ctx_object(0, 2, 3) + b.ctx_unsigned(1, 85) + b"\x3e\x44\x00\x3f")),
        F.BAD_TAG,
    ),
]


@pytest.mark.parametrize(
    ("datagram", "finding"), MALFORMED_CASES, ids=[case[1].name for case in MALFORMED_CASES]
)
def test_malformed_datagrams_give_their_finding(datagram: bytes, finding: BacnetFinding) -> None:
    message = one(datagram)
    assert (message.finding, message.status) == (finding, ParseStatus.MALFORMED)
    if finding in (F.TRUNCATED, F.BAD_BVLC_TYPE, F.BAD_NPDU_VERSION, F.APDU_TOO_SHORT):
        assert message.operation == Operation.MALFORMED and message.function_code == -1


def test_a_batch_of_many_kinds_agrees_on_both_paths() -> None:
    both(
        [datagram for datagram, _ in MALFORMED_CASES]
        + [b.unicast(READ)] * 3
        + [b.broadcast(b.unconfirmed(8))]
    )
    both([])


def test_an_internal_error_is_a_finding_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    def broken(draft: object, data: bytes) -> tuple[BacnetFinding, bool]:
        raise IndexError("a bug")

    monkeypatch.setattr(sys.modules["plantwarden.protocols.bacnet.exact"], "_bvlc", broken)
    message = decode(b.unicast(READ))
    assert (message.finding, message.status, message.operation) == (
        F.UNEXPECTED,
        ParseStatus.MALFORMED,
        Operation.MALFORMED,
    )
