"""IEC 60870-5-104: frames built by scapy's independent encoder (scapy.contrib.scada.iec104)
decode with the expected fields on both paths; hand-made frames give each finding; fuzzed and
mutated frames never escape as an exception and both paths agree on them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.scada import iec104 as scapy_iec104

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus
from plantwarden.protocols.iec104 import (
    MODULE,
    Iec104Finding,
    Iec104Message,
    decode_apdu,
    decode_payload,
    decode_segments,
    exact,
    extract,
    types,
)

scapy: Any = scapy_iec104  # the independent encoder, untyped
objects: Any = scapy_iec104.iec104_information_objects
SCAPY_TYPES = sorted(objects.IEC104_IO_CLASSES)


def both_paths(segments: list[bytes], from_server: bool | list[bool] = False) -> list[Iec104Message]:
    """The exact messages of `segments` (each on its own), after checking the column extractor
    gives the same columns and summaries (and `decode_segments` the same as `decode_payload`)."""
    servers = from_server if isinstance(from_server, list) else [from_server] * len(segments)
    gap = b"\x68\x30\x00"  # bytes between the segments, which no segment may read
    buffer = np.frombuffer(gap.join(segments), dtype=np.uint8)
    lengths = np.array([len(segment) for segment in segments], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths + len(gap))[:-1])).astype(np.int64)
    flags = np.array(servers, dtype=np.bool_)
    fast, exact = extract(buffer, starts, lengths, flags), decode_segments(buffer, starts, lengths, flags)
    assert fast.differences(exact) == []
    messages = []
    for segment, server in zip(segments, servers, strict=True):
        found, _ = decode_payload(segment, server)
        messages.extend(found)
    assert fast.summary.summaries() == [message.summary() for message in messages]
    return messages


def one(apdu: bytes, from_server: bool = False) -> Iec104Message:
    messages = both_paths([apdu], from_server)
    assert len(messages) == 1
    return messages[0]


def test_the_declaration() -> None:
    assert MODULE.name == "iec104" and MODULE.tcp_ports == (2404,)


@pytest.mark.parametrize("type_id", SCAPY_TYPES)
def test_element_sizes_are_scapys(type_id: int) -> None:
    size = len(bytes(objects.IEC104_IO_CLASSES[type_id]()))
    if type_id == 125:  # F_SG_NA_1: scapy's empty segment is the 4-byte header
        assert types.element_size(type_id) == types.VARIABLE and size == types.SEGMENT_HEADER
    else:
        assert types.element_size(type_id) == size
    assert types.type_name(type_id) == objects.IEC104_IO_NAMES[type_id].lower()


@pytest.mark.parametrize("type_id", SCAPY_TYPES)
def test_scapys_single_address_asdus_decode(type_id: int) -> None:
    io_class = objects.IEC104_IO_WITH_IOA_CLASSES[type_id]
    addresses = [100, 70_000, 0xFFFFFF]
    packet = scapy.IEC104_I_Message_SingleIOA(
        tx_seq_num=5,
        rx_seq_num=32767,
        cot=7,
        ack=1,
        test=1,
        origin_address=3,
        common_asdu_address=0x1234,
        io=[io_class(information_object_address=address) for address in addresses],
    )
    message = one(bytes(packet), from_server=True)
    assert (message.frame_format, message.send_seq, message.recv_seq) == (0, 5, 32767)
    assert (message.type_id, message.sq, message.num_objects) == (type_id, 0, 3)
    assert (message.cause, message.negative, message.test, message.originator) == (7, 1, 1, 3)
    assert message.common_address == 0x1234 and message.ioas == tuple(addresses)
    assert (message.status, message.finding) == (ParseStatus.OK, Iec104Finding.OK)
    summary = message.summary()
    assert (summary.function_code, summary.function) == (type_id, objects.IEC104_IO_NAMES[type_id].lower())
    assert (summary.unit, summary.address, summary.quantity) == (0x1234, 100, 3)
    assert summary.targets == ("100", "70000", "16777215")
    assert summary.result == 1 and summary.is_response


@pytest.mark.parametrize("type_id", SCAPY_TYPES)
def test_scapys_sequences_decode(type_id: int) -> None:
    io_class = objects.IEC104_IO_CLASSES[type_id]
    size = len(bytes(io_class()))
    count = min(40, (253 - 13) // size) if size else 40  # as many as fit in the longest APDU
    packet = scapy.IEC104_I_Message_SeqIOA(
        tx_seq_num=1, cot=20, common_asdu_address=7, information_object_address=1000, io=[io_class()] * count
    )
    message = one(bytes(packet), from_server=True)
    assert (message.type_id, message.sq, message.num_objects, message.cause) == (type_id, 1, count, 20)
    assert message.ioas == tuple(range(1000, 1000 + count))
    assert (message.status, message.finding) == (ParseStatus.OK, Iec104Finding.OK)
    summary = message.summary()
    kept = min(count, MAX_TARGETS)
    assert summary.quantity == count and summary.targets == tuple(str(a) for a in range(1000, 1000 + kept))
    assert summary.result == -1


COMMANDS = {45: "s_or_e", 46: "s_or_e", 47: "s_or_e", 58: "s_or_e", 59: "s_or_e", 60: "s_or_e"}
COMMANDS |= dict.fromkeys((48, 49, 50, 61, 62, 63), "action")


@pytest.mark.parametrize("type_id", sorted(COMMANDS))
@pytest.mark.parametrize("select", [0, 1])
def test_a_commands_select_bit(type_id: int, select: int) -> None:
    io_class = objects.IEC104_IO_WITH_IOA_CLASSES[type_id]
    io = io_class(information_object_address=7, **{COMMANDS[type_id]: select})
    message = one(bytes(scapy.IEC104_I_Message_SingleIOA(cot=6, io=[io])))
    assert (message.select, message.summary().operation) == (select, Operation.CONTROL)


def test_no_select_bit_outside_commands() -> None:
    io = objects.IEC104_IO_WITH_IOA_CLASSES[51](information_object_address=7)
    assert one(bytes(scapy.IEC104_I_Message_SingleIOA(cot=6, io=[io]))).select == -1
    assert one(bytes(scapy.IEC104_S_Message())).select == -1


U_FRAMES = {
    "startdt_act": (0x07, Operation.OTHER),
    "startdt_con": (0x0B, Operation.OTHER),
    "stopdt_act": (0x13, Operation.OTHER),
    "stopdt_con": (0x23, Operation.OTHER),
    "testfr_act": (0x43, Operation.DIAGNOSTIC),
    "testfr_con": (0x83, Operation.DIAGNOSTIC),
}


@pytest.mark.parametrize("name", sorted(U_FRAMES))
def test_scapys_u_frames_decode(name: str) -> None:
    message = one(bytes(scapy.IEC104_U_Message(**{name: 1})))
    control, operation = U_FRAMES[name]
    assert (message.frame_format, message.control, message.finding) == (3, control, Iec104Finding.OK)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (256 + control, name, operation)


def test_scapys_s_frames_decode() -> None:
    message = one(bytes(scapy.IEC104_S_Message(rx_seq_num=12345)))
    assert (message.frame_format, message.recv_seq, message.send_seq) == (1, 12345, -1)
    assert (message.summary().function_code, message.summary().function) == (257, "s_format")


@pytest.mark.parametrize(
    ("type_id", "operation"),
    [
        (13, Operation.READ),
        (45, Operation.CONTROL),
        (50, Operation.CONTROL),
        (100, Operation.READ),
        (101, Operation.READ),
        (102, Operation.READ),
        (103, Operation.OTHER),
        (105, Operation.CONTROL),
        (107, Operation.DIAGNOSTIC),
        (110, Operation.WRITE),
        (113, Operation.WRITE),
        (122, Operation.PROGRAM),
        (70, Operation.OTHER),
    ],
)
def test_operation_categories(type_id: int, operation: Operation) -> None:
    assert types.operation_of(type_id) == operation


def apdu(asdu: bytes, control: bytes = b"\x00\x00\x00\x00") -> bytes:
    """An I frame written from IEC 60870-5-104 sec. 5 (not from the decoder)."""
    return bytes([0x68, 4 + len(asdu)]) + control + asdu


def single_command(cause: int, value: int = 1, ioa: int = 5000) -> bytes:
    return bytes([45, 1, cause, 0, 1, 0]) + ioa.to_bytes(3, "little") + bytes([value])


@pytest.mark.parametrize(
    ("cause", "result"), [(6, -1), (7, 0), (7 | 0x40, 1), (10, 0), (3, -1), (44 | 0x40, 44), (47, 47)]
)
def test_results(cause: int, result: int) -> None:
    assert one(apdu(single_command(cause)), from_server=True).summary().result == result


def test_several_apdus_per_segment_and_one_split_over_two() -> None:
    start, ack = bytes(scapy.IEC104_U_Message(startdt_act=1)), bytes(scapy.IEC104_S_Message())
    frames = start + apdu(single_command(6)) + ack
    messages, rest = decode_payload(frames + frames[:5], False)
    assert [m.frame_format for m in messages] == [3, 0, 1] and rest == frames[:5]
    assert [m.offset for m in messages] == [0, 6, 6 + 16]
    messages, rest = decode_payload(rest + frames[5:], False)
    assert [m.frame_format for m in messages] == [3, 0, 1] and rest == b""
    both_paths([frames + frames[:5], frames[:1], b"", frames + b"\x68"])


FINDINGS: list[tuple[bytes, Iec104Finding, ParseStatus]] = [
    (b"\x67\x04\x01\x00\x00\x00", Iec104Finding.BAD_START, ParseStatus.MALFORMED),
    (b"\x68\x02\x01\x00", Iec104Finding.SHORT_APDU, ParseStatus.MALFORMED),
    (b"\x68\x05\x07\x00\x00\x00\x00", Iec104Finding.S_U_LENGTH, ParseStatus.MALFORMED),
    (b"\x68\x04\x0f\x00\x00\x00", Iec104Finding.BAD_U_FUNCTION, ParseStatus.MALFORMED),
    (b"\x68\x04\x07\x00\x01\x00", Iec104Finding.RESERVED_BITS, ParseStatus.MALFORMED),
    (b"\x68\x04\x05\x00\x00\x00", Iec104Finding.RESERVED_BITS, ParseStatus.MALFORMED),
    (apdu(b"\x2d\x01\x06"), Iec104Finding.SHORT_ASDU, ParseStatus.MALFORMED),
    (apdu(b"\x2d\x01\x06\x00\x01\x00\x01"), Iec104Finding.SHORT_ASDU, ParseStatus.MALFORMED),
    (apdu(b"\x2d\x00\x06\x00\x01\x00\x01\x00\x00"), Iec104Finding.NO_OBJECTS, ParseStatus.MALFORMED),
    (apdu(single_command(0)), Iec104Finding.UNASSIGNED_CAUSE, ParseStatus.MALFORMED),
    (apdu(single_command(6)[:-1]), Iec104Finding.OBJECTS_TRUNCATED, ParseStatus.MALFORMED),
    (apdu(single_command(6) + b"\x00"), Iec104Finding.TRAILING_BYTES, ParseStatus.MALFORMED),
    (apdu(b"\x18\x02\x03\x00\x01\x00\x0a\x00\x00\x99"), Iec104Finding.RESERVED_TYPE, ParseStatus.PARTIAL),
    (apdu(b"\x88\x02\x03\x00\x01\x00\x0a\x00\x00\x99"), Iec104Finding.OK, ParseStatus.PARTIAL),
    (apdu(single_command(6), b"\x00\x00\x01\x00"), Iec104Finding.RESERVED_BITS, ParseStatus.MALFORMED),
]


@pytest.mark.parametrize(("frame", "finding", "status"), FINDINGS)
def test_findings(frame: bytes, finding: Iec104Finding, status: ParseStatus) -> None:
    message = one(frame)
    assert (message.finding, message.status) == (finding, status)
    assert message.summary().finding == finding


def test_a_type_of_unknown_size_stops_after_the_first_address() -> None:
    message = one(apdu(b"\x88\x02\x03\x00\x01\x00\x0a\x00\x00\x99\x99\x99"))
    assert message.ioas == (10,) and message.num_objects == 2
    sequence = one(apdu(b"\x88\x82\x03\x00\x01\x00\x0a\x00\x00\x99\x99\x99"))
    assert sequence.ioas == (10, 11)


def test_file_segments_are_walked_by_their_length() -> None:
    segment = bytes([125, 2, 13, 0, 1, 0])
    for ioa, data in ((1, b"abc"), (2, b"")):
        segment += ioa.to_bytes(3, "little") + b"\x01\x00\x01" + bytes([len(data)]) + data
    message = one(apdu(segment))
    assert (message.ioas, message.finding, message.status) == ((1, 2), Iec104Finding.OK, ParseStatus.OK)
    assert one(apdu(segment[:-1])).finding == Iec104Finding.OBJECTS_TRUNCATED


# Fuzzing: random bytes and mutated valid frames.
def valid_frames() -> list[bytes]:
    frames = [bytes(scapy.IEC104_U_Message(**{name: 1})) for name in U_FRAMES]
    frames.append(bytes(scapy.IEC104_S_Message()))
    for type_id in SCAPY_TYPES:
        sequence = [objects.IEC104_IO_CLASSES[type_id]()] * 2
        frames.append(bytes(scapy.IEC104_I_Message_SeqIOA(io=sequence)))
        single = [objects.IEC104_IO_WITH_IOA_CLASSES[type_id](information_object_address=9)] * 2
        frames.append(bytes(scapy.IEC104_I_Message_SingleIOA(io=single)))
    return frames


VALID = valid_frames()


@st.composite
def mutated(draw: Any) -> bytes:
    frames = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


def check_fuzzed(segments: list[bytes], servers: list[bool]) -> None:
    messages = both_paths(segments, servers)
    for message in messages:
        assert message.finding in Iec104Finding and message.finding != Iec104Finding.UNEXPECTED
        summary = message.summary()
        assert len(summary.targets) <= MAX_TARGETS
        assert (summary.status == ParseStatus.MALFORMED) == (message.finding not in (0, 10))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(mutated(), st.booleans()), min_size=1, max_size=6))
def test_mutated_frames(rows: list[tuple[bytes, bool]]) -> None:
    check_fuzzed([data for data, _ in rows], [server for _, server in rows])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans()), min_size=1, max_size=6))
def test_random_bytes(rows: list[tuple[bytes, bool]]) -> None:
    segments = [b"\x68" + data if index % 2 else data for index, (data, _) in enumerate(rows)]
    check_fuzzed(segments, [server for _, server in rows])


def test_decode_apdu_on_a_streams_last_bytes() -> None:
    command = apdu(single_command(6))
    for cut in (b"", b"\x68", command[:-1]):
        message = decode_apdu(cut, False)
        assert message.status == ParseStatus.MALFORMED
        assert message.finding == (Iec104Finding.BAD_START if not cut else Iec104Finding.TRUNCATED_APDU)
    assert decode_apdu(command + b"\x00", False).finding == Iec104Finding.TRAILING_BYTES
    assert decode_apdu(b"\x68\x02\x01\x00\x00", False).finding == Iec104Finding.SHORT_APDU


def test_an_internal_error_is_unexpected_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(exact, "_asdu", fail)
    message = decode_apdu(apdu(single_command(6)), True, pdu_index=2, offset=9)
    assert (message.finding, message.status) == (Iec104Finding.UNEXPECTED, ParseStatus.MALFORMED)
    assert (message.pdu_index, message.offset, message.is_response) == (2, 9, True)
    assert message.summary().operation == Operation.MALFORMED
