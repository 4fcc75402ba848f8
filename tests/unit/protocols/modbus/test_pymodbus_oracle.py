"""Every public function's requests and responses as pymodbus 3.16.1 encodes them (an independent
implementation, MBAP header included): the fields decoded equal the values given to pymodbus, and
the column extractor gives the exact decoder's rows."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest

from plantwarden.protocols.modbus import ModbusFinding, Operation, decode

from .support import both_paths

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pymodbus.framer.socket import FramerSocket
    from pymodbus.pdu import DecodePDU, ExceptionResponse, FileRecord, ModbusPDU
    from pymodbus.pdu import bit_message as bit
    from pymodbus.pdu import diag_message as diag
    from pymodbus.pdu import file_message as files
    from pymodbus.pdu import mei_message as mei
    from pymodbus.pdu import other_message as other
    from pymodbus.pdu import register_message as reg

REGISTERS = [0x1234, 0x0000, 0xFFFF, 0x00A5]
BITS = [True, False, True, True, False, False, False, True, True]
IDENTITY = {0: b"Plantwarden", 1: b"PW-PLC", 2: b"V1.2"}


class UserDefined(ModbusPDU):
    """A user-defined function (65) carrying two bytes, encoded by pymodbus' framer."""

    function_code = 65

    def encode(self) -> bytes:
        return b"\x01\x02"


