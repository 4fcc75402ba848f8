"""Frames built by an independent encoder (`builders`, from the specification) decode with the
expected fields on both paths."""

from __future__ import annotations

import importlib
import struct
from typing import Any

import pytest

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.s7comm import MODULE, S7Finding, decode_payload, decode_pdu, split_pdus
from tests.unit.protocols.s7comm import builders as b
from tests.unit.protocols.s7comm.support import both, one


def test_the_module_declares_s7comm_on_port_102() -> None:
    assert MODULE.name == "s7comm" and MODULE.tcp_ports == (102,)
    assert MODULE.support == "partial" and MODULE.references


def test_a_connection_request_records_its_tsaps() -> None:
    message = one(b.connect(0xE0, b"\x01\x00", b"\x01\x02"))
    summary = message.summary()
    assert (message.cotp_type, message.src_tsap, message.dst_tsap) == (0xE0, 0x0100, 0x0102)
    assert (summary.function_code, summary.function, summary.operation) == (
        0x20E0,
        "cotp_connection_request",
        Operation.OTHER,
    )
    assert summary.unit == -1 and summary.status == ParseStatus.OK
    confirm = one(b.connect(0xD0, b"\x01\x00", b"\x01\x02"), from_server=True)
    assert confirm.summary().function == "cotp_connection_confirm" and confirm.summary().is_response


def test_a_long_tsap_is_not_a_number() -> None:
    message = one(b.connect(0xE0, b"\x01\x00", b"SIMATIC-ROOT-HMI"))
    assert (message.src_tsap, message.dst_tsap, message.finding) == (0x0100, -1, S7Finding.OK)


def test_disconnect_request() -> None:
    assert one(b.disconnect_request()).summary().function == "cotp_disconnect_request"


def test_setup_communication_both_ways() -> None:
    job = one(b.dt(b.setup(1, 1, 1, 480)))
    assert (job.max_amq_calling, job.max_amq_called, job.pdu_length) == (1, 1, 480)
    assert (job.rosctr, job.pdu_ref, job.param_length, job.data_length) == (1, 0, 8, 0)
    summary = job.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        0xF0,
        "setup_communication",
        Operation.OTHER,
    )
    assert summary.result == -1
    ack = one(b.dt(b.setup(3, 1, 1, 240)), from_server=True)
    assert ack.pdu_length == 240 and (ack.error_class, ack.error_code) == (0, 0)
    assert ack.summary().result == 0


def test_read_var_items_become_targets() -> None:
    items = [
        b.any_item(1, 1, "DB", db=1, byte=0, bit=0),
        b.any_item(1, 1, "M", byte=10, bit=3),
        b.any_item(4, 1, "DB", db=1, byte=4),
        b.any_item(2, 10, "DB", db=1, byte=0),
        b.any_item(6, 1, "I", byte=8),
        b.any_item(2, 1, "Q", byte=2),
        b.any_item(0x1D, 1, "T", byte=5),
        b.any_item(0x1C, 3, "C", byte=7),
        b.any_item(8, 2, "DI", db=3, byte=12),
    ]
    message = one(b.dt(b.read_var_job(items, ref=0x0A00)))
    summary = message.summary()
    assert summary.targets == (
        "DB1.DBX0.0",
        "M10.3",
        "DB1.DBW4",
        "P#DB1.DBX0.0 BYTE 10",
        "ID8",
        "QB2",
        "T5",
        "C7[3]",
        "P#DI3.DIX12.0 REAL 2",
    )
    assert (summary.function_code, summary.function, summary.operation) == (0x04, "read_var", Operation.READ)
    assert (summary.quantity, summary.address, message.item_count, message.pdu_ref) == (9, 0, 9, 0x0A00)
    assert [item.area for item in message.items] == [0x84, 0x83, 0x84, 0x84, 0x81, 0x82, 0x1D, 0x1C, 0x85]
    assert [item.byte_address for item in message.items] == [0, 10, 4, 0, 8, 2, 5, 7, 12]


