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
USER_DEFINED = _table(fc.USER_DEFINED_FUNCTIONS, 256)


class Fields:
    """The rows' fixed-position bytes and words as int32 columns, named by ADU byte offset."""

    def __init__(self, rows: npt.NDArray[np.void], from_server: Mask, sound: Mask) -> None:
        """Read every row's window (`rows`: 16-byte items) once."""
        octets = rows.view(np.uint8).reshape(-1, WINDOW)
        words = rows.view(">u2").reshape(-1, WINDOW // 2)
        self.rows, self.from_server = rows, from_server
        self.words, self.octets = words, octets
        self.code = octets[:, 7].astype(np.int32)
        self.length = words[:, 2].astype(np.int32)
        self.data_length = self.length - 2
        self.b8, self.b9, self.b12 = (octets[:, at].astype(np.int32) for at in (8, 9, 12))
        self.w8, self.w10 = words[:, 4].astype(np.int32), words[:, 5].astype(np.int32)
        self.response, self.request = from_server & sound, ~from_server & sound
        self.sound = sound

    def take(self, rows: npt.NDArray[np.intp]) -> Fields:
        """The fields of rows `rows` only."""
        return Fields(self.rows[rows], self.from_server[rows], self.sound[rows])

    def word_at(self, at: int) -> Ints:
        """The big-endian word at odd ADU offset `at`."""
        return (self.octets[:, at].astype(np.int32) << 8) | self.octets[:, at + 1]

    def byte_at(self, at: int) -> Ints:
        """The byte at ADU offset `at`."""
        return self.octets[:, at].astype(np.int32)


class _Target:
    """Where a family writes: `columns`, at every row, or at rows `rows` (the family's fields
    being those rows' only)."""

    def __init__(self, columns: ModbusColumns, rows: npt.NDArray[np.intp] | None = None) -> None:
        self.columns, self.rows = columns, rows

    def put(self, name: str, mask: Mask, values: npt.NDArray[Any] | int) -> None:
        """Set column `name` to `values` where `mask` holds."""
        column = getattr(self.columns, name)
        if self.rows is None:
            np.copyto(column, values, where=mask, casting="unsafe")
        elif isinstance(values, np.ndarray):
            column[self.rows[mask]] = values[mask]
        else:
            column[self.rows[mask]] = values


def decode_rows(columns: ModbusColumns, f: Fields, objects_fit: Mask) -> Mask:
    """Fill `columns` for the rows decoded here; return them (the others need `exact.decode`).

    Reads (nearly every row of a plant's traffic) are decoded over all rows; the other families
    over the rows of their function codes only.
    """
    _header(columns, f)
    done = ~f.sound | _reads(_Target(columns), f, objects_fit)
    done |= f.sound & USER_DEFINED[f.code]
    for family, codes in FAMILIES:
        rows = np.flatnonzero(codes[f.code])
        if rows.size:
            done[rows] |= family(_Target(columns, rows), f.take(rows), objects_fit[rows])
    return done


def _header(columns: ModbusColumns, f: Fields) -> None:
    columns.transaction_id[:] = f.words[:, 0]
    columns.protocol_id[:] = f.words[:, 1]
    columns.length[:] = f.length
    columns.unit_id[:] = f.octets[:, 6]
    columns.function_code[:] = np.where(f.sound, f.code & fc.FUNCTION_MASK, -1)
    columns.is_exception[:] = f.sound & (f.code >= fc.EXCEPTION_BIT)
    columns.operation[:] = np.where(f.sound, fc.OPERATION_TABLE[f.code & fc.FUNCTION_MASK], Operation.NONE)
    unsound_finding = np.where(f.words[:, 1] != 0, ModbusFinding.BAD_PROTOCOL_ID, ModbusFinding.BAD_LENGTH)
    columns.finding[:] = np.where(f.sound, ModbusFinding.OK, unsound_finding)


def _quantity_ok(f: Fields, quantity: Ints) -> Mask:
    return (quantity >= 1) & (quantity <= fc.MAX_QUANTITY_TABLE[f.code])


def _reads(to: _Target, f: Fields, objects_fit: Mask) -> Mask:
    read = (f.code >= 1) & (f.code <= 4)
    request = f.request & read & (f.data_length == 4) & _quantity_ok(f, f.w10)
    to.put("address", request, f.w8)
    to.put("quantity", request, f.w10)
    counted = f.response & read & (f.data_length == 1 + f.b8) & (f.b8 >= 1) & (f.b8 <= 250)
    bit_reads = counted & (f.code <= 2)
    register_reads = counted & (f.code >= 3) & (f.b8 % 2 == 0)
    to.put("byte_count", bit_reads | register_reads, f.b8)
    to.put("value", bit_reads, f.b9 & 1)
    to.put("value", register_reads, f.word_at(9))
    to.put("quantity", register_reads, f.b8 >> 1)
    decoded: Mask = request | bit_reads | register_reads
    return decoded


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
FAMILIES: tuple[tuple[Family, Mask], ...] = (
    (_single_writes, _table(frozenset({fc.WRITE_SINGLE_COIL, fc.WRITE_SINGLE_REGISTER}), 256)),
    (_multiple_writes, _table(frozenset({fc.WRITE_MULTIPLE_COILS, fc.WRITE_MULTIPLE_REGISTERS}), 256)),
    (_exceptions, _table(frozenset(range(fc.EXCEPTION_BIT, 256)), 256)),
    (_diagnostics, _table(frozenset({fc.DIAGNOSTICS}), 256)),
    (_identification, _table(frozenset({fc.ENCAPSULATED_INTERFACE}), 256)),
)
"""The families decoded over their own rows, and the function codes (with the exception bit,
as in the ADU) of those rows."""
