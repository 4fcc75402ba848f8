"""Verdicts remembered per key, so that each kind of record is decided once per checker.

`VerdictBook.of(keys)` gives each record's verdict number: known keys are read from a table
(a dense array over the whole key space when it is small enough, a sorted array otherwise);
the distinct new keys are decided one by one (`decide`) and remembered. Verdicts are numbered in
the order they first appear (0 is "allowed") and described by parallel arrays, so that a batch
turns its verdict numbers into rule bits and channels with plain gathers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.detection.channels import ALLOWED, Verdict

Array = npt.NDArray[Any]
DENSE_LIMIT = 1 << 24
"""Key spaces up to this size get a dense table (2 bytes per key; zeroed pages cost nothing until
a key on them is seen, so only the keys in use take memory)."""


class VerdictBook:
    """Verdict numbers by key, and what each number means."""

    def __init__(self, key_space: int, decide: Callable[[int], Verdict]) -> None:
        self.decide = decide
        self.verdicts: list[Verdict] = [ALLOWED]
        self._numbers: dict[Verdict, int] = {ALLOWED: 0}
        self._dense = key_space <= DENSE_LIMIT
        self._key_space = key_space
        self._table: Array | None = None
        self._keys = np.empty(0, dtype=np.int64)
        self._values = np.empty(0, dtype=np.int32)
        self._describe()

    def of(self, keys: Array) -> Array:
        """Each key's verdict number (deciding the keys not seen before)."""
        found = self._lookup(keys)
        unknown = found < 0
        if bool(unknown.any()):
            fresh = np.sort(keys[unknown])
            fresh = fresh[np.concatenate(([True], fresh[1:] != fresh[:-1]))]
            numbers = np.array([self._number(self.decide(int(k))) for k in fresh.tolist()], dtype=np.int32)
            self._remember(fresh, numbers)
            self._describe()
            found = self._lookup(keys)
        return found

    def _lookup(self, keys: Array) -> Array:
        if self._dense:
            if self._table is None:
                self._table = np.zeros(self._key_space, dtype=np.int16)  # verdict number + 1; 0 unknown
            found: Array = self._table[keys].astype(np.int32) - 1
            return found
        if not len(self._keys):
            return np.full(len(keys), -1, dtype=np.int32)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[at] == keys, self._values[at], -1)

    def _remember(self, keys: Array, numbers: Array) -> None:
        if self._dense:
            assert self._table is not None
            if len(self.verdicts) >= np.iinfo(self._table.dtype).max:
                self._table = self._table.astype(np.int32)
            self._table[keys] = numbers + 1
            return
        merged = np.concatenate((self._keys, keys))
        order = np.argsort(merged, kind="stable")
        self._keys = merged[order]
        self._values = np.concatenate((self._values, numbers))[order]

    def _number(self, verdict: Verdict) -> int:
        if verdict not in self._numbers:
            self._numbers[verdict] = len(self.verdicts)
            self.verdicts.append(verdict)
        return self._numbers[verdict]

    def _describe(self) -> None:
        verdicts = self.verdicts
        self.bits = np.array([v.bits for v in verdicts], dtype=np.uint8)
        self.channel = np.array([v.channel for v in verdicts], dtype=np.int32)
        self.conduit = np.array([v.conduit for v in verdicts], dtype=np.int32)
        self.timed = np.array([bool(v.alternatives) for v in verdicts], dtype=bool)
        self.bits[self.timed] = 0  # decided per record from its time