def test_read_var_response_results_per_item() -> None:
    values = [
        b.data_item(0xFF, 0x03, b"\x01", last=False),
        b.data_item(0xFF, 0x04, b"\x12\x34\x56", bits=True, last=False),
        b.data_item(0x0A, 0x00, b""),
    ]
    message = one(b.dt(b.read_var_ack(values)), from_server=True)
    assert message.item_results == (0xFF, 0xFF, 0x0A)
    assert [value for _, _, value in message.data_items] == [b"\x01", b"\x12\x34\x56", b""]
    summary = message.summary()
    assert (summary.operation, summary.quantity, summary.result, summary.status) == (
        Operation.READ,
        0,
        0x0A,
        ParseStatus.OK,
    )


def test_a_bit_item_is_one_byte_of_data() -> None:
    message = one(b.dt(b.read_var_ack([struct.pack(">BBH", 0xFF, 0x03, 1) + b"\x01"])), from_server=True)
    assert message.data_items == ((0xFF, 0x03, b"\x01"),) and message.finding == S7Finding.OK


def test_write_var_request_and_response() -> None:
    items = [b.any_item(2, 2, "DB", db=10, byte=100), b.any_item(1, 1, "Q", byte=0, bit=1)]
    values = [
        b.data_item(0, 0x04, b"\xab\xcd", bits=True, last=False),
        b.data_item(0, 0x03, b"\x01", bits=False),
    ]
    message = one(b.dt(b.write_var_job(items, values)))
    summary = message.summary()
    assert summary.targets == ("P#DB10.DBX100.0 BYTE 2", "Q0.1") and summary.address == 100
    assert (summary.function, summary.operation) == ("write_var", Operation.WRITE)
    assert [value for _, _, value in message.data_items] == [b"\xab\xcd", b"\x01"]
    ack = one(b.dt(b.write_var_ack([0xFF, 0x05])), from_server=True)
    assert ack.item_results == (0xFF, 0x05) and ack.summary().result == 0x05


@pytest.mark.parametrize(
    ("function", "name"),
    [(0x1A, "request_download"), (0x1B, "download_block"), (0x1C, "download_ended"), (0x1D, "start_upload")],
)
def test_block_functions_name_their_block(function: int, name: str) -> None:
    part2 = b"1000216000088" if function == 0x1A else None
    message = one(b.dt(b.block_job(function, b.filename("0A", 10), part2=part2)))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (function, name, Operation.PROGRAM)
    assert summary.targets == ("DB10",) and summary.address == 10
    assert message.filename == "_0A00010P"


def test_upload_and_end_upload_carry_the_upload_id() -> None:
    for function, name in ((0x1E, "upload"), (0x1F, "end_upload")):
        message = one(b.dt(b.block_job(function, None, upload_id=7)))
        assert message.upload_id == 7 and message.summary().function == name
        assert message.summary().operation == Operation.PROGRAM


def test_ob1_download_block_job_from_the_plc() -> None:
    message = one(b.dt(b.block_job(0x1B, b.filename("08", 1))), from_server=True)
    assert message.summary().targets == ("OB1",) and message.summary().is_response


@pytest.mark.parametrize(
    ("service", "blocks", "operation", "targets"),
    [
        (b"_INSE", [b"0A00001P"], Operation.PROGRAM, ("_INSE", "DB1")),
        (b"_DELE", [b"0800001P", b"0C00005P"], Operation.PROGRAM, ("_DELE", "OB1", "FC5")),
        (b"_MODU", [], Operation.PROGRAM, ("_MODU",)),
        (b"P_PROGRAM", [], Operation.CONTROL, ("P_PROGRAM",)),
    ],
)
def test_pi_services(
    service: bytes, blocks: list[bytes], operation: Operation, targets: tuple[str, ...]
) -> None:
    message = one(b.dt(b.pi_service(service, blocks)))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (0x28, "pi_service", operation)
    assert summary.targets == targets and message.pi_service == service.decode()


