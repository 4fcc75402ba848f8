"""`S7Columns`: the fast path's record, one row per PDU, one numpy array per field, and the
`SummaryColumns` of the same rows. The id columns' schema (name, dtype, "none") is declared once,
in `SCHEMA`; each is an `S7Message` field of the same name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Column, SummaryColumns
from plantwarden.protocols.s7comm.messages import S7Message

Array = npt.NDArray[Any]


SCHEMA: tuple[Column, ...] = (
    Column("offset", np.int32, 0, "byte offset of the PDU's first TPKT within its segment"),
    Column("size", np.int32, 0, "bytes of the PDU (all its TPKTs)"),
    Column("fragments", np.int16, 1, "TPKTs of the PDU (COTP data TPDUs without EOT, then the last)"),
    Column("cotp_type", np.int16, -1, "COTP TPDU type of the last TPKT"),
    Column("src_tsap", np.int64, -1, "connection request/confirm: source TSAP"),
    Column("dst_tsap", np.int64, -1, "connection request/confirm: destination TSAP"),
    Column("protocol_id", np.int16, -1, "0x32 S7comm, 0x72 S7comm-plus"),
    Column("rosctr", np.int16, -1, "S7 ROSCTR: 1 job, 2 ack, 3 ack_data, 7 userdata"),
    Column("pdu_ref", np.int32, -1, "S7 PDU reference"),
    Column("param_length", np.int32, -1, "S7 parameter length"),
    Column("data_length", np.int32, -1, "S7 data length"),
    Column("error_class", np.int16, -1, "ack and ack_data: error class"),
    Column("error_code", np.int16, -1, "ack and ack_data: error code"),
    Column("parameter_function", np.int16, -1, "job and ack_data: parameter function code"),
    Column("item_count", np.int16, -1, "read/write var: item count"),
    Column("ud_type", np.int16, -1, "userdata: 0 push, 4 request, 8 response"),
    Column("ud_group", np.int16, -1, "userdata: function group"),
    Column("ud_subfunction", np.int16, -1, "userdata: subfunction"),
    Column("ud_sequence", np.int16, -1, "userdata: sequence number"),
    Column("szl_id", np.int32, -1, "read SZL: SZL id"),
    Column("szl_index", np.int32, -1, "read SZL: SZL index"),
    Column("block_number", np.int32, -1, "block functions, PI services: the (first) block's number"),
    Column("plus_version", np.int16, -1, "S7comm-plus: protocol version"),
    Column("plus_opcode", np.int16, -1, "S7comm-plus: opcode"),
    Column("plus_function", np.int32, -1, "S7comm-plus: function"),
)
NAMES = tuple(column.name for column in SCHEMA)


@dataclass(slots=True)
class S7Columns:
    """One row per PDU: its segment and index in it, the id columns of `SCHEMA`, the summary."""

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    ids: dict[str, Array]
    summary: SummaryColumns

    def __len__(self) -> int:
        return len(self.segment)

    def __getattr__(self, name: str) -> Array:
        ids = object.__getattribute__(self, "ids")
        if name in ids:
            column: Array = ids[name]
            return column
        raise AttributeError(name)

    @classmethod
    def from_messages(
        cls, segment: Sequence[int], pdu_index: Sequence[int], messages: Sequence[S7Message]
    ) -> S7Columns:
        """The columns of the exact decoder's `messages`, labelled by `segment` and `pdu_index`."""
        ids = {
            column.name: np.fromiter((getattr(m, column.name) for m in messages), column.dtype, len(messages))
            for column in SCHEMA
        }
        return cls(
            np.asarray(segment, dtype=np.int64),
            np.asarray(pdu_index, dtype=np.int32),
            ids,
            SummaryColumns.from_summaries([m.summary() for m in messages]),
        )

    def differences(self, other: S7Columns) -> list[str]:
        """What differs from `other`: the row count, or each column's first differing row."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        found = []
        pairs: list[tuple[str, Array, Array]] = [
            ("segment", self.segment, other.segment),
            ("pdu_index", self.pdu_index, other.pdu_index),
        ]
        pairs += [(name, self.ids[name], other.ids[name]) for name in NAMES]
        for name, mine, theirs in pairs:
            if mine.dtype != theirs.dtype or not np.array_equal(mine, theirs):
                rows = np.flatnonzero(mine != theirs) if mine.shape == theirs.shape else [0]
                found.append(f"{name}: row {int(rows[0]) if len(rows) else -1}")
        if self.summary.summaries() != other.summary.summaries():
            found.append("summary")
        return found


class Extracted(NamedTuple):
    """A batch's PDU rows, and per input segment the bytes of a partial last PDU left over."""

    columns: S7Columns
    leftover: npt.NDArray[np.int32]
