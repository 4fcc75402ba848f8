"""Grouping record rows by key with numpy, for `facts`: distinct keys by a 64-bit hash, first and
last times per group, medians per group, and intervals merged per group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Groups:
    """Per row, its group (`inverse`); per group, its first row and how many rows it has."""

    first: Array  # index of each group's first row (into the rows grouped)
    inverse: Array
    counts: Array


def group(columns: Sequence[Array]) -> tuple[Array, Groups]:
    """The distinct rows of `columns` (a structured array) and how the rows map onto them.

    Rows are grouped by a 64-bit hash of their bytes (sorting integers is much faster than
    sorting structured rows); every row is then compared with its group's first row, and on a
    collision (never seen, but possible) the rows are grouped by sorting the structured rows."""
    packed = np.empty(len(columns[0]), dtype=[(f"f{i}", c.dtype) for i, c in enumerate(columns)])
    for i, column in enumerate(columns):
        packed[f"f{i}"] = column
    words = _words(packed)
    hashes = _hashes(words, packed.dtype.itemsize)
    _, first, inverse, counts = np.unique(hashes, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(words[first[inverse]], words):
        unique, first, inverse, counts = np.unique(
            packed, return_index=True, return_inverse=True, return_counts=True
        )
        return unique, Groups(first, inverse.reshape(-1), counts)
    return packed[first], Groups(first, inverse, counts)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _words(packed: Array) -> Array:
    """Each row's bytes as 8-byte words (zero-padded): what rows are hashed and compared by."""
    width = packed.dtype.itemsize
    padded = np.zeros((len(packed), -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = packed.view(np.uint8).reshape(len(packed), width)
    return padded.view(np.uint64)


def _hashes(words: Array, width: int) -> Array:
    """A 64-bit hash of each row's words (multiply-xorshift, seeded with the row's width)."""
    hashed = np.full(len(words), np.uint64(width), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(words.shape[1]):
            hashed = (hashed ^ words[:, column]) * _MIX
            hashed ^= hashed >> np.uint64(29)
    return hashed


def times(ts: Array, groups: Groups, size: int) -> tuple[Array, Array]:
    low = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(low, groups.inverse, ts)
    np.maximum.at(high, groups.inverse, ts)
    return low, high


def medians(values: Array, owners: Array, size: int) -> tuple[Array, Array]:
    """Per owner, the median of its values (the lower middle one) and how many it has."""
    counts = np.bincount(owners, minlength=size)
    medians = np.zeros(size, dtype=np.int64)
    if not len(values):
        return medians, counts
    order = np.lexsort((values, owners))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    middle = starts[has] + (counts[has] - 1) // 2
    medians[has] = values[order][middle]
    return medians, counts


_GROUP_SHIFT = 1 << 40
"""Per group, addresses are shifted by this much, so one running maximum serves every group."""


def merged_per_group(owners: Array, starts: Array, ends: Array, size: int) -> list[list[list[int]]]:
    """`merge_intervals` for every group at once (one sort, one running maximum)."""
    order = np.lexsort((ends, starts, owners))
    o, s, e = owners[order].astype(np.int64), starts[order], ends[order]
    reach = np.maximum.accumulate(e + o * _GROUP_SHIFT) - o * _GROUP_SHIFT
    breaks = np.flatnonzero((o[1:] != o[:-1]) | (s[1:] > reach[:-1] + 1)) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(s) - 1]])
    merged: list[list[list[int]]] = [[] for _ in range(size)]
    for owner, a, b in zip(o[first].tolist(), s[first].tolist(), reach[last].tolist(), strict=True):
        merged[owner].append([a, b])
    return merged


def merge_intervals(starts: Array, ends: Array) -> list[list[int]]:
    """Closed intervals [start, end] merged where they overlap or touch, in order."""
    if not len(starts):
        return []
    order = np.lexsort((ends, starts))
    s, e = np.asarray(starts, dtype=np.int64)[order], np.asarray(ends, dtype=np.int64)[order]
    reach = np.maximum.accumulate(e)
    breaks = np.flatnonzero(s[1:] > reach[:-1] + 1) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(s) - 1]])
    return [[int(s[a]), int(reach[b])] for a, b in zip(first, last, strict=True)]