def test_plc_stop() -> None:
    message = one(b.dt(b.plc_stop()))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        0x29,
        "plc_stop",
        Operation.CONTROL,
    )
    assert message.pi_service == "P_PROGRAM"
    ack = one(b.dt(b.s7(3, 7, b"\x29")), from_server=True)
    assert ack.summary().operation == Operation.CONTROL and ack.summary().result == 0


def test_an_error_in_ack_data_is_the_result() -> None:
    message = one(b.dt(b.s7(3, 3, b"\x29", error=(0x81, 0x04))), from_server=True)
    assert (message.error_class, message.error_code) == (0x81, 0x04)
    assert message.summary().result == 0x8104


def test_an_ack_without_parameters() -> None:
    message = one(b.dt(b.s7(2, 4, b"", error=(0x85, 0x00))), from_server=True)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.result) == (-1, "ack", 0x8500)


@pytest.mark.parametrize(
    ("szl_id", "operation"),
    [
        (0x0011, Operation.IDENTIFY),
        (0x001C, Operation.IDENTIFY),
        (0x0111, Operation.IDENTIFY),
        (0x0424, Operation.DIAGNOSTIC),
    ],
)
def test_szl_reads(szl_id: int, operation: Operation) -> None:
    request = one(b.dt(b.szl_request(szl_id, 1)))
    summary = request.summary()
    assert (request.ud_type, request.ud_group, request.ud_subfunction) == (4, 4, 1)
    assert (summary.function_code, summary.function, summary.operation) == (0x1401, "read_szl", operation)
    assert (request.szl_id, request.szl_index, summary.address) == (szl_id, 1, szl_id)
    assert summary.targets == (f"SZL 0x{szl_id:04x} index 0x0001",)
    response = one(b.dt(b.szl_response(szl_id, 1, b"\x00" * 28, 28)), from_server=True)
    assert (response.szl_id, response.ud_type, response.ud_error) == (szl_id, 8, 0)
    assert response.summary().operation == operation and response.summary().result == 0


def test_a_later_fragment_of_an_szl_answer_has_no_szl_id() -> None:
    data = b.ud_data(0xFF, 0x09, b"\x00\x11\x22\x33\x44\x55")
    message = one(b.dt(b.userdata(8, 4, 1, data, seq=2, follow=(5, 0, 0))), from_server=True)
    assert message.szl_id == -1 and message.status == ParseStatus.PARTIAL
    assert message.summary().operation == Operation.DIAGNOSTIC


def test_clock_read_and_set() -> None:
    read = one(b.dt(b.userdata(4, 7, 1, b.ud_data(0x0A, 0, b""))))
    assert (read.summary().function_code, read.summary().function) == (0x1701, "clock_read")
    assert read.summary().operation == Operation.READ
    clock = bytes([0, 0x20, 0x26, 0x11, 0x26, 0x16, 0x05, 0x00, 0x12, 0x34])
    set_ = one(b.dt(b.userdata(4, 7, 2, b.ud_data(0xFF, 0x09, clock))))
    assert (set_.summary().function, set_.summary().operation, set_.data) == (
        "clock_set",
        Operation.WRITE,
        clock,
    )


def test_password() -> None:
    message = one(b.dt(b.userdata(4, 5, 1, b.ud_data(0xFF, 0x09, b"\x21\x3a\x1b\x1d\x6e\x68\x1b\x1d"))))
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation) == (
        0x1501,
        "plc_password",
        Operation.OTHER,
    )


def test_cyclic_data_is_partial() -> None:
    message = one(b.dt(b.userdata(4, 2, 1, b.ud_data(0xFF, 0x09, b"\x01\x02"))))
    assert message.summary().operation == Operation.READ and message.status == ParseStatus.PARTIAL


