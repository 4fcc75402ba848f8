"""What the parsers hand to the reader: the columns of the packets found in a chunk, gathered until
they make a batch, and the problems they raise (turned into public errors once the good packets
are out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.errors import CaptureError

INT32_MAX = 2**31 - 1
Unpack = Callable[[bytes, int], tuple[Any, ...]]
_Item = TypeVar("_Item", bound=np.generic)


class Problem(Exception):
    """Raised inside a parser; the reader turns it into a public error once the good packets are out."""

    def __init__(self, kind: type[CaptureError], offset: int, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.offset, self.reason = kind, offset, reason


@dataclass(slots=True)
class Columns:
    """The columns of some consecutive packets of one chunk (offsets into the chunk)."""

    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int32]
    wire_lengths: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    linktypes: npt.NDArray[np.uint16]
    interfaces: npt.NDArray[np.uint16]

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, int, int, int, int]]) -> Columns:
        """Columns from (offset, length, wire length, time, link type, interface) rows."""
        offsets, lengths, wire, ts_ns, linktypes, interfaces = zip(*rows, strict=True)
        return cls(
            np.array(offsets, np.int64),
            np.array(lengths, np.int32),
            np.minimum(np.array(wire, np.int64), INT32_MAX).astype(np.int32),
            np.array(ts_ns, np.int64),
            np.array(linktypes, np.uint16),
            np.array(interfaces, np.uint16),
        )


@dataclass(slots=True)
class Pending:
    """Packets parsed but not yet handed out, all in the current chunk: runs as columns, and the
    packets of blocks read one by one as rows until a run follows them."""

    parts: list[Columns] = field(default_factory=list)
    rows: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    count: int = 0

    def add(self, part: Columns) -> None:
        if len(part.offsets):
            self._settle()
            self.parts.append(part)
            self.count += len(part.offsets)

    def add_row(self, offset: int, length: int, wire: int, ts_ns: int, linktype: int, interface: int) -> None:
        self.rows.append((offset, length, wire, ts_ns, linktype, interface))
        self.count += 1

    def _settle(self) -> None:
        if self.rows:
            self.parts.append(Columns.from_rows(self.rows))
            self.rows = []

    def first_offset(self) -> int:
        return int(self.parts[0].offsets[0]) if self.parts else self.rows[0][0]

    def shift(self, delta: int) -> None:
        self._settle()
        for part in self.parts:
            part.offsets += delta

    def take(self, chunk: bytes, first_number: int) -> PacketBatch:
        """All pending packets as one batch over the part of `chunk` they lie in."""
        self._settle()
        parts, self.parts, self.count = self.parts, [], 0
        whole = parts[0] if len(parts) == 1 else concatenate(parts)
        start = int(whole.offsets[0])
        end = int(whole.offsets[-1]) + int(whole.lengths[-1])
        return PacketBatch(
            buffer=np.frombuffer(chunk, np.uint8, count=end - start, offset=start),
            offsets=whole.offsets - start,
            lengths=whole.lengths,
            wire_lengths=whole.wire_lengths,
            ts_ns=whole.ts_ns,
            linktypes=whole.linktypes,
            interfaces=whole.interfaces,
            first_number=first_number,
        )


def concatenate(parts: list[Columns]) -> Columns:
    return Columns(
        np.concatenate([p.offsets for p in parts]),
        np.concatenate([p.lengths for p in parts]),
        np.concatenate([p.wire_lengths for p in parts]),
        np.concatenate([p.ts_ns for p in parts]),
        np.concatenate([p.linktypes for p in parts]),
        np.concatenate([p.interfaces for p in parts]),
    )


class Parser(Protocol):
    def parse(self, chunk: bytes, pos: int, pending: Pending, target: int) -> tuple[int, bool]:
        """Parse from `pos` until `pending` holds `target` packets (returns the position and False)
        or the rest of the chunk is incomplete (returns where it starts and True)."""

    def partial(self, chunk: bytes, pos: int) -> str:
        """What the incomplete bytes from `pos` to the end of the chunk were going to be."""


def rows_at(values: npt.NDArray[_Item], starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[_Item]:
    """`values[start : start + width]` for each start, as the rows of a new array (indexing a
    sliding window view pays for many rows, plain fancy indexing for few)."""
    rows: npt.NDArray[_Item]
    if len(starts) < 256:
        rows = values[starts[:, None] + np.arange(width)]
    else:
        rows = sliding_window_view(values, width)[starts]
    return rows


def good_prefix(bad: npt.NDArray[np.bool_]) -> int:
    """How many leading entries are not bad."""
    where = np.flatnonzero(bad)
    return int(where[0]) if len(where) else len(bad)
