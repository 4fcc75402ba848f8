"""Writing, querying and retiring records: the records plane over a partition backend."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records import chunks
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import Chunk, PartitionBackend, PartitionRef, PartitionWriter
from plantwarden.core.records.policy import apply_policy, merge_read_minutes
from plantwarden.core.records.schema import KINDS, READ_MINUTES, Operation, RecordKind

log = logging.getLogger(__name__)


@dataclass
class WriteReport:
    """What one `write` did: records in, rows stored (after the storage policy), chunks written."""

    records: int = 0
    stored: int = 0
    chunks: int = 0


class RecordWriter:
    """The one writer of its partitions: policy, chunking and bulk appends, batch by batch.

    Keeps up to `max_open` partitions per kind open (late records reopen an older partition);
    `close()` makes every partition durable and compact and releases the writer's locks.
    """

    def __init__(
        self,
        backend: PartitionBackend,
        name: str,
        *,
        partition_seconds: int = 3600,
        chunk_rows: int = 16384,
        max_open: int = 3,
    ) -> None:
        self.backend = backend
        self.name = name
        self.partition_ns = partition_seconds * SECOND_NS
        self.chunk_rows = chunk_rows
        self.max_open = max_open
        self._open: dict[tuple[str, int], PartitionWriter] = {}

    def write(self, batch: RecordBatch) -> WriteReport:
        """Store one batch (any length, any time order)."""
        report = WriteReport(records=len(batch))
        for stored in apply_policy(batch):
            stored = stored.sorted_by_time()
            report.stored += len(stored)
            for start, part in self._by_partition(stored):
                pieces = [
                    part.take(slice(i, i + self.chunk_rows)) for i in range(0, len(part), self.chunk_rows)
                ]
                self._partition(stored.kind.name, start).append([_chunk(piece) for piece in pieces])
                report.chunks += len(pieces)
        return report

    def _by_partition(self, batch: RecordBatch) -> list[tuple[int, RecordBatch]]:
        times = batch.columns[batch.kind.time_column]
        starts = times // self.partition_ns * self.partition_ns
        if starts[0] == starts[-1]:
            return [(int(starts[0]), batch)]
        bounds = np.flatnonzero(starts[1:] != starts[:-1]) + 1
        edges = [0, *bounds.tolist(), len(batch)]
        return [(int(starts[a]), batch.take(slice(a, b))) for a, b in itertools.pairwise(edges)]

    def _partition(self, kind: str, start: int) -> PartitionWriter:
        key = (kind, start)
        if key not in self._open:
            same_kind = sorted(k for k in self._open if k[0] == kind)
            while len(same_kind) >= self.max_open:
                self._open.pop(same_kind.pop(0)).close()
            self._open[key] = self.backend.open_writer(kind, self.name, start, start + self.partition_ns)
        return self._open[key]

    def close(self) -> None:
        """Close every open partition (all of them, even when one fails to close)."""
        failures = []
        while self._open:
            try:
                self._open.popitem()[1].close()
            except Exception as error:  # close the others, then report
                failures.append(error)
        if failures:
            raise failures[0]

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _chunk(piece: RecordBatch) -> Chunk:
    times = piece.columns[piece.kind.time_column]
    data, keys = chunks.encode_with_keys(piece)
    return Chunk(int(times[0]), int(times[-1]), len(piece), data, keys)


@dataclass(frozen=True)
class RecordQuery:
    """Which records to read: a time interval [start_ns, end_ns) and optional filters.

    `asset` matches the source or the destination address (16 bytes, see `schema.address`);
    `device` and `variable` apply to telemetry.
    """

    kind: str
    start_ns: int
    end_ns: int
    site: str | None = None
    asset: bytes | None = None
    protocol: int | None = None
    operation: int | None = None
    device: str | None = None
    variable: str | None = None
    limit: int | None = None
    newest_first: bool = False


def query(backend: PartitionBackend, request: RecordQuery) -> RecordBatch:
    """Records matching `request`, in time order (or newest first), at most `limit`. A filter the
    kind has no field for is `InvalidInput` (ignored, it would return records it does not match)."""
    kind = KINDS[request.kind]
    request = _applicable(kind, request)
    groups = _key_groups(kind, request)
    refs = [
        r
        for r in backend.partitions(kind.name)
        if r.end_ns > request.start_ns and r.start_ns < request.end_ns
    ]
    if request.limit is None or kind is READ_MINUTES:  # aggregates merge across chunks: read them whole
        pieces = [b for ref in refs for b in _read_partition(backend, kind, ref, request, groups)]
        result = RecordBatch.concat(kind, pieces)
        result = merge_read_minutes(result) if kind is READ_MINUTES else result.sorted_by_time()
    else:
        result = _read_limited(backend, kind, refs, request, groups, request.limit)
    if request.newest_first:
        result = result.take(slice(None, None, -1))
    return result.take(slice(0, request.limit)) if request.limit is not None else result


FILTERS = ("site", "asset", "protocol", "operation", "device", "variable")


def filters_of(kind: RecordKind) -> list[str]:
    """The filters of `RecordQuery` that records of `kind` have a field for."""
    names = set(kind.names) | ({"asset"} if "src_addr" in kind.names else set())
    return [name for name in FILTERS if name in names or (kind is READ_MINUTES and name == "operation")]


def _applicable(kind: RecordKind, request: RecordQuery) -> RecordQuery:
    """`request`, checked: every filter it sets is one of `kind`'s. Read minutes hold reads only,
    so an operation filter of reads is no filter there, and another operation a mistake."""
    given = [name for name in FILTERS if getattr(request, name) is not None]
    wrong = [name for name in given if name not in filters_of(kind)]
    if kind is READ_MINUTES and request.operation is not None:
        if request.operation != Operation.READ:
            wrong.append("operation")
        request = replace(request, operation=None)
    if wrong:
        raise InvalidInput(
            f"records of kind {kind.name} cannot be filtered by {' or '.join(wrong)}"
            + (" (they are all reads)" if "operation" in wrong and kind is READ_MINUTES else "")
            + f": their filters are {', '.join(filters_of(kind))}"
        )
    return request


def _read_limited(
    backend: PartitionBackend,
    kind: RecordKind,
    refs: list[PartitionRef],
    request: RecordQuery,
    groups: list[list[bytes]],
    limit: int,
) -> RecordBatch:
    """Read partitions and chunks in time order, stopping once nothing left can be among the
    `limit` first (or newest) records: several writers and late records are handled."""
    newest = request.newest_first
    refs = sorted(refs, key=lambda r: -r.end_ns if newest else r.start_ns)
    found = _Found(kind, limit, newest)
    for ref in refs:
        if found.cannot_improve(ref.end_ns if newest else ref.start_ns):
            break
        for batch in _read_partition(backend, kind, ref, request, groups, found):
            found.add(batch)
    return found.result()


class _Found:
    """The records found so far, and whether anything with a given bound could still count."""

    def __init__(self, kind: RecordKind, limit: int, newest: bool) -> None:
        self.kind, self.limit, self.newest = kind, limit, newest
        self.batches: list[RecordBatch] = []
        self.count = 0

    def add(self, batch: RecordBatch) -> None:
        if len(batch):
            self.batches.append(batch)
            self.count += len(batch)
            if len(self.batches) > 8:  # keep only what can still be in the answer
                self.batches = [self.result()]
                self.count = len(self.batches[0])

    def cannot_improve(self, bound: int) -> bool:
        """True when a record at time `bound` (a chunk's ts_max newest first, its ts_min oldest
        first) would not be among the `limit` found so far."""
        if self.count < self.limit:
            return False
        times = np.concatenate([b[self.kind.time_column] for b in self.batches])
        if self.newest:
            return bool(bound < np.partition(times, -self.limit)[-self.limit])
        return bool(bound > np.partition(times, self.limit - 1)[self.limit - 1])

    def result(self) -> RecordBatch:
        everything = RecordBatch.concat(self.kind, self.batches).sorted_by_time()
        return everything.take(slice(-self.limit, None) if self.newest else slice(0, self.limit))


def _read_partition(
    backend: PartitionBackend,
    kind: RecordKind,
    ref: PartitionRef,
    request: RecordQuery,
    groups: list[list[bytes]],
    found: _Found | None = None,
) -> Iterator[RecordBatch]:
    blobs = backend.chunks(ref, request.start_ns, request.end_ns, groups, newest_first=request.newest_first)
    for ts_min, ts_max, blob in blobs:
        if found is not None and found.cannot_improve(ts_max if request.newest_first else ts_min):
            return
        batch = chunks.decode(kind, blob)
        yield batch.take(_mask(batch, request))


def _key_groups(kind: RecordKind, request: RecordQuery) -> list[list[bytes]]:
    """Index keys that narrow the chunks to read: every group must match, any key of a group."""
    groups: list[list[bytes]] = []
    if request.asset is not None and "src_addr" in kind.indexed:
        groups.append(
            [chunks.key(kind, "src_addr", request.asset), chunks.key(kind, "dst_addr", request.asset)]
        )
    for column in ("protocol", "operation", "device", "variable"):
        value = getattr(request, column)
        if value is not None and column in kind.indexed:
            groups.append([chunks.key(kind, column, value)])
    return groups


def _mask(batch: RecordBatch, request: RecordQuery) -> np.ndarray:
    times = batch.columns[batch.kind.time_column]
    mask = (times >= request.start_ns) & (times < request.end_ns)
    if request.asset is not None:
        asset = np.array([request.asset.ljust(16, b"\0")], dtype="S16")[0]
        mask &= (batch.columns["src_addr"] == asset) | (batch.columns["dst_addr"] == asset)
    for column in ("site", "protocol", "operation", "device", "variable"):
        value = getattr(request, column)
        if value is not None and column in batch.columns:
            mask &= batch.columns[column] == value
    return mask


@dataclass
class RetentionReport:
    """Partitions dropped, and the size left."""

    dropped: list[PartitionRef] = field(default_factory=list)
    kept_bytes: int = 0
    skipped_open: int = 0


def enforce_retention(
    backend: PartitionBackend, *, now_ns: int, max_age_ns: int | None, max_bytes: int | None
) -> RetentionReport:
    """Drop whole partitions: those older than `max_age_ns`, then the oldest until the total is
    at most `max_bytes`. A partition open for writing is never dropped."""
    report = RetentionReport()
    sized = [(ref, backend.size(ref)) for ref in backend.partitions()]
    total = sum(size for _, size in sized)
    for ref, size in sized:  # oldest first
        too_old = max_age_ns is not None and ref.end_ns <= now_ns - max_age_ns
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            continue
        if backend.drop(ref):
            report.dropped.append(ref)
            total -= size
        else:
            report.skipped_open += 1
    report.kept_bytes = total
    if report.dropped:
        log.info("retention dropped %d partitions; %d bytes kept", len(report.dropped), total)
    return report


def describe(refs: Sequence[PartitionRef]) -> list[str]:
    """One line per partition, for the command line."""
    return [f"{r.kind}\t{r.writer}\t{r.start_ns // SECOND_NS}\t{r.location}" for r in refs]
