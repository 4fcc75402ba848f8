"""`ModbusColumns`: the hot path's record, one row per PDU, one numpy array per field.

Both paths produce it: `extract` directly, the exact path through `ModbusColumns.from_messages`.
The schema (name, dtype, "none" value) is declared once, in `SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Column
from plantwarden.protocols.modbus.messages import ModbusMessage

Array = npt.NDArray[Any]


SCHEMA: tuple[Column, ...] = (
    Column("segment", np.int64, 0, "index of the input payload segment"),
    Column("pdu_index", np.int32, 0, "index of the ADU within its segment"),
    Column("offset", np.int32, 0, "byte offset of the ADU within its segment"),
    Column("transaction_id", np.int32, -1, "MBAP transaction identifier"),
    Column("protocol_id", np.int32, -1, "MBAP protocol identifier (0 for Modbus)"),
    Column("length", np.int32, -1, "MBAP length: unit id and PDU bytes"),
    Column("unit_id", np.int16, -1, "MBAP unit identifier"),
    Column("function_code", np.int16, -1, "function code without the exception bit"),
    Column("is_response", np.bool_, 0, "sent by the server"),
    Column("is_exception", np.bool_, 0, "function code with the exception bit"),
    Column("exception_code", np.int16, 0, "exception code (0: none)"),
    Column("address", np.int32, -1, "starting address; read address (23); record number (20, 21)"),
    Column("quantity", np.int32, 0, "quantity; read quantity (23); sub-requests (20, 21); objects (43/14)"),
    Column("byte_count", np.int32, -1, "the PDU's byte count field"),
    Column("value", np.int32, -1, "first value written or read; FC5 0/1; AND mask (22)"),
    Column("sub_function", np.int32, -1, "diagnostics sub-function (8) or MEI type (43)"),
    Column("read_code", np.int16, -1, "read device id code (43/14)"),
    Column("object_id", np.int16, -1, "object id (43/14 request) or next object id (response)"),
    Column("conformity_level", np.int16, -1, "conformity level (43/14 response)"),
    Column("more_follows", np.int16, -1, "more follows (43/14 response)"),
    Column("write_address", np.int32, -1, "write address (23)"),
    Column("write_quantity", np.int32, 0, "write quantity (23)"),
    Column("file_number", np.int32, -1, "file number of the first sub-request (20, 21)"),
    Column("operation", np.uint8, 0, "`Operation`"),
    Column("finding", np.uint8, 0, "`ModbusFinding`"),
)
NAMES = tuple(column.name for column in SCHEMA)


@dataclass(slots=True)
class ModbusColumns:
    """One row per PDU; see `SCHEMA` for each column's meaning, dtype and "none" value."""

    segment: Array
    pdu_index: Array
    offset: Array
    transaction_id: Array
    protocol_id: Array
    length: Array
    unit_id: Array
    function_code: Array
    is_response: Array
    is_exception: Array
    exception_code: Array
    address: Array
    quantity: Array
    byte_count: Array
    value: Array
    sub_function: Array
    read_code: Array
    object_id: Array
    conformity_level: Array
    more_follows: Array
    write_address: Array
    write_quantity: Array
    file_number: Array
    operation: Array
    finding: Array

    @classmethod
    def empty(cls, rows: int) -> ModbusColumns:
        """`rows` rows with every field "none"."""
        return cls(*(np.full(rows, column.none, dtype=column.dtype) for column in SCHEMA))

    @classmethod
    def filled(cls, rows: int, given: dict[str, Array]) -> ModbusColumns:
        """`rows` rows: the `given` columns (kept as they are when of their dtype already), every
        other "none"."""
        return cls(
            *(
                np.asarray(given[column.name], dtype=column.dtype)
                if column.name in given
                else np.full(rows, column.none, dtype=column.dtype)
                for column in SCHEMA
            )
        )

    @classmethod
    def from_messages(cls, messages: Sequence[ModbusMessage]) -> ModbusColumns:
        """The columns of the exact decoder's `messages`, in their order."""
        return cls(
            *(
                np.fromiter((getattr(m, column.name) for m in messages), column.dtype, len(messages))
                for column in SCHEMA
            )
        )

    def __len__(self) -> int:
        """The number of rows."""
        return len(self.segment)

    def arrays(self) -> dict[str, Array]:
        """The columns by name, in `SCHEMA` order."""
        return {name: getattr(self, name) for name in NAMES}

    def take(self, rows: Array) -> ModbusColumns:
        """The rows at `rows` (indexes or a boolean mask)."""
        return ModbusColumns(*(getattr(self, name)[rows] for name in NAMES))

    def row(self, index: int) -> dict[str, int]:
        """Row `index` as plain integers, by column name."""
        return {name: int(getattr(self, name)[index]) for name in NAMES}

    def differences(self, other: ModbusColumns) -> list[str]:
        """What differs from `other`: the row count, or each column's first differing row."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        found = []
        for name in NAMES:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine.dtype != theirs.dtype:
                found.append(f"{name}: dtype {mine.dtype} against {theirs.dtype}")
            elif not np.array_equal(mine, theirs):
                index = int(np.flatnonzero(mine != theirs)[0])
                found.append(f"{name}: row {index}: {mine[index]} against {theirs[index]}")
        return found
