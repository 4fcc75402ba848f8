"""Rows grouped by a composite key, vectorised: sort once, then reduce per group.

Used wherever records (or packets) are counted per key: the storage policy's minute aggregates,
the inventory's edges, the sensor's sightings. Keys are numpy columns of one length: numbers,
16-byte addresses (`S16`) or text (object arrays); a column equal on every row adds no key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plantwarden.core.records.batch import Array
from plantwarden.core.records.schema import TEXT


class Grouping:
    """Rows grouped by a composite key, vectorised: sort once, then reduce per group."""

    def __init__(self, keys: Sequence[Array]) -> None:
        codes = _packed([code for values in keys for code in _codes(values)], len(keys[0]))
        self.order = np.lexsort(codes[::-1]) if len(codes) > 1 else np.argsort(codes[0], kind="stable")
        change = np.zeros(len(self.order), dtype=bool)
        if len(change):
            change[0] = True
        for code in codes:
            ordered = code[self.order]
            change[1:] |= ordered[1:] != ordered[:-1]
        self.starts = np.flatnonzero(change)
        self.first = self.order[self.starts]
        """The first row of each group, groups in key order."""

    @property
    def inverse(self) -> Array:
        """Each row's group index (into `first`)."""
        groups = np.empty(len(self.order), dtype=np.int64)
        lengths = np.diff(np.append(self.starts, len(self.order)))
        groups[self.order] = np.repeat(np.arange(len(self.starts), dtype=np.int64), lengths)
        return groups

    def sum(self, values: Array) -> Array:
        """Per-group sums (int64)."""
        if not len(self.starts):
            return np.empty(0, dtype=np.int64)
        return np.add.reduceat(values[self.order].astype(np.int64), self.starts)

    def reduce(self, ufunc: np.ufunc, values: Array) -> Array:
        """Per-group `ufunc.reduceat` (minimum, maximum)."""
        if not len(self.starts):
            return np.empty(0, dtype=values.dtype)
        reduced: Array = ufunc.reduceat(values[self.order], self.starts)
        return reduced


def _packed(codes: list[Array], length: int) -> list[Array]:
    """Fold the sort keys into one int64 when their value ranges allow (one sort instead of a
    lexicographic one over many keys); otherwise keep them apart."""
    if not codes:
        return [np.zeros(length, dtype=np.int64)]
    lows = [int(c.min()) for c in codes]
    spans = [int(c.max()) - low + 1 for c, low in zip(codes, lows, strict=True)]
    if int(np.prod(np.array(spans, dtype=object))) >= 2**62:
        return codes
    packed = np.zeros(length, dtype=np.int64)
    for code, low, span in zip(codes, lows, spans, strict=True):
        packed *= span
        packed += (code - code.dtype.type(low)).astype(np.int64)
    return [packed]


def _codes(values: Array) -> list[Array]:
    """Sort keys that compare like the values: text via its distinct values, addresses as two
    big-endian 64-bit halves, numbers as they are. A constant column adds no key."""
    if not len(values):
        return []
    if values.dtype == TEXT:
        if values[0] is values[-1] and bool(np.all(values == values[0])):
            return []
        return [np.unique(values.astype(str), return_inverse=True)[1].reshape(-1)]
    if values.dtype.kind == "S":
        halves = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), -1).view(">u8")
        return [h for h in (halves[:, 0], halves[:, 1]) if h.min() != h.max()]
    return [values] if values.min() != values.max() else []
