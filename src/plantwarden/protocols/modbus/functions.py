"""The Modbus function codes and their tables (Modbus Application Protocol Specification V1.1b3).

Both decoders read these tables: the exact decoder through the dicts and sets, the column
extractor through the numpy lookup arrays built from them.
"""

from __future__ import annotations

import numpy as np

from plantwarden.protocols.modbus.findings import Operation

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_COIL = 5
WRITE_SINGLE_REGISTER = 6
READ_EXCEPTION_STATUS = 7
DIAGNOSTICS = 8
GET_COMM_EVENT_COUNTER = 11
GET_COMM_EVENT_LOG = 12
WRITE_MULTIPLE_COILS = 15
WRITE_MULTIPLE_REGISTERS = 16
REPORT_SERVER_ID = 17
READ_FILE_RECORD = 20
WRITE_FILE_RECORD = 21
MASK_WRITE_REGISTER = 22
READ_WRITE_MULTIPLE_REGISTERS = 23
READ_FIFO_QUEUE = 24
ENCAPSULATED_INTERFACE = 43

CANOPEN_GENERAL_REFERENCE = 13
READ_DEVICE_IDENTIFICATION = 14
"""The MEI types of function 43."""

EXCEPTION_BIT = 0x80
FUNCTION_MASK = 0x7F
MAX_EXCEPTION_CODE = 11
FILE_REFERENCE_TYPE = 6
MIN_LENGTH, MAX_LENGTH = 2, 254
"""The legal MBAP length: unit id and function code at least, a 253-byte PDU at most."""

PUBLIC_FUNCTIONS = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43},
)
USER_DEFINED_FUNCTIONS = frozenset((*range(65, 73), *range(100, 111)))

MAX_QUANTITY = {
    READ_COILS: 2000,
    READ_DISCRETE_INPUTS: 2000,
    READ_HOLDING_REGISTERS: 125,
    READ_INPUT_REGISTERS: 125,
    WRITE_MULTIPLE_COILS: 1968,
    WRITE_MULTIPLE_REGISTERS: 123,
}
MAX_READ_WRITE_READ, MAX_READ_WRITE_WRITE = 125, 121
"""Read/write multiple registers (23): its read and write quantities."""
MAX_FIFO_COUNT = 31

DIAGNOSTIC_SUB_FUNCTIONS = frozenset((0, 1, 2, 3, 4, *range(10, 19), 20, 21))
"""Sub-functions of function 8 in the specification (21 is Modbus Plus statistics); 5-9, 19 and
22-65535 are reserved."""
FREE_DATA_SUB_FUNCTIONS = frozenset((0, 21))
"""Return Query Data and Modbus Plus statistics carry data of any length; the others one word."""
CONTROL_SUB_FUNCTIONS = frozenset((1, 3, 4, 10, 20))
"""Restart communications, change ASCII delimiter, force listen only, clear counters, clear
overrun: they change how the server runs, so they count as control, not diagnostics."""

PROGRAM_FUNCTIONS = frozenset((9, 13, 18, 40, 90, 125, 126))
"""Reserved codes of legacy programming protocols (Modicon 484/584/984/884, Concept, firmware
replacement, Schneider Unity/UMAS 90): unknown to the public specification, but programming."""

OPERATION_OF_FUNCTION: dict[int, Operation] = {
    **dict.fromkeys((1, 2, 3, 4, 20, 24), Operation.READ),
    **dict.fromkeys((5, 6, 15, 16, 21, 22, 23), Operation.WRITE),
    **dict.fromkeys((7, 8, 11, 12), Operation.DIAGNOSTIC),
    **dict.fromkeys((17, 43), Operation.IDENTIFY),
    **dict.fromkeys(PROGRAM_FUNCTIONS, Operation.PROGRAM),
}
"""The operation of each function code; any code not listed is `Operation.OTHER`. Function 8
is `CONTROL` for `CONTROL_SUB_FUNCTIONS`, function 43 `OTHER` for MEI types other than 14."""


def operation_of(function_code: int) -> Operation:
    """The operation of `function_code` (without the exception bit), before sub-functions."""
    return OPERATION_OF_FUNCTION.get(function_code, Operation.OTHER)


def _lookup(values: dict[int, int], default: int, dtype: type[np.generic]) -> np.ndarray:
    table = np.full(256, default, dtype=dtype)
    for code, value in values.items():
        table[code] = value
    return table


OPERATION_TABLE = _lookup({code: operation_of(code) for code in range(128)}, Operation.OTHER, np.uint8)
"""`operation_of` for every byte value masked to 7 bits (indexes 128-255 repeat nothing)."""
MAX_QUANTITY_TABLE = _lookup(dict(MAX_QUANTITY), 0, np.int32)
