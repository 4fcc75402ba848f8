"""64-bit hashes of records' field values, vectorised, for the state of count rules.

Each value becomes a 64-bit word (integers as they are, numbers by their bits, addresses as two
words, text through a dictionary of the values seen, kept for the tracker's life), and the words
are mixed with the SplitMix64 finaliser. Two different groups share a hash with a probability
of about n^2 / 2^65 (for a million groups, 3e-8): the price of keeping the state in arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.detection.rules.compile import BatchView

Array = npt.NDArray[Any]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(words: Array) -> Array:
    """SplitMix64's finaliser over an array of uint64."""
    x = words + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    found: Array = x ^ (x >> np.uint64(31))
    return found


class Hasher:
    """Hashes of rows by named fields; text values get stable numbers for the hasher's life."""

    def __init__(self) -> None:
        self.text: dict[Any, int] = {}

    def words(self, view: BatchView, name: str, rows: Array) -> list[Array]:
        """A field at `rows` as uint64 words (an address gives two)."""
        if name in ("src_addr", "dst_addr"):
            high, low = view.words(name)
            return [high[rows], low[rows]]
        column = view.column(name)[rows]
        if column.dtype == object:
            return [self._text(column)]
        if column.dtype.kind == "f":
            return [np.ascontiguousarray(column, dtype=np.float64).view(np.uint64)]
        return [column.astype(np.int64).view(np.uint64)]

    def _text(self, column: Array) -> Array:
        if len(column) and bool(np.all(column == column[0])):
            number = self.text.setdefault(column[0], len(self.text))
            return np.full(len(column), number, dtype=np.uint64)
        table = self.text
        return np.fromiter((table.setdefault(v, len(table)) for v in column), np.uint64, len(column))

    def rows(self, view: BatchView, names: Sequence[str], rows: Array, extra: Array | None = None) -> Array:
        """One hash per row of the named fields (and `extra` values, such as the window number)."""
        found = np.zeros(len(rows), dtype=np.uint64)
        for name in names:
            for words in self.words(view, name, rows):
                found = self.combine(found, words)
        if extra is not None:
            found = self.combine(found, extra.astype(np.int64).view(np.uint64))
        return found

    @staticmethod
    def combine(hashes: Array, words: Array) -> Array:
        """The hashes with one more word mixed in."""
        return mix(hashes * np.uint64(31) ^ mix(words))
