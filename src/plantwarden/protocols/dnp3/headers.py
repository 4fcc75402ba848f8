"""The object-header walk of many application fragments at once: `objects.walk`, vectorised.

The walk goes level by level, as the framing does: the i-th object header of every fragment
still open is read at once (group, variation, qualifier and range at fixed offsets from where
the header starts), its objects' size comes from tables (`objects.SIZES`, the range and prefix
sizes), and the next header starts after them. The fragments whose objects' sizes are read one
object at a time (free-format objects behind a size prefix, device attributes with data) are
left to `objects.walk` (`HeaderRows.exact`); every other fragment ends with the status, finding
and headers `objects.walk` gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.exact import BLOCK
from plantwarden.protocols.dnp3.findings import Dnp3Finding as F
from plantwarden.protocols.dnp3.objects import (
    ALL_OBJECTS,
    DEVICE_ATTRIBUTES,
    NO_DATA_FUNCTIONS,
    OCTET_STRING_GROUPS,
    PREFIX_SIZES,
    RANGE_SIZES,
    SIZE_PREFIXES,
    SIZES,
)

Ints = npt.NDArray[np.int64]

UNKNOWN = np.iinfo(np.int64).min
"""`OBJECT_SIZES` of an object whose size is unknown."""


def _object_sizes() -> Ints:
    """Bytes of one object by group << 8 | variation (negative: -bits of a packed one)."""
    table = np.full(1 << 16, UNKNOWN, dtype=np.int64)
    for group, variations in SIZES.items():
        for variation, size in variations.items():
            table[group << 8 | variation] = size
    for group in OCTET_STRING_GROUPS:
        table[(group << 8) + 1 : (group << 8) + 256] = np.arange(1, 256)
    return table


OBJECT_SIZES = _object_sizes()
RANGE_WIDTH = np.array([RANGE_SIZES.get(code, -1) for code in range(16)], dtype=np.int64)
"""Bytes of each range field by range specifier code, -1 for a reserved code."""
RANGE_FIELDS = np.array([2 if code < ALL_OBJECTS else 0 if code == ALL_OBJECTS else 1 for code in range(16)])
PREFIX_WIDTH = np.array([PREFIX_SIZES.get(code, 0) for code in range(8)], dtype=np.int64)
NO_DATA = np.isin(np.arange(256), sorted(NO_DATA_FUNCTIONS))
FREEZE_AT_TIME = np.isin(np.arange(256), fc.FREEZE_AT_TIME)
TIME_AND_DATE = 50


@dataclass(slots=True)
class HeaderRows:
    """The headers found, in (fragment, order) order, and per fragment how its walk ended."""

    row: Ints
    """The fragment (row of the input) each header belongs to."""
    group: Ints
    variation: Ints
    qualifier: Ints
    start: Ints
    stop: Ints
    count: Ints
    first_index: Ints
    status: Ints
    finding: Ints
    exact: npt.NDArray[np.bool_]
    """Fragments to walk with `objects.walk` (their headers, status and finding are not here)."""

    def address(self) -> Ints:
        """Each header's `ObjectHeader.address`."""
        start_stop = (self.qualifier & 0x0F) < ALL_OBJECTS
        return np.where(start_stop, self.start, self.first_index)

    def firsts(self) -> tuple[Ints, Ints, Ints]:
        """The fragments that have headers, where their first header is, and how many they have."""
        starts = np.ones(len(self.row), dtype=np.bool_)
        starts[1:] = self.row[1:] != self.row[:-1]
        first_at = np.flatnonzero(starts)
        return self.row[first_at], first_at, np.diff(np.append(first_at, len(self.row)))

    def targets(self, limit: int) -> tuple[Ints, npt.NDArray[np.object_]]:
        """The fragments that have headers, and for each the `ObjectHeader.text` of its first
        `limit` headers, as a tuple. Each distinct header of the batch is written once, and each
        distinct sequence of them made a tuple once (the rows share it)."""
        fragments, first_at, counts = self.firsts()
        level = np.arange(len(self.row)) - np.repeat(first_at, counts)
        kept = level < limit
        code = self.qualifier & 0x0F
        kind = np.where(code < ALL_OBJECTS, _RANGE, np.where(code == ALL_OBJECTS, _ALL, _COUNT))
        low = np.where(kind == _RANGE, self.start, np.where(kind == _COUNT, self.count, 0))
        high = np.where(kind == _RANGE, self.stop, 0)
        keys = np.stack([self.group << 10 | self.variation << 2 | kind, low, high], axis=1)[kept]
        distinct, which = _distinct(keys)
        texts = [
            _text(name >> 10, name >> 2 & 0xFF, name & 3, low, high) for name, low, high in distinct.tolist()
        ]
        sequences = np.zeros((len(fragments), min(int(counts.max()), limit)), dtype=np.int64)
        sequences[np.repeat(np.arange(len(fragments)), np.minimum(counts, limit)), level[kept]] = which + 1
        patterns, pattern_of = _distinct(sequences)
        tuples = np.fromiter(
            (tuple(texts[at - 1] for at in pattern if at) for pattern in patterns.tolist()),
            dtype=object,
            count=len(patterns),
        )
        return fragments, tuples[pattern_of]