@pytest.mark.parametrize(
    ("version", "opcode", "function", "digest", "name"),
    [
        (3, 0x31, 0x04F2, True, "s7comm_plus_set_variable"),
        (3, 0x33, 0, True, "s7comm_plus_notification"),
        (2, 0x32, 0x054C, False, "s7comm_plus_get_multi_variables"),
        (1, 0x31, 0x04CA, False, "s7comm_plus_create_object"),
    ],
)
def test_s7comm_plus_is_detected(version: int, opcode: int, function: int, digest: bool, name: str) -> None:
    message = one(b.dt(b.plus(version, opcode, function, digest)))
    assert (message.protocol_id, message.plus_version, message.plus_opcode) == (0x72, version, opcode)
    assert message.plus_function == (function if opcode != 0x33 else -1)
    summary = message.summary()
    assert summary.function == name and summary.status == ParseStatus.PARTIAL
    assert summary.function_code == 0x72000000 | opcode << 16 | (function if opcode != 0x33 else 0)


def test_several_tpkts_in_one_segment_and_one_across_two() -> None:
    frames = [b.dt(b.setup(1, 1, 1, 480)), b.dt(b.szl_request(0x11, 0)), b.dt(b.plc_stop())]
    stream = b"".join(frames)
    messages, rest = decode_payload(stream, False)
    assert [m.offset for m in messages] == [0, len(frames[0]), len(frames[0]) + len(frames[1])]
    assert rest == b""
    cut = len(frames[0]) + 5
    first, rest = decode_payload(stream[:cut], False)
    assert len(first) == 1 and rest == stream[len(frames[0]) : cut]
    second, rest = decode_payload(rest + stream[cut:], False)
    assert [m.summary() for m in first + second] == [m.summary() for m in messages]
    columns, leftover = both([stream[:cut], stream[len(frames[0]) :]])  # the leftover goes first
    assert leftover == [5, 0] and columns.pdu_index.tolist() == [0, 0, 1]
    assert columns.segment.tolist() == [0, 1, 1]


def test_cotp_fragments_are_joined() -> None:
    pdu = b.read_var_job([b.any_item(2, 4, "M", byte=0)])
    stream = b.dt(b"", eot=False) + b.dt(pdu[:5], eot=False) + b.dt(pdu[5:])
    message = one(stream)
    assert message.fragments == 3 and message.summary().targets == ("P#M0.0 BYTE 4",)
    assert split_pdus(stream[:-3]).leftover == len(stream) - 3
    columns, leftover = both([stream[:10], stream])  # the leftover goes before the rest
    assert leftover == [10, 0] and columns.segment.tolist() == [1] and columns.fragments.tolist() == [3]


def test_malformed_frames_have_findings() -> None:
    cases = {
        b"\x04\x00\x00\x07\x02\xf0\x80": S7Finding.BAD_TPKT_HEADER,
        b.tpkt(b"\x02\x90\x80"): S7Finding.UNKNOWN_COTP_TYPE,
        b.tpkt(b"\x09\xf0\x80"): S7Finding.BAD_COTP_LENGTH,
        b.dt(b"\x32\x01\x00\x00"): S7Finding.TRUNCATED_HEADER,
        b.dt(b"\x33\x01"): S7Finding.UNKNOWN_PROTOCOL_ID,
        b.dt(b"\x32\x05" + b"\x00" * 8): S7Finding.UNKNOWN_ROSCTR,
        b.dt(b.s7(1, 1, b"\x77")): S7Finding.UNKNOWN_FUNCTION,
        b.dt(b.s7(1, 1, b"\xf0\x00\x00")): S7Finding.BAD_PARAMETER,
        b.dt(b.s7(1, 1, b"\x04\x02" + b.any_item(2, 1, "M"))): S7Finding.ITEM_COUNT_MISMATCH,
        b.dt(b.s7(1, 1, b"\x04\x01\x11\x0a" + b"\x10" * 10)): S7Finding.BAD_ITEM,
        b.dt(b.setup(1, 1, 1, 480) + b"\x00"): S7Finding.LENGTH_MISMATCH,
        b.dt(b.s7(7, 1, b"\x00\x01\x13\x04\x11\x44\x01\x00")): S7Finding.BAD_USERDATA_HEADER,
        b.dt(b"\x72\x03"): S7Finding.TRUNCATED_S7COMM_PLUS,
    }
    for frame, finding in cases.items():
        message = one(frame)
        assert message.finding == finding, (frame.hex(), message.finding)
        assert message.status == ParseStatus.MALFORMED or finding == S7Finding.UNKNOWN_PROTOCOL_ID


