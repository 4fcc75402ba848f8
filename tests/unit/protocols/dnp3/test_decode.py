"""DNP3 frames built from IEEE 1815-2012 by the tests' own encoder decode with the expected
fields, on the exact path and the column extractor alike."""

from __future__ import annotations

import struct

import pytest

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.dnp3 import MODULE, Dnp3Finding, Reassembler, crc16, decode_datagram, decode_frame
from plantwarden.protocols.dnp3.messages import TRANSPORT_SEGMENT
from tests.unit.protocols.dnp3 import builders as b
from tests.unit.protocols.dnp3.support import both, columns_of

MASTER, OUTSTATION = 1, 10


def request_frame(function: int, objects: bytes = b"") -> bytes:
    return b.link_frame(b.MASTER_TO_OUTSTATION, OUTSTATION, MASTER, b.transport(b.request(function, objects)))


def response_frame(objects: bytes = b"", iin1: int = 0, iin2: int = 0, function: int = 129) -> bytes:
    fragment = b.response(function, iin1, iin2, objects)
    return b.link_frame(b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION, b.transport(fragment))


def test_the_module_declares_dnp3_on_port_20000() -> None:
    assert MODULE.name == "dnp3" and MODULE.tcp_ports == (20000,) and MODULE.udp_ports == (20000,)


@pytest.mark.parametrize("data", [b"123456789", b"\x05\x64\x05\xc0\x01\x00\x00\x04", bytes(range(16)), b""])
def test_the_table_crc_is_the_bitwise_crc(data: bytes) -> None:
    assert crc16(data) == b.crc_dnp(data)


def test_the_crc_has_the_catalogued_check_value() -> None:
    assert b.crc_dnp(b"123456789") == 0xEA82
    # The reset link states frame of the DNP3 primer: master 1024 to outstation 1.
    assert b.link_frame(0xC0, 1, 1024) == bytes.fromhex("056405c001000004e921")


def test_a_class_poll_is_a_read_of_the_outstation() -> None:
    objects = b.all_objects(60, 2) + b.all_objects(60, 3) + b.all_objects(60, 4) + b.all_objects(60, 1)
    (message,), leftover = both(request_frame(1, objects))
    assert leftover == b""
    assert (message.length, message.control, message.destination, message.source) == (5 + 15, 0xC4, 10, 1)
    assert (message.transport, message.app_control, message.app_function, message.iin) == (0xC0, 0xC0, 1, -1)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (1, "read", Operation.READ)
    assert (summary.is_response, summary.unit, summary.address, summary.quantity) == (False, 10, -1, 0)
    assert summary.targets == ("g60v2 all", "g60v3 all", "g60v4 all", "g60v1 all")
    assert (summary.result, summary.status, summary.finding) == (-1, ParseStatus.OK, 0)


def test_a_response_with_analog_inputs_carries_its_iin() -> None:
    values = b"".join(struct.pack("<Bh", 0x01, value) for value in range(10))
    (message,), _ = both(response_frame(b.start_stop(30, 2, 0, 9) + values, iin1=0x82))
    summary = message.summary()
    assert (summary.function, summary.is_response, summary.unit) == ("response", True, OUTSTATION)
    assert (summary.address, summary.quantity, summary.targets) == (0, 10, ("g30v2 0-9",))
    assert (message.iin, summary.result, summary.status) == (0x8200, 0, ParseStatus.OK)


@pytest.mark.parametrize(
    ("iin2", "result"), [(0x01, 1), (0x02, 2), (0x04, 4), (0x08, 0), (0x10, 0x10), (0xFF, 0x37)]
)
def test_a_responses_result_is_its_iin2_error_bits(iin2: int, result: int) -> None:
    (message,), _ = both(response_frame(iin2=iin2))
    assert message.summary().result == result