# (pymodbus PDU, sent by the server, fields the decoder must give, side values)
CASES: list[tuple[Any, bool, dict[str, int], dict[str, Any]]] = [
    (bit.ReadCoilsRequest(address=100, count=9), False, {"address": 100, "quantity": 9}, {}),
    (bit.ReadDiscreteInputsRequest(address=7, count=2000), False, {"address": 7, "quantity": 2000}, {}),
    (bit.ReadCoilsResponse(bits=BITS), True, {"byte_count": 2, "value": 1}, {"bits": BITS}),
    (bit.ReadDiscreteInputsResponse(bits=[False]), True, {"byte_count": 1, "value": 0}, {}),
    (reg.ReadHoldingRegistersRequest(address=40, count=125), False, {"address": 40, "quantity": 125}, {}),
    (reg.ReadInputRegistersRequest(address=0, count=1), False, {"address": 0, "quantity": 1}, {}),
    (
        reg.ReadHoldingRegistersResponse(registers=REGISTERS),
        True,
        {"byte_count": 8, "quantity": 4, "value": 0x1234},
        {"values": REGISTERS},
    ),
    (reg.ReadInputRegistersResponse(registers=[7]), True, {"byte_count": 2, "quantity": 1, "value": 7}, {}),
    (
        bit.WriteSingleCoilRequest(address=9, bits=[True]),
        False,
        {"address": 9, "value": 1, "quantity": 1},
        {},
    ),
    (bit.WriteSingleCoilResponse(address=9, bits=[False]), True, {"address": 9, "value": 0}, {}),
    (
        reg.WriteSingleRegisterRequest(address=3, registers=[0xBEEF]),
        False,
        {"address": 3, "value": 0xBEEF},
        {},
    ),
    (
        reg.WriteSingleRegisterResponse(address=3, registers=[0xBEEF]),
        True,
        {"address": 3, "value": 0xBEEF},
        {},
    ),
    (other.ReadExceptionStatusRequest(), False, {}, {}),
    (other.ReadExceptionStatusResponse(status=0x5A), True, {"value": 0x5A}, {}),
    (diag.ReturnQueryDataRequest(message=0xA537), False, {"sub_function": 0, "value": 0xA537}, {}),
    (
        diag.ReturnQueryDataResponse(message=b"\x12\x34\x56\x78"),
        True,
        {"sub_function": 0, "value": 0x1234},
        {},
    ),
    (
        diag.RestartCommunicationsOptionRequest(message=0xFF00),
        False,
        {"sub_function": 1, "value": 0xFF00},
        {},
    ),
    (diag.ReturnDiagnosticRegisterResponse(message=0x0102), True, {"sub_function": 2, "value": 0x0102}, {}),
    (diag.ChangeAsciiInputDelimiterRequest(message=0x0A00), False, {"sub_function": 3, "value": 0x0A00}, {}),
    (diag.ForceListenOnlyModeRequest(message=0), False, {"sub_function": 4, "value": 0}, {}),
    (diag.ClearCountersRequest(message=0), False, {"sub_function": 10, "value": 0}, {}),
    (diag.ReturnBusMessageCountResponse(message=321), True, {"sub_function": 11, "value": 321}, {}),
    (diag.ReturnBusCommunicationErrorCountRequest(message=0), False, {"sub_function": 12}, {}),
    (diag.ReturnBusExceptionErrorCountResponse(message=5), True, {"sub_function": 13, "value": 5}, {}),
    (diag.ReturnDeviceMessageCountRequest(message=0), False, {"sub_function": 14}, {}),
    (diag.ReturnDeviceNoResponseCountResponse(message=2), True, {"sub_function": 15, "value": 2}, {}),
    (diag.ReturnDeviceNAKCountRequest(message=0), False, {"sub_function": 16}, {}),
    (diag.ReturnDeviceBusyCountResponse(message=1), True, {"sub_function": 17, "value": 1}, {}),
    (diag.ReturnDeviceBusCharacterOverrunCountRequest(message=0), False, {"sub_function": 18}, {}),
    (diag.ClearOverrunCountRequest(message=0), False, {"sub_function": 20, "value": 0}, {}),
    (diag.GetClearModbusPlusRequest(message=3), False, {"sub_function": 21, "value": 3}, {}),
    (other.GetCommEventCounterRequest(), False, {}, {}),
    (other.GetCommEventCounterResponse(count=0x0102), True, {"value": 0x0102}, {}),
    (other.GetCommEventLogRequest(), False, {}, {}),
    (
        other.GetCommEventLogResponse(message_count=9, event_count=4, events=[0x20, 0x00, 0x81]),
        True,
        {"byte_count": 9, "value": 4, "quantity": 3},
        {"values": [0, 4, 9, 0x20, 0x00, 0x81]},
    ),
    (
        bit.WriteMultipleCoilsRequest(address=20, bits=BITS),
        False,
        {"address": 20, "quantity": 9, "byte_count": 2, "value": 1},
        {"bits": BITS},
    ),
    (bit.WriteMultipleCoilsResponse(address=20, count=9), True, {"address": 20, "quantity": 9}, {}),
    (
        reg.WriteMultipleRegistersRequest(address=500, registers=REGISTERS),
        False,
        {"address": 500, "quantity": 4, "byte_count": 8, "value": 0x1234},
        {"values": REGISTERS},
    ),
    (reg.WriteMultipleRegistersResponse(address=500, count=4), True, {"address": 500, "quantity": 4}, {}),
    (other.ReportDeviceIdRequest(), False, {}, {}),
    (other.ReportDeviceIdResponse(identifier=b"PLC-7"), True, {"byte_count": 6}, {"data": b"PLC-7\xff"}),
    (
        files.ReadFileRecordRequest(
            records=[FileRecord(4, 1, record_length=4), FileRecord(3, 9, record_length=2)]
        ),
        False,
        {"byte_count": 14, "quantity": 2, "file_number": 4, "address": 1},
        {"files": [(4, 1, 2), (3, 9, 1)]},
    ),
    (
        files.ReadFileRecordResponse(
            records=[FileRecord(record_data=b"\x0d\xfe\x00\x20"), FileRecord(record_data=b"\x33\xcd")]
        ),
        True,
        {"byte_count": 10, "quantity": 2, "value": 0x0DFE},
        {},
    ),
    (
        files.WriteFileRecordRequest(records=[FileRecord(4, 7, record_data=b"\x06\xaf\x04\xbe\x10\x0d")]),
        False,
        {"byte_count": 13, "quantity": 1, "file_number": 4, "address": 7, "value": 0x06AF},
        {"files": [(4, 7, 3)]},
    ),
    (
        files.WriteFileRecordResponse(records=[FileRecord(4, 7, record_data=b"\x06\xaf\x04\xbe\x10\x0d")]),
        True,
        {"byte_count": 13, "quantity": 1, "file_number": 4, "address": 7, "value": 0x06AF},
        {},
    ),
    (
        reg.MaskWriteRegisterRequest(address=4, and_mask=0x00F2, or_mask=0x0025),
        False,
        {"address": 4, "value": 0x00F2},
        {"values": [0x00F2, 0x0025]},
    ),
    (
        reg.MaskWriteRegisterResponse(address=4, and_mask=0x00F2, or_mask=0x0025),
        True,
        {"address": 4, "value": 0x00F2},
        {"values": [0x00F2, 0x0025]},
    ),
    (
        reg.ReadWriteMultipleRegistersRequest(
            read_address=3, read_count=6, write_address=14, write_registers=[0x00FF, 0x0102]
        ),
        False,
        {
            "address": 3,
            "quantity": 6,
            "write_address": 14,
            "write_quantity": 2,
            "byte_count": 4,
            "value": 0x00FF,
        },
        {"values": [0x00FF, 0x0102]},
    ),
    (
        reg.ReadWriteMultipleRegistersResponse(registers=REGISTERS),
        True,
        {"byte_count": 8, "quantity": 4, "value": 0x1234},
        {},
    ),
    (files.ReadFifoQueueRequest(address=0x04DE), False, {"address": 0x04DE}, {}),
    (
        files.ReadFifoQueueResponse(values=[0x01B8, 0x1284]),
        True,
        {"byte_count": 6, "quantity": 2, "value": 0x01B8},
        {"values": [0x01B8, 0x1284]},
    ),
    (
        mei.ReadDeviceInformationRequest(read_code=1, object_id=0),
        False,
        {"sub_function": 14, "read_code": 1, "object_id": 0},
        {},
    ),
    (
        mei.ReadDeviceInformationRequest(read_code=4, object_id=0x81),
        False,
        {"sub_function": 14, "read_code": 4, "object_id": 0x81},
        {},
    ),
    (
        mei.ReadDeviceInformationResponse(read_code=1, information=IDENTITY),
        True,
        {
            "sub_function": 14,
            "read_code": 1,
            "conformity_level": 0x83,
            "more_follows": 0,
            "object_id": 0,
            "quantity": 3,
        },
        {"objects": IDENTITY},
    ),
    (ExceptionResponse(3, 2), True, {"exception_code": 2, "is_exception": 1}, {}),
    (ExceptionResponse(43, 11), True, {"exception_code": 11, "is_exception": 1}, {}),
    (ExceptionResponse(16, 4), True, {"exception_code": 4, "is_exception": 1}, {}),
    (UserDefined(), False, {}, {"data": b"\x01\x02"}),
    (UserDefined(), True, {}, {"data": b"\x01\x02"}),
]