def test_a_bad_tpkt_header_ends_the_framing() -> None:
    stream = b.dt(b.setup(1, 1, 1, 480)) + b"\xff" * 9 + b.dt(b.plc_stop())
    messages, rest = decode_payload(stream, False)
    assert [m.finding for m in messages] == [S7Finding.OK, S7Finding.BAD_TPKT_HEADER] and rest == b""
    assert messages[1].summary().operation == Operation.MALFORMED
    both([stream])


def test_a_pdu_cut_short_is_beyond_data() -> None:
    frame = b.dt(b.plc_stop())
    assert decode_pdu(frame[:-2], False).finding == S7Finding.TPKT_BEYOND_DATA
    assert decode_pdu(b.dt(b"", eot=False), False).finding == S7Finding.FRAGMENTS_NOT_ENDED


def test_a_data_tpdu_without_user_data() -> None:
    message = one(b.dt(b""))
    assert (message.summary().function_code, message.summary().function) == (0x20F0, "cotp_data")


def test_fragments_followed_by_a_connection_tpdu() -> None:
    message = one(b.dt(b"\x32", eot=False) + b.connect(0xE0, b"\x01\x00", b"\x01\x02"))
    assert message.finding == S7Finding.FRAGMENTS_NOT_ENDED and message.fragments == 2


def test_too_many_fragments_end_a_pdu() -> None:
    stream = b.dt(b"\x00", eot=False) * 70
    messages, rest = decode_payload(stream, False)
    assert len(messages) == 1 and messages[0].fragments == 64
    assert messages[0].finding == S7Finding.FRAGMENTS_NOT_ENDED and len(rest) == 6 * 8
    both([stream])


def test_a_password_is_not_kept() -> None:
    message = one(b.dt(b.userdata(4, 5, 1, b.ud_data(0xFF, 0x09, bytes.fromhex("213a1b1d6e681b1d")))))
    assert message.summary().function == "plc_password" and message.data == b""


@pytest.mark.parametrize(
    ("built", "captured"),
    [
        (
            b.dt(b.szl_request(0x0132, 0x0004, ref=0x0300)),
            "0300002102f080320700000300000800080001120411440100ff09000401320004",
        ),
        (
            b.dt(b.userdata(4, 7, 1, b.ud_data(0x0A, 0, b""), ref=0x0700)),
            "0300001d02f0803207000007000008000400011204114701000a000000",
        ),
        (
            b.dt(b.userdata(4, 5, 1, b.ud_data(0xFF, 0x09, bytes.fromhex("213a1b1d6e681b1d")), ref=0x0600)),
            "0300002502f0803207000006000008000c0001120411450100ff090008213a1b1d6e681b1d",
        ),
    ],
)
def test_the_builders_write_what_real_devices_send(built: bytes, captured: str) -> None:
    """The test encoder's frames are byte for byte those of public captures (STEP 7 reading the
    SZL and the clock, entering a password; STEP 7 counts PDU references byte-swapped)."""
    assert built.hex() == captured


def test_dbread_items() -> None:
    message = one(b.dt(b.read_var_job([b.dbread_item([(1, 68, 358), (10, 68, 394)])])))
    summary = message.summary()
    assert summary.targets == ("P#DB68.DBX358.0 BYTE 1", "P#DB68.DBX394.0 BYTE 10")
    assert (summary.quantity, summary.address, message.item_count, summary.status) == (
        2,
        358,
        1,
        ParseStatus.OK,
    )


def test_an_item_of_another_syntax_is_partial() -> None:
    message = one(b.dt(b.read_var_job([b"\x12\x06\x82\x00\x01\x02\x03\x04"])))
    assert message.summary().targets == ("syntax 0x82",) and message.status == ParseStatus.PARTIAL