def test_a_response_walks_every_group_of_a_plant() -> None:
    objects = (
        b.start_stop(1, 2, 0, 2)
        + bytes(3)
        + b.start_stop(1, 1, 0, 9)
        + bytes(2)  # 10 packed bits
        + b.counted(2, 2, 2, prefix=1)
        + bytes([3])
        + bytes(7)
        + bytes([4])
        + bytes(7)
        + b.start_stop(10, 2, 0, 1)
        + bytes(2)
        + b.start_stop(20, 1, 0, 1)
        + bytes(10)
        + b.start_stop(21, 9, 5, 5)
        + bytes(4)
        + b.counted(22, 5, 1, prefix=2, width=2)
        + struct.pack("<H", 7)
        + bytes(11)
        + b.start_stop(30, 5, 0, 0)
        + bytes(5)
        + b.counted(32, 7, 1, prefix=1)
        + bytes([2])
        + bytes(11)
        + b.start_stop(40, 4, 0, 0, width=2)
        + bytes(9)
        + b.counted(50, 1, 1)
        + bytes(6)
        + b.counted(51, 1, 1)
        + bytes(6)
        + b.counted(52, 2, 1)
        + bytes(2)
        + b.start_stop(80, 1, 7, 7)
        + bytes(1)
        + b.start_stop(110, 5, 0, 1)
        + b"abcdeABCDE"
        + b.start_stop(0, 242, 0, 0)
        + bytes([1, 3])
        + b"xyz"
    )
    fragment = b.response(129, 0, 0, objects)
    frames = b.frames_for(fragment, b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION)
    assert len(frames) == 1
    (message,), _ = both(frames[0])
    assert (message.status, message.finding) == (ParseStatus.OK, Dnp3Finding.OK)
    assert [header.text() for header in message.objects] == [
        "g1v2 0-2", "g1v1 0-9", "g2v2 count 2", "g10v2 0-1", "g20v1 0-1", "g21v9 5-5", "g22v5 count 1",
        "g30v5 0-0", "g32v7 count 1", "g40v4 0-0", "g50v1 count 1", "g51v1 count 1", "g52v2 count 1",
        "g80v1 7-7", "g110v5 0-1", "g0v242 0-0",
    ]  # fmt: skip
    assert message.objects[2].first_index == 3 and message.objects[6].first_index == 7


def test_a_direct_operate_of_a_crob_is_control_at_its_index() -> None:
    crob = bytes([0x41, 1]) + struct.pack("<II", 100, 0) + bytes([0])
    (message,), _ = both(
        request_frame(5, b.counted(12, 1, 1, prefix=2, width=2) + struct.pack("<H", 17) + crob)
    )
    summary = message.summary()
    assert (summary.function, summary.operation) == ("direct_operate", Operation.CONTROL)
    assert (summary.address, summary.quantity, summary.targets) == (17, 1, ("g12v1 count 1",))


@pytest.mark.parametrize(
    ("function", "name", "operation"),
    [
        (2, "write", Operation.WRITE),
        (3, "select", Operation.CONTROL),
        (4, "operate", Operation.CONTROL),
        (6, "direct_operate_nr", Operation.CONTROL),
        (7, "immed_freeze", Operation.CONTROL),
        (13, "cold_restart", Operation.CONTROL),
        (14, "warm_restart", Operation.CONTROL),
        (15, "initialize_data", Operation.CONTROL),
        (18, "stop_appl", Operation.CONTROL),
        (20, "enable_unsolicited", Operation.OTHER),
        (21, "disable_unsolicited", Operation.OTHER),
        (22, "assign_class", Operation.OTHER),
        (23, "delay_measure", Operation.DIAGNOSTIC),
        (24, "record_current_time", Operation.DIAGNOSTIC),
        (26, "close_file", Operation.READ),
        (27, "delete_file", Operation.PROGRAM),
        (28, "get_file_info", Operation.READ),
        (30, "abort_file", Operation.READ),
        (32, "authenticate_req", Operation.OTHER),
        (0, "confirm", Operation.OTHER),
    ],
)
def test_each_function_has_its_name_and_category(function: int, name: str, operation: Operation) -> None:
    (message,), _ = both(request_frame(function))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (function, name, operation)
    assert summary.status == ParseStatus.OK


def g70v3(mode: int, name: bytes = b"/a.txt") -> bytes:
    return struct.pack("<HH6sHIIHHH", 26, len(name), bytes(6), 0o644, 0, 0, mode, 1024, 1) + name


