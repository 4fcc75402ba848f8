"""The storage policy: what is kept in full and what is kept as per-minute aggregates.

Every write, program, control, diagnostic, other and malformed operation is kept in full. Read
polling (the bulk of plant traffic) is kept as per-minute aggregates with counts: one row per
minute and (endpoints, protocol, function, unit, address, quantity), counting requests and
errors (answered with an exception, status > 0, or not at all, status -1; a one-way request,
status -2, expected no answer and is not an error), with the first and last time seen. The
source port is dropped from aggregates, so that a poller that reconnects stays one series.
"""

from __future__ import annotations

import numpy as np

from plantwarden.core.records.batch import Array, RecordBatch
from plantwarden.core.records.grouping import Grouping
from plantwarden.core.records.schema import NO_ANSWER_SEEN, PROTOCOL_RECORDS, READ_MINUTES, Operation

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
    grouping = Grouping([minutes, *(reads.columns[name] for name in _GROUP_COLUMNS)])
    first = grouping.first
    status = reads.columns["status"]
    errors = ((status > 0) | (status == NO_ANSWER_SEEN)).astype(np.int64)
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
    grouping = Grouping([partials.columns[name] for name in ("ts", *_GROUP_COLUMNS)])
    if len(grouping.first) == len(partials):
        return partials.sorted_by_time()
    columns = {name: values[grouping.first] for name, values in partials.columns.items()}
    columns["requests"] = grouping.sum(partials.columns["requests"])
    columns["errors"] = grouping.sum(partials.columns["errors"])
    columns["first_ts"] = grouping.reduce(np.minimum, partials.columns["first_ts"])
    columns["last_ts"] = grouping.reduce(np.maximum, partials.columns["last_ts"])
    return RecordBatch(READ_MINUTES, columns).sorted_by_time()