def test_a_read_var_refused_as_a_whole_has_no_items() -> None:
    message = one(b.dt(b.s7(3, 1, b"\x04\x02", error=(0x85, 0x00))), from_server=True)
    assert message.finding == S7Finding.OK and message.summary().result == 0x8500


def test_in_a_download_the_programming_device_answers() -> None:
    message = one(b.dt(b.s7(3, 5, b"\x1b\x00", b"\x00\x02\x00\xfb\x70\x70")), from_server=False)
    summary = message.summary()
    assert (summary.function, summary.operation, summary.result, summary.is_response) == (
        "download_block",
        Operation.PROGRAM,
        0,
        False,
    )
    assert message.data == b"\x70\x70"


def test_a_clock_set_targets_the_time() -> None:
    clock = bytes([0, 0x20, 0x26, 0x11, 0x26, 0x16, 0x05, 0x09, 0x12, 0x34])
    message = one(b.dt(b.userdata(4, 7, 2, b.ud_data(0xFF, 0x09, clock))))
    assert message.clock == "2026-11-26T16:05:09.123" and message.summary().targets == (message.clock,)
    answer = one(b.dt(b.userdata(8, 7, 1, b.ud_data(0xFF, 0x09, clock), seq=1, follow=(0, 0, 0))), True)
    assert answer.summary().targets == ("2026-11-26T16:05:09.123",) and answer.summary().result == 0
    garbled = one(b.dt(b.userdata(4, 7, 2, b.ud_data(0xFF, 0x09, b"\xff" * 10))))
    assert garbled.clock == "" and garbled.summary().targets == ()


def test_a_captured_clock_answer() -> None:
    """STEP 7 reading an S7-300's clock (s7comm_reading_setting_plc_time.pcap, frame 26)."""
    frame = bytes.fromhex(
        "0300002b02f080320700000700000c000e000112081287010100000000ff09000a00191408201159439124"
    )
    message = one(frame, from_server=True)
    assert message.summary().targets == ("2014-08-20T11:59:43.912",)


def test_a_block_number_with_a_non_ascii_digit() -> None:
    """Found by fuzzing: "²" is a digit to `str.isdigit` but not to `int`."""
    message = one(b.dt(b.block_job(0x1D, "_0A000\xb21P".encode("latin-1"))))
    assert message.finding == S7Finding.OK and message.summary().targets == ()
    assert message.filename == "_0A000\xb21P"