_RANGE, _ALL, _COUNT = 0, 1, 2


def _text(group: int, variation: int, kind: int, low: int, high: int) -> str:
    """`ObjectHeader.text` of a header of `kind` (range `low`-`high`, all, or count `low`)."""
    if kind == _RANGE:
        return f"g{group}v{variation} {low}-{high}"
    if kind == _ALL:
        return f"g{group}v{variation} all"
    return f"g{group}v{variation} count {low}"


def _distinct(columns: Ints) -> tuple[Ints, Ints]:
    """The distinct rows of `columns` (of numbers below 2 ** 33), and which of them each row is.
    Column by column: the rows' distinct prefixes so far and the next column, as one number."""
    which = np.zeros(len(columns), dtype=np.int64)
    if not len(columns):
        return columns, which
    keys = which
    for column in columns.T:
        key = which << int(column.max()).bit_length() | column
        keys = np.unique(key)
        which = np.searchsorted(keys, key)
    representative = np.zeros(len(keys), dtype=np.int64)
    representative[which] = np.arange(len(columns))
    return columns[representative], which


def _octets(octets: npt.NDArray[np.uint8], first: Ints, at: Ints) -> Ints:
    """Fragment byte `at` of fragments whose byte 0 is at `first` in `octets`."""
    read: Ints = octets[np.minimum(first + at + 2 * (at // BLOCK), len(octets) - 1)].astype(np.int64)
    return read


def _read(octets: npt.NDArray[np.uint8], first: Ints, at: Ints, width: Ints) -> Ints:
    """The little-endian numbers of `width` bytes (0, 1, 2 or 4) at fragment byte `at`."""
    value = np.zeros(len(first), dtype=np.int64)
    for byte in range(4):
        value |= np.where(byte < width, _octets(octets, first, at + byte) << (8 * byte), 0)
    return value


def walk_rows(
    octets: npt.NDArray[np.uint8], first: Ints, begin: Ints, end: Ints, function: Ints
) -> HeaderRows:
    """`objects.walk(function[i], fragment[begin[i]:end[i]])` for every fragment i (a row of the
    result), where byte k of fragment i is `octets[first[i] + k + 2 * (k // 16)]`: user data as
    a link frame carries it, a CRC after every 16 bytes."""
    rows = len(begin)
    status = np.full(rows, int(ParseStatus.OK), dtype=np.int64)
    finding = np.zeros(rows, dtype=np.int64)
    exact = np.zeros(rows, dtype=np.bool_)
    at = np.asarray(begin, dtype=np.int64).copy()
    found: list[tuple[Ints, ...]] = []

    def stop(which: Ints, ended: ParseStatus, why: F = F.OK) -> None:
        status[which] = int(ended)
        finding[which] = int(why)

    open_ = np.flatnonzero(at < end)
    while open_.size:
        truncated = at[open_] + 3 > end[open_]
        stop(open_[truncated], ParseStatus.MALFORMED, F.OBJECT_TRUNCATED)
        open_ = open_[~truncated]
        e = end[open_]
        level = _Level.read(octets, first[open_], at[open_], e)
        stop(open_[level.bad_qualifier], ParseStatus.MALFORMED, F.BAD_QUALIFIER)
        stop(open_[level.truncated], ParseStatus.MALFORMED, F.OBJECT_TRUNCATED)
        stop(open_[level.bad_range], ParseStatus.MALFORMED, F.BAD_RANGE)
        kept = ~(level.bad_qualifier | level.truncated | level.bad_range)
        found.append(tuple(column[kept] for column in (open_, *level.header_columns())))
        next_at, unknown, one_by_one = level.objects_end(function[open_])
        exact[open_[kept & one_by_one]] = True
        going = kept & ~one_by_one
        stop(open_[going & unknown], ParseStatus.PARTIAL)
        going &= ~unknown
        stop(open_[going & (next_at > e)], ParseStatus.MALFORMED, F.OBJECT_TRUNCATED)
        going &= next_at <= e
        at[open_[going]] = next_at[going]
        open_ = open_[going & (next_at < e)]
    return _headers(found, status, finding, exact)


@dataclass(slots=True)
class _Level:
    """One object header of each of some fragments, read where it starts (`at`)."""

    group: Ints
    variation: Ints
    qualifier: Ints
    low: Ints
    """The start index, or the count (range codes 7-9, 11)."""
    high: Ints
    """The stop index (range codes 0-5)."""
    count: Ints
    first_index: Ints
    objects_at: Ints
    """Where the header's objects (their prefixes and data) start."""
    bad_qualifier: npt.NDArray[np.bool_]
    truncated: npt.NDArray[np.bool_]
    bad_range: npt.NDArray[np.bool_]

    @classmethod
    def read(cls, octets: npt.NDArray[np.uint8], first: Ints, at: Ints, end: Ints) -> _Level:
        """The headers at `at` of fragments ending at `end` (3 bytes at least are there)."""
        group, variation, qualifier = (_octets(octets, first, at + k) for k in range(3))
        prefix, code = (qualifier >> 4) & 0x07, qualifier & 0x0F
        width, fields = RANGE_WIDTH[code], RANGE_FIELDS[code]
        bad = ((qualifier & 0x80) != 0) | (prefix == 7) | (width < 0)
        objects_at = at + 3 + width * fields
        truncated = ~bad & (objects_at > end)
        low, high = _read(octets, first, at + 3, width), _read(octets, first, at + 3 + width, width)
        bad_range = ~bad & ~truncated & (code < ALL_OBJECTS) & (high < low)
        prefix_size = PREFIX_WIDTH[prefix]
        count = np.where(code < ALL_OBJECTS, high - low + 1, np.where(code == ALL_OBJECTS, 0, low))
        indexed = (prefix >= 1) & (prefix <= 3) & (count > 0) & (objects_at + prefix_size <= end)
        first_index = np.where(indexed, _read(octets, first, objects_at, prefix_size), -1)
        return cls(
            group, variation, qualifier, low, high, count, first_index, objects_at, bad, truncated, bad_range
        )

    def header_columns(self) -> tuple[Ints, ...]:
        """Group, variation, qualifier, start, stop, count and first index prefix."""
        start_stop = (self.qualifier & 0x0F) < ALL_OBJECTS
        return (
            self.group,
            self.variation,
            self.qualifier,
            np.where(start_stop, self.low, -1),
            np.where(start_stop, self.high, -1),
            self.count,
            self.first_index,
        )

    def objects_end(self, function: Ints) -> tuple[Ints, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """`objects._objects_end` for these headers in fragments of application `function`:
        where their objects end, whether their size is unknown, and whether it is read object by
        object (left to `objects.walk`)."""
        group, variation, prefix = self.group, self.variation, (self.qualifier >> 4) & 0x07
        with_data = ~NO_DATA[function] & ~(FREEZE_AT_TIME[function] & (group != TIME_AND_DATE))
        one_by_one = np.isin(prefix, SIZE_PREFIXES) | (
            with_data & (group == DEVICE_ATTRIBUTES) & (variation != 0)
        )
        size = OBJECT_SIZES[group << 8 | variation]
        unknown = with_data & ((size == UNKNOWN) | ((size < 0) & (prefix != 0)))
        count, prefix_size = self.count, PREFIX_WIDTH[prefix]
        packed = (count * -np.minimum(size, 0) + 7) // 8
        with_sizes = np.where(size < 0, packed, count * (prefix_size + size))
        end = self.objects_at + np.where(with_data, with_sizes, count * prefix_size)
        return end, unknown, one_by_one


def _headers(
    found: list[tuple[Ints, ...]], status: Ints, finding: Ints, exact: npt.NDArray[np.bool_]
) -> HeaderRows:
    """The levels' headers in (fragment, order) order, without the fragments left to `walk`."""
    if found:
        columns = [np.concatenate(parts) for parts in zip(*found, strict=True)]
    else:
        columns = [np.zeros(0, dtype=np.int64) for _ in range(8)]
    order = np.argsort(columns[0], kind="stable")
    kept = order[~exact[columns[0][order]]]
    row, group, variation, qualifier, start, stop, count, first_index = (column[kept] for column in columns)
    return HeaderRows(
        row, group, variation, qualifier, start, stop, count, first_index, status, finding, exact
    )
