"""Malformed, unknown and user-defined PDUs: each gives its finding, on both paths alike."""

from __future__ import annotations

import pytest

from plantwarden.protocols.modbus import ModbusFinding, Operation, decode

from .support import adu, both_paths

F = ModbusFinding
CASES: list[tuple[str, bool, F]] = [
    ("03006b", False, F.PDU_TOO_SHORT),
    ("03006b0000", False, F.QUANTITY_OUT_OF_RANGE),
    ("03006b007e", False, F.QUANTITY_OUT_OF_RANGE),
    ("01000007d0", False, F.OK),
    ("01000007d1", False, F.QUANTITY_OUT_OF_RANGE),
    ("03006b000100", False, F.TRAILING_BYTES),
    ("030300", True, F.BAD_BYTE_COUNT),
    ("0304002b", True, F.BAD_BYTE_COUNT),
    ("0302002b00", True, F.TRAILING_BYTES),
    ("0100", True, F.BAD_BYTE_COUNT),
    ("0500ac1234", False, F.BAD_COIL_VALUE),
    ("0500acff00", True, F.OK),
    ("0f001300090201", False, F.BAD_BYTE_COUNT),
    ("0f0013000902cd01", False, F.OK),
    ("0f0013000702cd01", False, F.BAD_BYTE_COUNT),
    ("1000010002040001", False, F.BAD_BYTE_COUNT),
    ("100001000003", True, F.QUANTITY_OUT_OF_RANGE),
    ("8300", True, F.BAD_EXCEPTION_CODE),
    ("830c", True, F.BAD_EXCEPTION_CODE),
    ("83", True, F.PDU_TOO_SHORT),
    ("830201", True, F.TRAILING_BYTES),
    ("8302", False, F.EXCEPTION_IN_REQUEST),
    ("080005", False, F.UNKNOWN_SUB_FUNCTION),
    ("08000400000000", False, F.TRAILING_BYTES),
    ("0800", False, F.PDU_TOO_SHORT),
    ("2b0e050000", False, F.BAD_READ_CODE),
    ("2b0e01", False, F.PDU_TOO_SHORT),
    ("2b0d0102", False, F.OK),
    ("2b0f", False, F.UNKNOWN_SUB_FUNCTION),
    ("2b0e0181000003000141", True, F.BAD_OBJECT_LIST),
    ("2b0e01810000010001414242", True, F.BAD_OBJECT_LIST),
    ("2b0e0181000001000141", True, F.OK),
    ("1407060004000100", False, F.BAD_BYTE_COUNT),
    ("140705000400010002", False, F.BAD_REFERENCE_TYPE),
    ("180008000201b81284", True, F.BAD_BYTE_COUNT),
    ("18004400200000", True, F.QUANTITY_OUT_OF_RANGE),
    ("0701", False, F.TRAILING_BYTES),
    ("07", True, F.PDU_TOO_SHORT),
    ("0c05000000000000", True, F.BAD_BYTE_COUNT),
    ("110100", True, F.OK),
    ("1100", True, F.BAD_BYTE_COUNT),
    ("16000100f2", False, F.PDU_TOO_SHORT),
    ("1700030006000000", False, F.PDU_TOO_SHORT),
    ("170003000600000001020000", False, F.OK),
    ("170003000600000001040001", False, F.BAD_BYTE_COUNT),
    ("170003007e0000000100", False, F.QUANTITY_OUT_OF_RANGE),
    ("00", False, F.UNKNOWN_FUNCTION),
    ("09aabb", False, F.UNKNOWN_FUNCTION),
    ("5a0002", False, F.UNKNOWN_FUNCTION),
    ("41aabb", False, F.OK),
    ("6e", True, F.OK),
    ("49", False, F.UNKNOWN_FUNCTION),
]


@pytest.mark.parametrize(("pdu", "from_server", "finding"), CASES, ids=[f"{c[0]}-{int(c[1])}" for c in CASES])
def test_each_malformed_pdu_gives_its_finding(pdu: str, from_server: bool, finding: ModbusFinding) -> None:
    assert decode(adu(3, 1, bytes.fromhex(pdu)), from_server).finding == finding


def test_both_paths_agree_on_every_case_alone_and_together() -> None:
    frames = [adu(number, 1, bytes.fromhex(pdu)) for number, (pdu, _, _) in enumerate(CASES)]
    servers = [from_server for _, from_server, _ in CASES]
    result = both_paths(frames, servers)
    assert result.columns.finding.tolist() == [finding for _, _, finding in CASES]
    both_paths([b"".join(frames)] * 2, [False, True])


def test_unknown_and_user_defined_functions_keep_their_code_and_operation() -> None:
    umas = decode(adu(1, 0, bytes.fromhex("5a0002")), False)
    user = decode(adu(1, 0, bytes.fromhex("41aabb")), False)
    unknown = decode(adu(1, 0, bytes.fromhex("49")), False)
    assert (umas.function_code, umas.operation) == (90, Operation.PROGRAM)
    assert (user.function_code, user.operation, user.data) == (65, Operation.OTHER, b"\xaa\xbb")
    assert (unknown.function_code, unknown.operation) == (73, Operation.OTHER)


def test_exception_responses_carry_the_function_and_code() -> None:
    message = decode(adu(9, 2, bytes.fromhex("9004")), True)
    assert (message.function_code, message.is_exception, message.exception_code) == (16, True, 4)
    assert message.operation == Operation.WRITE and message.finding == F.OK