def test_the_commonest_pdus_take_the_vectorised_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read var jobs (S7ANY items), read var and write var ack_data never reach the per-row
    decoder; the rest do."""
    fast = importlib.import_module("plantwarden.protocols.s7comm.extract")  # the module, not the function
    seen: list[int] = []
    original = fast._decode_rest

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(fast, "_decode_rest", counting)
    lane = [
        b.dt(b.read_var_job([b.any_item(1, 1, "DB", db=1), b.any_item(4, 2, "M", byte=8)])),
        b.dt(b.read_var_ack([b.data_item(0xFF, 0x03, b"\x01", last=False), b.data_item(0x05, 0, b"")])),
        b.dt(b.write_var_ack([0xFF, 0x0A])),
    ]
    columns, _ = both([b"".join(lane)])
    assert seen[-1] == 0 and len(columns) == 3
    assert [s.result for s in columns.summary.summaries()] == [-1, 0x05, 0x0A]
    columns, _ = both([b"".join([*lane, b.dt(b.plc_stop())])])
    assert seen[-1] == 1 and columns.parameter_function.tolist() == [4, 4, 5, 0x29]


def test_userdata_takes_the_vectorised_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Well-formed userdata (SZL reads and their fragments, clock, cyclic pushes, errors) never
    reaches the per-row decoder; a userdata parameter with a broken head does."""
    fast = importlib.import_module("plantwarden.protocols.s7comm.extract")  # the module, not the function
    seen: list[int] = []
    original = fast._decode_rest

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(fast, "_decode_rest", counting)
    clock = bytes([0, 0x20, 0x26, 0x11, 0x26, 0x16, 0x05, 0x09, 0x12, 0x34])
    lane = [
        b.dt(b.szl_request(0x0011, 1)),
        b.dt(b.szl_response(0x0424, 0, b"\x00" * 20, 20)),
        b.dt(b.userdata(8, 4, 1, b.ud_data(0xFF, 0x09, b"\x00" * 6), seq=2, follow=(5, 0, 0))),
        b.dt(b.userdata(4, 7, 1, b.ud_data(0x0A, 0, b""))),
        b.dt(b.userdata(8, 7, 1, b.ud_data(0xFF, 0x09, clock), seq=1, follow=(0, 0, 0))),
        b.dt(b.userdata(4, 7, 2, b.ud_data(0xFF, 0x09, b"\xff" * 10))),
        b.dt(b.userdata(0, 2, 7, b.ud_data(0xFF, 0x09, b"\x01\x02\x03"), follow=(0, 0, 0))),
        b.dt(b.userdata(8, 1, 14, b.ud_data(0x0A, 0, b""), follow=(0, 0, 0x8104))),
        b.dt(b.userdata(4, 3, 1, b"")),
        b.dt(b.userdata(4, 5, 1, b.ud_data(0xFF, 0x09, b"secret!!"))),
    ]
    columns, _ = both([b"".join(lane)], [True])
    summaries = columns.summary.summaries()
    assert seen[-1] == 0 and len(columns) == len(lane)
    assert [s.function for s in summaries] == [
        "read_szl",
        "read_szl",
        "read_szl",
        "clock_read",
        "clock_read",
        "clock_set",
        "cyclic_ras_changedriven",
        "read_diag_data",
        "list_blocks",
        "plc_password",
    ]
    assert [s.quantity for s in summaries] == [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    assert [s.result for s in summaries] == [-1, 0, 0, -1, 0, -1, -1, 0x8104, -1, -1]
    assert columns.szl_id.tolist()[:3] == [0x0011, 0x0424, -1]
    assert summaries[0].operation == Operation.IDENTIFY and summaries[2].status == ParseStatus.PARTIAL
    broken = bytearray(b.dt(b.szl_request(0x0011, 1)))
    broken[7 + 10 + 2] = 0x13  # the parameter head is 00 01 12
    columns, _ = both([b"".join(lane) + bytes(broken)])
    assert seen[-1] == 1 and columns.summary.finding.tolist()[-1] == S7Finding.BAD_USERDATA_HEADER


def test_requests_are_kept_by_their_bytes_answers_are_not() -> None:
    """`decode_pdu` gives a request it has decoded before (same bytes, side and offset) from its
    cache, which stays bounded; an answer is decoded each time."""
    exact = importlib.import_module("plantwarden.protocols.s7comm.exact")
    request, answer = b.dt(b.szl_request(0x0011, 1)), b.dt(b.write_var_ack([0xFF]))
    assert decode_pdu(request, False) is decode_pdu(request, False)
    assert decode_pdu(request, False, offset=4) is not decode_pdu(request, False)
    assert decode_pdu(request, False, offset=4) == decode_pdu(request, False, offset=4)
    assert decode_pdu(answer, True) is not decode_pdu(answer, True)
    for ref in range(exact.REQUEST_CACHE_LIMIT + 1):
        decode_pdu(b.dt(b.szl_request(0x0011, 1, ref=ref)), False)
    assert 0 < len(exact._requests) <= exact.REQUEST_CACHE_LIMIT


def test_a_later_s7comm_plus_fragment_has_no_opcode() -> None:
    """S7-1200-Uploading-OB1-TIAV12.pcap frame 128: the second TSDU of a long create object."""
    message = one(b.dt(bytes.fromhex("720203f100823f98000002787d66052b13ad96490ec2300c45ef927d55")))
    assert (message.plus_version, message.plus_opcode, message.plus_function) == (2, -1, -1)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.status) == (
        0x72000000,
        "s7comm_plus_fragment",
        ParseStatus.PARTIAL,
    )
