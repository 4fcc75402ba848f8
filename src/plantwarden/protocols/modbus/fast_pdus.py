"""The column extractor's PDU decoder: the common functions' fields from each ADU's 16 bytes.

It decodes, all rows at once, the rows whose layout it can prove well-formed: reads 1-4, writes
5, 6, 15, 16, diagnostics 8, exceptions, 43/13 and 43/14, user-defined codes, and unsound MBAP
headers. Every other row (rare functions, any finding but a bad header) is left for the exact
decoder: the values set here are exactly those `exact.decode` gives the rows it marks done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.columns import ModbusColumns
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.walk import WINDOW

Ints = npt.NDArray[np.int32]
Mask = npt.NDArray[np.bool_]
SUB_LIMIT = 32
"""Diagnostics sub-functions at or above this are all reserved (one table entry stands for them)."""


def _table(members: frozenset[int], size: int) -> Mask:
    table = np.zeros(size, dtype=np.bool_)
    table[list(members)] = True
    return table


KNOWN_SUB = _table(fc.DIAGNOSTIC_SUB_FUNCTIONS, SUB_LIMIT)
FREE_SUB = _table(fc.FREE_DATA_SUB_FUNCTIONS, SUB_LIMIT)
CONTROL_SUB = _table(fc.CONTROL_SUB_FUNCTIONS, SUB_LIMIT)


class Fields:
    """The rows' fixed-position bytes and words as contiguous columns, named by ADU byte offset.

    Each is read from the windows once (a read of a column of the windows is strided, several
    times slower than the arithmetic on it); those every row's decoding needs at once, the
    others (`b9`, `b12`, `byte_at`, `word_at`) when asked for. `code` is the function code byte
    as in the ADU (uint8).
    """

    def __init__(self, rows: npt.NDArray[np.bytes_], from_server: Mask, sound: Mask | None = None) -> None:
        """Read every row's window (`rows`: 16-byte items); `sound` if known (else read)."""
        rows = np.ascontiguousarray(rows)
        octets = rows.view(np.uint8).reshape(-1, WINDOW)
        words = rows.view(">u2").reshape(-1, WINDOW // 2)
        self.rows, self.from_server = rows, from_server
        self.words, self.octets = words, octets
        self.code = octets[:, 7].copy()
        self.protocol_id = words[:, 1].astype(np.int32)
        self.length = words[:, 2].astype(np.int32)
        self.b8 = octets[:, 8].astype(np.int32)
        self.w8, self.w10 = words[:, 4].astype(np.int32), words[:, 5].astype(np.int32)
        if sound is None:
            sound = (self.protocol_id == 0) & (self.length >= fc.MIN_LENGTH) & (self.length <= fc.MAX_LENGTH)
        self.sound = sound
        self.response, self.request = from_server & sound, ~from_server & sound

    @property
    def data_length(self) -> Ints:
        """The PDU's bytes after the function code."""
        data_length: Ints = self.length - 2
        return data_length

    @property
    def b9(self) -> Ints:
        """The byte at ADU offset 9."""
        return self.byte_at(9)

    @property
    def b12(self) -> Ints:
        """The byte at ADU offset 12."""
        return self.byte_at(12)

    def take(self, rows: npt.NDArray[np.intp]) -> Fields:
        """The fields of rows `rows` only."""
        return Fields(self.rows[rows], self.from_server[rows], self.sound[rows])

    def word_at(self, at: int) -> Ints:
        """The big-endian word at ADU offset `at` (0-14)."""
        if not len(self.rows):
            return np.zeros(0, dtype=np.int32)
        column = np.ndarray((len(self.rows),), dtype=">u2", buffer=self.rows, offset=at, strides=(WINDOW,))
        return column.astype(np.int32)

    def byte_at(self, at: int) -> Ints:
        """The byte at ADU offset `at`."""
        return self.octets[:, at].astype(np.int32)


class _Target:
    """Where a family writes: `columns` at rows `rows` (the family's fields being those rows')."""

    def __init__(self, columns: ModbusColumns, rows: npt.NDArray[np.intp]) -> None:
        self.columns, self.rows = columns, rows

    def put(self, name: str, mask: Mask, values: npt.NDArray[Any] | int) -> None:
        """Set column `name` to `values` where `mask` holds."""
        column = getattr(self.columns, name)
        if isinstance(values, np.ndarray):
            column[self.rows[mask]] = values[mask]
        else:
            column[self.rows[mask]] = values


def decode_rows(
    f: Fields, labels: dict[str, npt.NDArray[Any]], objects_fit: Mask
) -> tuple[ModbusColumns, Mask]:
    """The rows' columns (`labels` given), and the rows decoded here (the others need
    `exact.decode`, which fills them).

    The header and the reads (nearly every row of a plant's traffic) are decoded over all rows,
    each column built once; the other families over the rows of their function codes only, few.
    """
    read = (f.code >= fc.READ_COILS) & (f.code <= fc.READ_INPUT_REGISTERS)
    others = np.flatnonzero(~read)
    read_columns, done = _reads(f, read)
    columns = ModbusColumns.filled(len(f.code), {**labels, **_header(f, others), **read_columns})
    done |= ~f.sound
    if others.size:
        kinds = KIND[f.code[others]]
        done[others[(kinds == USER_DEFINED_KIND) & f.sound[others]]] = True
        for kind, family in enumerate(FAMILIES, start=1):
            rows = others[kinds == kind]
            if rows.size:
                done[rows] |= family(_Target(columns, rows), f.take(rows), objects_fit[rows])
    return columns, done


def _header(f: Fields, others: npt.NDArray[np.intp]) -> dict[str, npt.NDArray[Any]]:
    """The MBAP header's columns, and the function code's (where the header is sound); `others`
    are the rows of functions other than reads (few: a table lookup over all rows costs more
    than filling in the reads' operation and looking up theirs)."""
    function_code = (f.code & fc.FUNCTION_MASK).astype(np.int16)
    operation = np.full(len(f.code), Operation.READ, dtype=np.uint8)
    operation[others] = OPERATION_BY_CODE[f.code[others]]
    is_exception = f.code >= fc.EXCEPTION_BIT
    finding = np.zeros(len(f.code), dtype=np.uint8)
    unsound = np.flatnonzero(~f.sound)  # few: patched
    if unsound.size:
        function_code[unsound], operation[unsound], is_exception[unsound] = -1, Operation.NONE, False
        finding[unsound] = np.where(
            f.protocol_id[unsound] != 0, ModbusFinding.BAD_PROTOCOL_ID, ModbusFinding.BAD_LENGTH
        )
    return {
        "transaction_id": f.words[:, 0].astype(np.int32),
        "protocol_id": f.protocol_id,
        "length": f.length,
        "unit_id": f.octets[:, 6].astype(np.int16),
        "function_code": function_code,
        "is_exception": is_exception,
        "operation": operation,
        "finding": finding,
    }


def _quantity_ok(f: Fields, quantity: Ints) -> Mask:
    return (quantity >= 1) & (quantity <= fc.MAX_QUANTITY_TABLE[f.code])


def _reads(f: Fields, read: Mask) -> tuple[dict[str, Ints], Mask]:
    """The read functions (1-4, the rows `read`): their columns over all rows (none where not a
    read), and the rows decoded."""
    bits = f.code <= fc.READ_DISCRETE_INPUTS  # of the reads: 1 and 2, the others 3 and 4
    quantity_ok = (f.w10 >= 1) & ((bits & (f.w10 <= BIT_READS_MAX)) | (~bits & (f.w10 <= REGISTER_READS_MAX)))
    request = f.request & read & (f.length == 6) & quantity_ok  # 4 data bytes
    counted = f.response & read & (f.length == 3 + f.b8) & (f.b8 >= 1) & (f.b8 <= 250)
    bit_reads = counted & bits
    register_reads = counted & ~bits & ((f.b8 & 1) == 0)
    responses = bit_reads | register_reads
    columns = {
        "address": _where(-1, (request, f.w8)),
        "quantity": _where(0, (request, f.w10), (register_reads, f.b8 >> 1)),
        "byte_count": _where(-1, (responses, f.b8)),
        "value": _where(-1, (register_reads, f.word_at(9)), (bit_reads, f.octets[:, 9] & 1)),
    }
    return columns, request | responses


def _where(none: int, *choices: tuple[Mask, npt.NDArray[np.integer[Any]]]) -> Ints:
    """Per row, the values of the choice whose mask holds (the masks are disjoint), else `none`,
    as int32: nested `np.where`s in arithmetic, several times faster."""
    result: Ints | None = None
    for mask, values in choices:
        chosen = values.astype(np.int32)  # in place from here: each new array costs page faults
        if none:
            chosen -= none
        chosen *= mask
        if result is None:
            result = chosen
        else:
            result += chosen
    assert result is not None
    if none:
        result += none
    return result


def _single_writes(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    four = f.sound & (f.data_length == 4)
    coil = four & (f.code == fc.WRITE_SINGLE_COIL) & ((f.w10 == 0) | (f.w10 == 0xFF00))
    register = four & (f.code == fc.WRITE_SINGLE_REGISTER)
    both: Mask = coil | register
    to.put("address", both, f.w8)
    to.put("quantity", both, 1)
    to.put("value", coil, (f.w10 != 0).astype(np.int32))
    to.put("value", register, f.w10)
    return both


def _multiple_writes(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    coils, registers = f.code == fc.WRITE_MULTIPLE_COILS, f.code == fc.WRITE_MULTIPLE_REGISTERS
    quantity_ok = (coils | registers) & _quantity_ok(f, f.w10)
    expected = np.where(coils, (f.w10 + 7) >> 3, 2 * f.w10)
    request = f.request & quantity_ok & (f.b12 == expected) & (f.data_length == 5 + f.b12)
    response = f.response & quantity_ok & (f.data_length == 4)
    to.put("address", request | response, f.w8)
    to.put("quantity", request | response, f.w10)
    to.put("byte_count", request, f.b12)
    to.put("value", request & coils, f.byte_at(13) & 1)
    to.put("value", request & registers, f.word_at(13))
    decoded: Mask = request | response
    return decoded


def _exceptions(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    valid: Mask = f.response & (f.code >= fc.EXCEPTION_BIT) & (f.data_length == 1)
    valid &= (f.b8 >= 1) & (f.b8 <= fc.MAX_EXCEPTION_CODE)
    to.put("exception_code", valid, f.b8)
    return valid


def _diagnostics(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    sub = np.minimum(f.w8, SUB_LIMIT - 1)
    valid: Mask = f.sound & (f.code == fc.DIAGNOSTICS) & (f.data_length >= 2) & KNOWN_SUB[sub]
    valid &= FREE_SUB[sub] | (f.data_length == 4)
    to.put("sub_function", valid, f.w8)
    to.put("value", valid & (f.data_length >= 4), f.w10)
    to.put("operation", valid & CONTROL_SUB[sub], Operation.CONTROL)
    return valid


def _identification(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    mei = f.sound & (f.code == fc.ENCAPSULATED_INTERFACE) & (f.data_length >= 1)
    canopen = mei & (f.b8 == fc.CANOPEN_GENERAL_REFERENCE)
    device_id = mei & (f.b8 == fc.READ_DEVICE_IDENTIFICATION) & (f.b9 >= 1) & (f.b9 <= 4)
    request = device_id & f.request & (f.data_length == 3)
    response = device_id & f.response & objects_fit
    to.put("sub_function", canopen | request | response, f.b8)
    to.put("operation", canopen, Operation.OTHER)
    to.put("read_code", request | response, f.b9)
    to.put("object_id", request, f.byte_at(10))
    for name, at in (("conformity_level", 10), ("more_follows", 11), ("object_id", 12), ("quantity", 13)):
        to.put(name, response, f.byte_at(at))
    decoded: Mask = canopen | request | response
    return decoded


Family = Callable[[_Target, Fields, Mask], Mask]
FAMILY_CODES: tuple[tuple[Family, frozenset[int]], ...] = (
    (_single_writes, frozenset({fc.WRITE_SINGLE_COIL, fc.WRITE_SINGLE_REGISTER})),
    (_multiple_writes, frozenset({fc.WRITE_MULTIPLE_COILS, fc.WRITE_MULTIPLE_REGISTERS})),
    (_exceptions, frozenset(range(fc.EXCEPTION_BIT, 256))),
    (_diagnostics, frozenset({fc.DIAGNOSTICS})),
    (_identification, frozenset({fc.ENCAPSULATED_INTERFACE})),
)
"""The families decoded over their own rows, and the function codes (with the exception bit,
as in the ADU) of those rows."""
FAMILIES = tuple(family for family, _ in FAMILY_CODES)
USER_DEFINED_KIND = len(FAMILIES) + 1
KIND = np.zeros(256, dtype=np.uint8)
"""Per function code (as in the ADU): 1 + its family's index, `USER_DEFINED_KIND`, or 0."""
for _kind, (_, _codes) in enumerate(FAMILY_CODES, start=1):
    KIND[list(_codes)] = _kind
KIND[list(fc.USER_DEFINED_FUNCTIONS)] = USER_DEFINED_KIND
BIT_READS_MAX, REGISTER_READS_MAX = (
    fc.MAX_QUANTITY[code] for code in (fc.READ_COILS, fc.READ_HOLDING_REGISTERS)
)
"""The reads' quantity limits: functions 1 and 2 share one, 3 and 4 the other."""
OPERATION_BY_CODE = fc.OPERATION_TABLE[np.arange(256) & fc.FUNCTION_MASK]
"""`functions.OPERATION_TABLE` indexed by the code as in the ADU (exception bit included)."""