@pytest.mark.parametrize(
    ("mode", "operation"), [(1, Operation.READ), (2, Operation.PROGRAM), (3, Operation.PROGRAM)]
)
def test_opening_a_file_to_write_is_program(mode: int, operation: Operation) -> None:
    (message,), _ = both(request_frame(25, b.free_format(70, 3, [g70v3(mode)])))
    assert (message.file_mode, message.summary().operation) == (mode, operation)
    assert message.summary().targets == ("g70v3 count 1",)


def test_writing_file_data_is_program() -> None:
    block = struct.pack("<II", 0x1234, 0x80000000) + b"data"
    (message,), _ = both(request_frame(2, b.free_format(70, 5, [block])))
    assert message.summary().operation == Operation.PROGRAM


def test_a_read_with_index_prefixes_carries_no_data() -> None:
    (message,), _ = both(
        request_frame(1, b.counted(30, 1, 3, prefix=1) + bytes([4, 9, 12]) + b.all_objects(1, 0))
    )
    summary = message.summary()
    assert (summary.address, summary.quantity, summary.targets) == (4, 3, ("g30v1 count 3", "g1v0 all"))
    assert summary.status == ParseStatus.OK


def test_freeze_at_time_carries_only_its_time() -> None:
    objects = b.counted(50, 2, 1) + bytes(10) + b.all_objects(20, 0)
    (message,), _ = both(request_frame(11, objects))
    assert message.summary().targets == ("g50v2 count 1", "g20v0 all") and message.status == ParseStatus.OK


def test_an_object_of_unknown_size_ends_the_walk_partial() -> None:
    objects = b.start_stop(30, 0, 0, 3) + bytes(12) + b.start_stop(1, 2, 0, 0) + bytes(1)
    (message,), _ = both(response_frame(objects))
    assert (message.status, message.finding) == (ParseStatus.PARTIAL, Dnp3Finding.OK)
    assert message.summary().targets == ("g30v0 0-3",)


@pytest.mark.parametrize(
    ("objects", "finding"),
    [
        (bytes([30, 2, 0x0A]), Dnp3Finding.BAD_QUALIFIER),
        (bytes([30, 2, 0x70, 1]), Dnp3Finding.BAD_QUALIFIER),
        (bytes([30, 2, 0x80, 0, 0]), Dnp3Finding.BAD_QUALIFIER),
        (b.start_stop(30, 2, 5, 4), Dnp3Finding.BAD_RANGE),
        (b.start_stop(30, 2, 0, 9) + bytes(29), Dnp3Finding.OBJECT_TRUNCATED),
        (bytes([30, 2]), Dnp3Finding.OBJECT_TRUNCATED),
        (bytes([30, 2, 0x01, 0]), Dnp3Finding.OBJECT_TRUNCATED),
    ],
)
def test_broken_object_headers_are_findings(objects: bytes, finding: Dnp3Finding) -> None:
    (message,), _ = both(response_frame(objects))
    assert (message.status, message.finding) == (ParseStatus.MALFORMED, finding)
    assert message.summary().finding == finding


def test_an_unknown_function_is_a_finding() -> None:
    (message,), _ = both(request_frame(99))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.finding) == (
        99,
        "",
        Dnp3Finding.UNKNOWN_FUNCTION,
    )
    assert summary.status == ParseStatus.MALFORMED


def test_a_short_response_is_a_finding() -> None:
    frame = b.link_frame(b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION, b.transport(bytes([0xC0, 129, 0])))
    (message,), _ = both(frame)
    assert (message.app_function, message.finding) == (129, Dnp3Finding.APPLICATION_TOO_SHORT)


@pytest.mark.parametrize("block", [-2, 0, 1, 2])
def test_a_bad_crc_on_any_block_is_a_finding(block: int) -> None:
    objects = b.start_stop(30, 2, 0, 9) + bytes(30)  # 39 bytes: three data blocks with the headers
    fragment = b.response(129, 0, 0, objects)
    frame = b.link_frame(
        b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION, b.transport(fragment), corrupt_block=block
    )
    (message,), _ = both(frame)
    expected = Dnp3Finding.BAD_HEADER_CRC if block == -2 else Dnp3Finding.BAD_DATA_CRC
    assert (message.status, message.finding, message.app_function) == (ParseStatus.MALFORMED, expected, -1)
    assert (message.source, message.destination) == (OUTSTATION, MASTER)


