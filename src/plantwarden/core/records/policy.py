"""The storage policy: what is kept in full and what is kept as per-minute aggregates.

Every write, program, control, diagnostic, other and malformed operation is kept in full. Read
polling (the bulk of plant traffic) is kept as per-minute aggregates with counts: one row per
minute and (endpoints, protocol, function, unit, address, quantity), counting requests and
errors, with the first and last time seen. The source port is dropped from aggregates, so that
a poller that reconnects stays one series.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plantwarden.core.records.batch import Array, RecordBatch
from plantwarden.core.records.schema import PROTOCOL_RECORDS, READ_MINUTES, TEXT, Operation

MINUTE_NS = 60_000_000_000
_GROUP_COLUMNS = (
    "site",
    "segment",
    "src_addr",
    "dst_addr",
    "dst_port",
    "transport",
    "protocol",
    "function",
    "unit",
    "address",
    "quantity",
)


def apply_policy(batch: RecordBatch) -> list[RecordBatch]:
    """The batches to store for one incoming batch (empty ones left out)."""
    if batch.kind is not PROTOCOL_RECORDS:
        return [batch] if len(batch) else []
    reads = batch.columns["operation"] == Operation.READ
    out = []
    if not bool(np.all(reads)):
        out.append(batch.take(~reads))
    if bool(np.any(reads)):
        out.append(aggregate_reads(batch.take(reads)))
    return out


def aggregate_reads(reads: RecordBatch) -> RecordBatch:
    """Per-minute aggregates of read requests."""
    minutes = reads.columns["ts"] // MINUTE_NS * MINUTE_NS
    grouping = _Grouping([minutes, *(reads.columns[name] for name in _GROUP_COLUMNS)])
    first = grouping.first
    errors = (reads.columns["status"] != 0).astype(np.int64)
    columns: dict[str, Array] = {name: reads.columns[name][first] for name in _GROUP_COLUMNS}
    columns.update(
        ts=minutes[first],
        src_port=np.zeros(len(first), dtype=np.uint16),
        requests=grouping.sum(np.ones(len(reads), dtype=np.int64)),
        errors=grouping.sum(errors),
        first_ts=grouping.reduce(np.minimum, reads.columns["ts"]),
        last_ts=grouping.reduce(np.maximum, reads.columns["ts"]),
    )
    return RecordBatch(READ_MINUTES, columns).sorted_by_time()


def merge_read_minutes(partials: RecordBatch) -> RecordBatch:
    """Merge aggregates of the same minute and key written by different batches."""
    grouping = _Grouping([partials.columns[name] for name in ("ts", *_GROUP_COLUMNS)])
    if len(grouping.first) == len(partials):
        return partials.sorted_by_time()
    columns = {name: values[grouping.first] for name, values in partials.columns.items()}
    columns["requests"] = grouping.sum(partials.columns["requests"])
    columns["errors"] = grouping.sum(partials.columns["errors"])
    columns["first_ts"] = grouping.reduce(np.minimum, partials.columns["first_ts"])
    columns["last_ts"] = grouping.reduce(np.maximum, partials.columns["last_ts"])
    return RecordBatch(READ_MINUTES, columns).sorted_by_time()


class _Grouping:
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
