"""`EnipColumns`: one row per PDU, one numpy array per field, and per input segment the bytes of
an incomplete last PDU. Both paths produce it: `extract` directly, the exact path through
`EnipColumns.from_messages`. The schema (name, dtype, "none" value) is declared once, in `SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Column, SummaryColumns
from plantwarden.protocols.enip.messages import EnipMessage

Array = npt.NDArray[Any]


LABELS: tuple[Column, ...] = (
    Column("segment", np.int64, 0, "index of the input payload segment"),
    Column("pdu_index", np.int32, 0, "index of the PDU within its segment"),
    Column("offset", np.int32, 0, "byte offset of the PDU within its segment"),
)
IDS: tuple[Column, ...] = (
    Column("command", np.int32, -1, "encapsulation command"),
    Column("length", np.int32, -1, "encapsulation length (command data bytes)"),
    Column("session", np.int64, -1, "session handle"),
    Column("encapsulation_status", np.int64, -1, "encapsulation status"),
    Column("sender_context", np.int64, -1, "sender context, the 8 bytes as a signed little-endian number"),
    Column("options", np.int64, -1, "encapsulation options"),
    Column("connection_id", np.int64, -1, "connected or sequenced address item's connection id"),
    Column("sequence", np.int64, -1, "sequence number (class 1) or sequence count (class 3)"),
    Column("cip_service", np.int16, -1, "outer CIP service code as sent (with the reply bit)"),
    Column("general_status", np.int16, -1, "outer CIP reply's general status"),
    Column("io", np.bool_, 0, "class 1 I/O datagram (detect-only)"),
)
SCHEMA = LABELS + IDS
NAMES = tuple(column.name for column in SCHEMA)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(slots=True)
class EnipColumns:
    """One row per PDU (see `SCHEMA`), its `summary`, and `leftover` per input segment."""

    segment: Array
    pdu_index: Array
    offset: Array
    command: Array
    length: Array
    session: Array
    encapsulation_status: Array
    sender_context: Array
    options: Array
    connection_id: Array
    sequence: Array
    cip_service: Array
    general_status: Array
    io: Array
    summary: SummaryColumns
    leftover: Array

    def __len__(self) -> int:
        return len(self.segment)

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[EnipMessage],
        segment: Sequence[int],
        pdu_index: Sequence[int],
        leftover: Sequence[int],
    ) -> EnipColumns:
        """The columns of the exact decoder's `messages`, labelled by `segment` and `pdu_index`."""
        values: dict[str, Any] = {
            "segment": np.asarray(segment, dtype=np.int64),
            "pdu_index": np.asarray(pdu_index, dtype=np.int32),
        }
        for column in SCHEMA[2:]:
            getter = (
                (lambda message: _signed64(message.sender_context))
                if column.name == "sender_context"
                else (lambda message, name=column.name: getattr(message, name))
            )
            values[column.name] = np.fromiter(map(getter, messages), column.dtype, len(messages))
        summary = SummaryColumns.from_summaries([message.summary() for message in messages])
        return cls(**values, summary=summary, leftover=np.asarray(leftover, dtype=np.int64))

    def arrays(self) -> dict[str, Array]:
        """The id and label columns by name, in `SCHEMA` order."""
        return {name: getattr(self, name) for name in NAMES}

    def differences(self, other: EnipColumns) -> list[str]:
        """What differs from `other`: row counts, each column's first differing row, summaries."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        found = []
        for name in (*NAMES, "leftover"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine.dtype != theirs.dtype or not np.array_equal(mine, theirs):
                found.append(f"{name} differs")
        mine_rows, their_rows = self.summary.summaries(), other.summary.summaries()
        for index, (mine_row, their_row) in enumerate(zip(mine_rows, their_rows, strict=True)):
            if mine_row != their_row:
                found.append(f"summary row {index}: {mine_row} against {their_row}")
                break
        return found
