"""`Iec104Columns`: one row per APDU, one numpy array per field, and per segment its leftover.

Both paths produce it: `extract` directly, the exact path through `Iec104Columns.from_messages`.
The protocol's own columns are declared once, in `SCHEMA`; the common ones are `SummaryColumns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Column, SummaryColumns
from plantwarden.protocols.iec104.exact import Iec104Message

Array = npt.NDArray[Any]


SCHEMA: tuple[Column, ...] = (
    Column("segment", np.int64, 0, "index of the input payload segment"),
    Column("pdu_index", np.int32, 0, "index of the APDU within its segment"),
    Column("offset", np.int32, 0, "byte offset of the APDU within its segment"),
    Column("length", np.int16, -1, "APDU length byte"),
    Column("frame_format", np.int8, -1, "0 I, 1 S, 3 U"),
    Column("control", np.int16, -1, "control field octet 1 (a U frame's function)"),
    Column("send_seq", np.int32, -1, "N(S) (I frames)"),
    Column("recv_seq", np.int32, -1, "N(R) (I and S frames)"),
    Column("type_id", np.int16, -1, "ASDU type identification"),
    Column("sq", np.int8, -1, "variable structure qualifier SQ bit"),
    Column("num_objects", np.int16, -1, "number of information objects"),
    Column("cause", np.int8, -1, "cause of transmission (6 bits)"),
    Column("negative", np.int8, -1, "P/N bit"),
    Column("test", np.int8, -1, "T bit"),
    Column("originator", np.int16, -1, "originator address"),
    Column("common_address", np.int32, -1, "common address of ASDU"),
    Column("select", np.int8, -1, "a command's S/E bit (first object): 1 select, 0 execute"),
)
NAMES = tuple(column.name for column in SCHEMA)


@dataclass(slots=True)
class Iec104Columns:
    """One row per APDU (see `SCHEMA`), its `summary`, and per input segment `leftover`: the
    bytes of an incomplete last APDU (to put before the next segment of the same direction)."""

    segment: Array
    pdu_index: Array
    offset: Array
    length: Array
    frame_format: Array
    control: Array
    send_seq: Array
    recv_seq: Array
    type_id: Array
    sq: Array
    num_objects: Array
    cause: Array
    negative: Array
    test: Array
    originator: Array
    common_address: Array
    select: Array
    summary: SummaryColumns
    leftover: npt.NDArray[np.int64]

    @classmethod
    def from_messages(
        cls, rows: Sequence[tuple[int, Iec104Message]], leftover: npt.NDArray[np.int64]
    ) -> Iec104Columns:
        """The columns of the exact decoder's messages, each with its segment, in their order."""
        values = {
            column.name: np.fromiter(
                (
                    segment if column.name == "segment" else getattr(message, column.name)
                    for segment, message in rows
                ),
                column.dtype,
                len(rows),
            )
            for column in SCHEMA
        }
        summary = SummaryColumns.from_summaries([message.summary() for _, message in rows])
        return cls(**values, summary=summary, leftover=leftover)

    def __len__(self) -> int:
        return len(self.segment)

    def arrays(self) -> dict[str, Array]:
        """The protocol's own columns by name, in `SCHEMA` order."""
        return {name: getattr(self, name) for name in NAMES}

    def differences(self, other: Iec104Columns) -> list[str]:
        """What differs from `other`: row count, a column's dtype or first differing row,
        the summaries, the leftovers."""
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
        for row, (mine_row, theirs_row) in enumerate(
            zip(self.summary.summaries(), other.summary.summaries(), strict=True)
        ):
            if mine_row != theirs_row:
                found.append(f"summary: row {row}: {mine_row} against {theirs_row}")
                break
        if not np.array_equal(self.leftover, other.leftover):
            found.append("leftover")
        return found