def test_link_frames_without_user_data() -> None:
    frames = [
        b.link_frame(0xC0, 1, 1024),
        b.link_frame(0x00, 1024, 1),
        b.link_frame(0xC9, 1, 1024),
        b.link_frame(0x0B, 1024, 1),
    ]
    messages, _ = both(b"".join(frames))
    assert [m.summary().function for m in messages] == [
        "link_reset_link_states", "link_ack", "link_request_link_status", "link_link_status"
    ]  # fmt: skip
    assert [m.summary().is_response for m in messages] == [False, True, False, True]
    assert all(m.summary().operation == Operation.OTHER and m.status == ParseStatus.OK for m in messages)


@pytest.mark.parametrize(
    ("frame", "finding"),
    [
        (b.link_frame(0xCD, 1, 2), Dnp3Finding.UNKNOWN_LINK_FUNCTION),
        (b.link_frame(0xC4, 1, 2), Dnp3Finding.NO_USER_DATA),
        (b.link_frame(0xC0, 1, 2, b"\xc0\xc0\x01"), Dnp3Finding.UNEXPECTED_USER_DATA),
    ],
)
def test_link_function_findings(frame: bytes, finding: Dnp3Finding) -> None:
    (message,), _ = both(frame)
    assert (message.status, message.finding) == (ParseStatus.MALFORMED, finding)


def test_several_frames_in_a_payload_and_a_partial_last_one() -> None:
    first, second = request_frame(1, b.all_objects(60, 1)), response_frame()
    messages, leftover = both(first + second + second[:7])
    assert [m.offset for m in messages] == [0, len(first)]
    assert leftover == second[:7]
    messages, leftover = both(leftover + second[7:])
    assert len(messages) == 1 and leftover == b""


def test_a_bad_start_takes_the_rest_of_the_payload() -> None:
    good = request_frame(1)
    messages, leftover = both(good + b"\x05\x65" + good)
    assert [m.finding for m in messages] == [Dnp3Finding.OK, Dnp3Finding.BAD_START]
    assert messages[1].size == len(good) + 2 and leftover == b""
    assert messages[1].summary().operation == Operation.MALFORMED


def test_a_bad_length_takes_the_rest_of_the_payload() -> None:
    frame = bytearray(b.link_frame(0xC0, 1, 2))
    frame[2] = 4
    (message,), leftover = both(bytes(frame) + request_frame(1))
    assert (message.finding, message.length, leftover) == (Dnp3Finding.BAD_LENGTH, 4, b"")


def test_a_lone_truncated_frame_is_a_finding() -> None:
    assert decode_frame(request_frame(1)[:-1], False).finding == Dnp3Finding.TRUNCATED_FRAME


def test_a_multi_frame_fragment_is_reassembled_on_the_exact_path() -> None:
    values = b"".join(struct.pack("<Bi", 0x01, value) for value in range(120))
    fragment = b.response(129, 0, 0, b.start_stop(30, 1, 0, 119, width=2) + values)
    frames = b.frames_for(fragment, b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION, first_sequence=62)
    assert len(frames) == 3  # sequences 62, 63, 0
    alone, _ = both(b"".join(frames))
    assert [m.summary().function for m in alone] == [TRANSPORT_SEGMENT] * 3
    assert all(m.status == ParseStatus.PARTIAL and m.app_function == -1 for m in alone)
    reassembler = Reassembler()
    messages = [message for frame in frames for message in reassembler.decode_payload(frame, True)[0]]
    assert [m.fragments for m in messages] == [0, 0, 3]
    summary = messages[-1].summary()
    assert (summary.function, summary.targets, summary.quantity, summary.status) == (
        "response", ("g30v1 0-119",), 120, ParseStatus.OK
    )  # fmt: skip


