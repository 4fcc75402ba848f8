"""Framing: several ADUs per payload, a partial last ADU left over, unsound headers, lone ADUs."""

from __future__ import annotations

from plantwarden.protocols.modbus import ModbusFinding, decode, split_adus

from .support import adu, both_paths

READ = adu(1, 1, bytes.fromhex("03006b0003"))
ANSWER = adu(1, 1, bytes.fromhex("0306022b00000064"))
EXCEPTION = adu(2, 1, bytes.fromhex("8302"))


def test_several_adus_in_one_payload_come_out_in_order() -> None:
    payload = READ + adu(2, 9, bytes.fromhex("0400000010")) + adu(3, 4, bytes.fromhex("0100130013"))
    assert split_adus(payload) == ([(0, 12), (12, 12), (24, 12)], 0)
    result = both_paths([payload], [False])
    columns = result.columns
    assert columns.transaction_id.tolist() == [1, 2, 3] and columns.pdu_index.tolist() == [0, 1, 2]
    assert columns.offset.tolist() == [0, 12, 24] and columns.function_code.tolist() == [3, 4, 1]
    assert columns.address.tolist() == [0x6B, 0, 0x13] and columns.quantity.tolist() == [3, 16, 0x13]


def test_a_pdu_split_across_segments_is_left_over_and_not_a_finding() -> None:
    payloads = [ANSWER + ANSWER[:9], ANSWER[:5], ANSWER[:7], READ, b""]
    result = both_paths(payloads, [True, True, True, False, False])
    assert result.leftover.tolist() == [9, 5, 7, 0, 0]
    assert result.columns.byte_count.tolist() == [6, -1]
    assert result.columns.segment.tolist() == [0, 3]
    assert set(result.columns.finding.tolist()) == {ModbusFinding.OK}


def test_the_leftover_joined_to_the_next_segment_decodes_whole() -> None:
    first = ANSWER + EXCEPTION[:4]
    split = both_paths([first], [True])
    carried = first[len(first) - int(split.leftover[0]) :] + EXCEPTION[4:]
    rest = both_paths([carried], [True])
    assert rest.columns.exception_code.tolist() == [2] and rest.leftover.tolist() == [0]


def test_an_unsound_header_takes_the_rest_of_the_payload() -> None:
    bad_protocol = adu(5, 1, bytes.fromhex("03000a0001"), protocol_id=1)
    bad_length = adu(6, 1, bytes.fromhex("0300"), length=255)
    zero_length = adu(7, 1, b"", length=1)
    result = both_paths([READ + bad_protocol + READ, bad_length, zero_length + READ], [False] * 3)
    columns = result.columns
    assert columns.finding.tolist() == [
        ModbusFinding.OK,
        ModbusFinding.BAD_PROTOCOL_ID,
        ModbusFinding.BAD_LENGTH,
        ModbusFinding.BAD_LENGTH,
    ]
    assert columns.protocol_id.tolist() == [0, 1, 0, 0] and columns.function_code.tolist() == [3, -1, -1, -1]
    assert result.leftover.tolist() == [0, 0, 0]


def test_decode_of_a_lone_adu_reports_what_the_framer_leaves_over() -> None:
    assert decode(READ[:6], False).finding == ModbusFinding.TRUNCATED_HEADER
    assert decode(READ[:10], False).finding == ModbusFinding.LENGTH_BEYOND_DATA
    assert decode(READ + b"\x00", False).finding == ModbusFinding.TRAILING_BYTES
    assert decode(READ, False).finding == ModbusFinding.OK


def test_empty_and_tiny_payloads_give_no_rows() -> None:
    result = both_paths([b"", b"\x00", b"\x00" * 6], [False, True, False])
    assert len(result.columns) == 0 and result.leftover.tolist() == [0, 1, 6]