def frame(pdu: Any, transaction_id: int, unit_id: int) -> bytes:
    """The ADU pymodbus sends for `pdu` (its socket framer writes the MBAP header).

    A copy is encoded: pymodbus' 43/14 response counts its objects again at each `encode()`.
    """
    pdu = copy.deepcopy(pdu)
    pdu.transaction_id, pdu.dev_id = transaction_id, unit_id
    return FramerSocket(DecodePDU(False)).buildFrame(pdu)


def _name(case: tuple[Any, bool, dict[str, int], dict[str, Any]]) -> str:
    return f"{type(case[0]).__name__}-{'response' if case[1] else 'request'}"


@pytest.mark.parametrize("case", CASES, ids=[_name(case) for case in CASES])
def test_pymodbus_frame_decodes_to_the_values_given(
    case: tuple[Any, bool, dict[str, int], dict[str, Any]],
) -> None:
    pdu, from_server, expected, side = case
    adu = frame(pdu, 0x1A2B, 17)
    message = decode(adu, from_server)
    assert message.finding == ModbusFinding.OK
    assert (message.transaction_id, message.protocol_id, message.unit_id) == (0x1A2B, 0, 17)
    assert message.length == len(adu) - 6 and message.function_code == pdu.function_code & 0x7F
    assert {name: int(getattr(message, name)) for name in expected} == expected
    _check_side(message, side)
    assert message.operation != Operation.NONE


def _check_side(message: Any, side: dict[str, Any]) -> None:
    if "bits" in side:
        assert list(message.values[: len(side["bits"])]) == [int(bit) for bit in side["bits"]]
    if "values" in side:
        assert list(message.values) == side["values"]
    if "data" in side:
        assert message.data == side["data"]
    if "objects" in side:
        assert dict(message.objects) == side["objects"]
    if "files" in side:
        assert [(r.file_number, r.record_number, r.record_length) for r in message.file_records] == side[
            "files"
        ]


def test_both_paths_agree_on_every_pymodbus_frame_alone_and_packed_together() -> None:
    frames = [
        (frame(pdu, number, 1 + number % 247), server) for number, (pdu, server, _, _) in enumerate(CASES)
    ]
    alone = both_paths([adu for adu, _ in frames], [server for _, server in frames])
    assert len(alone.columns) == len(CASES) and set(alone.columns.finding.tolist()) == {ModbusFinding.OK}
    requests = b"".join(adu for adu, server in frames if not server)
    responses = b"".join(adu for adu, server in frames if server)
    packed = both_paths([requests, responses], [False, True])
    assert len(packed.columns) == len(CASES) and packed.leftover.tolist() == [0, 0]


def test_operations_follow_the_function() -> None:
    operations = {(_name(case)): decode(frame(case[0], 1, 1), case[1]).operation for case in CASES}
    assert operations["ReadHoldingRegistersRequest-request"] == Operation.READ
    assert operations["WriteMultipleRegistersRequest-request"] == Operation.WRITE
    assert operations["ForceListenOnlyModeRequest-request"] == Operation.CONTROL
    assert operations["RestartCommunicationsOptionRequest-request"] == Operation.CONTROL
    assert operations["ReturnBusMessageCountResponse-response"] == Operation.DIAGNOSTIC
    assert operations["ReadDeviceInformationRequest-request"] == Operation.IDENTIFY
    assert operations["UserDefined-request"] == Operation.OTHER