def test_the_reassembler_drops_a_segment_out_of_sequence() -> None:
    fragment = b.response(129, 0, 0, b.start_stop(30, 2, 0, 99) + bytes(300))
    frames = b.frames_for(fragment, b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION)
    reassembler = Reassembler()
    first = reassembler.decode_payload(frames[0], True)[0]
    last = reassembler.decode_payload(frames[1][:0] + frames[1], True)[0]
    again = reassembler.decode_payload(frames[1], True)[0]
    assert first[0].finding == Dnp3Finding.OK and last[0].app_function == 129
    assert again[0].finding == Dnp3Finding.TRANSPORT_SEQUENCE and again[0].app_function == -1


def test_directions_are_kept_apart() -> None:
    big = b.response(129, 0, 0, b.start_stop(30, 2, 0, 99) + bytes(300))
    out = b.frames_for(big, b.OUTSTATION_TO_MASTER, MASTER, OUTSTATION)
    poll = request_frame(1, b.all_objects(60, 1))
    reassembler = Reassembler()
    rows = [reassembler.decode_payload(payload, False)[0][0] for payload in (out[0], poll, out[1])]
    assert [row.summary().function for row in rows] == [TRANSPORT_SEGMENT, "read", "response"]


def test_a_batch_of_payloads_gives_the_same_columns_on_both_paths() -> None:
    payloads = [request_frame(1), response_frame(), b"", b"\x05", response_frame()[:12], b"\x00\x01"]
    fast, exact = columns_of(payloads, [False, True, False, True, True, False])
    assert fast.differences(exact) == []
    assert fast.leftover.tolist() == [0, 0, 0, 1, 12, 0]
    assert fast.segment.tolist() == [0, 1, 5]


def test_a_datagram_leaves_nothing_over() -> None:
    frame = request_frame(1, b.all_objects(60, 1))
    messages, leftover = decode_datagram(frame + frame[:12], False)
    assert leftover == b"" and [m.finding for m in messages] == [Dnp3Finding.OK, Dnp3Finding.TRUNCATED_FRAME]
    assert messages[1].offset == len(frame) and messages[1].status == ParseStatus.MALFORMED
    assert Reassembler().decode_datagram(frame, False)[0][0].summary().function == "read"


ANNEX_A_SIZES = [
    (2, 1, 1), (2, 3, 3), (3, 2, 1), (4, 2, 7), (4, 3, 3), (11, 1, 1), (11, 2, 7), (12, 1, 11), (12, 2, 11),
    (13, 2, 7), (20, 2, 3), (20, 5, 4), (20, 6, 2), (21, 1, 5), (21, 5, 11), (21, 10, 2), (22, 1, 5),
    (22, 6, 9), (23, 2, 3), (23, 5, 11), (30, 1, 5), (30, 3, 4), (30, 4, 2), (30, 6, 9), (31, 3, 11),
    (31, 8, 9), (32, 1, 5), (32, 3, 11), (32, 4, 9), (32, 6, 9), (32, 8, 15), (33, 7, 11), (34, 1, 2),
    (34, 3, 4), (40, 1, 5), (40, 2, 3), (40, 3, 5), (41, 1, 5), (41, 2, 3), (41, 3, 5), (41, 4, 9),
    (42, 7, 11), (42, 8, 15), (43, 1, 5), (43, 6, 9), (50, 2, 10), (50, 3, 6), (50, 4, 11), (51, 2, 6),
    (52, 1, 2), (111, 4, 4), (112, 9, 9), (113, 1, 1), (121, 1, 7), (122, 2, 13),
]  # fmt: skip
"""(group, variation, bytes per object) from IEEE 1815-2012 annex A, for the tests."""


@pytest.mark.parametrize(("group", "variation", "size"), ANNEX_A_SIZES)
def test_each_object_is_walked_by_its_annex_a_size(group: int, variation: int, size: int) -> None:
    objects = b.start_stop(group, variation, 3, 5) + bytes(3 * size) + b.start_stop(1, 2, 0, 0) + bytes(1)
    (message,), _ = both(response_frame(objects))
    assert (message.status, message.finding) == (ParseStatus.OK, Dnp3Finding.OK)
    assert message.summary().targets == (f"g{group}v{variation} 3-5", "g1v2 0-0")
    (short,), _ = both(response_frame(objects[: 5 + 3 * size - 1]))
    assert short.finding == Dnp3Finding.OBJECT_TRUNCATED
