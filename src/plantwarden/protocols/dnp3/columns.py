"""`Dnp3Columns`: one row per link frame, one numpy array per field, and the common summary.

Both paths produce it: `extract` directly, the exact path through `decode_segments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import SummaryColumns
from plantwarden.protocols.dnp3.messages import Dnp3Message

Array = npt.NDArray[Any]

ID_COLUMNS: dict[str, tuple[type[np.generic], int]] = {
    "size": (np.int32, 0),
    "length": (np.int16, -1),
    "control": (np.int16, -1),
    "destination": (np.int32, -1),
    "source": (np.int32, -1),
    "transport": (np.int16, -1),
    "app_control": (np.int16, -1),
    "app_function": (np.int16, -1),
    "iin": (np.int32, -1),
}
"""The protocol's own columns (a `Dnp3Message` field each): dtype and "none" value."""


@dataclass(slots=True)
class Dnp3Columns:
    """One row per link frame, in (segment, pdu_index) order; `leftover` is per segment: the
    bytes of a partial last frame."""

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int32]
    size: Array
    length: Array
    control: Array
    destination: Array
    source: Array
    transport: Array
    app_control: Array
    app_function: Array
    iin: Array
    summary: SummaryColumns
    leftover: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.segment)

    @classmethod
    def from_messages(
        cls, rows: Sequence[tuple[int, int, Dnp3Message]], leftover: npt.NDArray[np.int64]
    ) -> Dnp3Columns:
        """The columns of the exact decoder's messages, each with its (segment, pdu_index)."""
        ids = {
            name: np.fromiter((getattr(message, name) for _, _, message in rows), dtype, len(rows))
            for name, (dtype, _) in ID_COLUMNS.items()
        }
        return cls(
            segment=np.fromiter((segment for segment, _, _ in rows), np.int64, len(rows)),
            pdu_index=np.fromiter((index for _, index, _ in rows), np.int32, len(rows)),
            offset=np.fromiter((message.offset for _, _, message in rows), np.int32, len(rows)),
            summary=SummaryColumns.from_summaries([message.summary() for _, _, message in rows]),
            leftover=leftover,
            **ids,
        )

    def differences(self, other: Dnp3Columns) -> list[str]:
        """What differs from `other`: each column's first differing row (the summary's too)."""
        found = []
        for field in fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if field.name == "summary":
                for index, (a, b) in enumerate(zip(mine.summaries(), theirs.summaries(), strict=False)):
                    if a != b:
                        found.append(f"summary: row {index}: {a} against {b}")
                        break
                if len(mine) != len(theirs):
                    found.append(f"summary: {len(mine)} rows against {len(theirs)}")
            elif mine.shape != theirs.shape or mine.dtype != theirs.dtype:
                found.append(f"{field.name}: {mine.shape} {mine.dtype} against {theirs.shape} {theirs.dtype}")
            elif not np.array_equal(mine, theirs):
                index = int(np.flatnonzero(mine != theirs)[0])
                found.append(f"{field.name}: row {index}: {mine[index]} against {theirs[index]}")
        return found
