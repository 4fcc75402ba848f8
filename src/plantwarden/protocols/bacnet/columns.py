"""`BacnetColumns`: the fast path's record, one row per datagram, one numpy array per field.

Both paths produce it: `extract` directly, the exact path through `BacnetColumns.from_messages`
(`exact_columns`). The protocol's own columns are declared once, in `messages.SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.bacnet.exact import decode
from plantwarden.protocols.bacnet.messages import NAMES, SCHEMA, BacnetMessage
from plantwarden.protocols.common import SummaryColumns

Array = npt.NDArray[Any]


@dataclass(slots=True)
class BacnetColumns:
    """One row per datagram: its labels, its `Summary` as columns, the protocol's own columns
    (`ids`, by `SCHEMA` name), and per input segment the bytes left over (always 0: UDP)."""

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int32]
    summary: SummaryColumns
    ids: dict[str, Array]
    leftover: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.segment)

    @classmethod
    def from_messages(cls, messages: Sequence[BacnetMessage], segments: int) -> BacnetColumns:
        """The columns of the exact decoder's `messages` (labelled with their segments), for a
        batch of `segments` segments."""
        count = len(messages)
        return cls(
            segment=np.fromiter((m.segment for m in messages), np.int64, count),
            pdu_index=np.fromiter((m.pdu_index for m in messages), np.int32, count),
            offset=np.fromiter((m.offset for m in messages), np.int32, count),
            summary=SummaryColumns.from_summaries([m.summary() for m in messages]),
            ids={
                column.name: np.fromiter((getattr(m, column.name) for m in messages), column.dtype, count)
                for column in SCHEMA
            },
            leftover=np.zeros(segments, dtype=np.int32),
        )

    def differences(self, other: BacnetColumns) -> list[str]:
        """What differs from `other`: the row count, or each column's first differing row."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        found = []
        mine: dict[str, Array] = {
            "segment": self.segment,
            "pdu_index": self.pdu_index,
            "offset": self.offset,
            **self.ids,
        }
        theirs: dict[str, Array] = {
            "segment": other.segment,
            "pdu_index": other.pdu_index,
            "offset": other.offset,
            **other.ids,
        }
        for name in ("segment", "pdu_index", "offset", *NAMES):
            a, b = mine[name], theirs[name]
            if a.dtype != b.dtype:
                found.append(f"{name}: dtype {a.dtype} against {b.dtype}")
            elif not np.array_equal(a, b):
                index = int(np.flatnonzero(a != b)[0])
                found.append(f"{name}: row {index}: {a[index]} against {b[index]}")
        for index, (a_row, b_row) in enumerate(
            zip(self.summary.summaries(), other.summary.summaries(), strict=True)
        ):
            if a_row != b_row:
                found.append(f"summary: row {index}: {a_row} against {b_row}")
                break
        if not np.array_equal(self.leftover, other.leftover):
            found.append("leftover")
        return found


def exact_columns(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> BacnetColumns:
    """`extract`'s exact twin: every datagram `buffer[start:start + length]` through `decode`."""
    data = buffer.tobytes()
    messages = [
        decode(data[start : start + length], segment=segment)
        for segment, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True))
    ]
    return BacnetColumns.from_messages(messages, len(starts))
