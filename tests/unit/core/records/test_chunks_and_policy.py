from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records import chunks
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.policy import MINUTE_NS, aggregate_reads, apply_policy, merge_read_minutes
from plantwarden.core.records.schema import (
    PROTOCOL_RECORDS,
    READ_MINUTES,
    Operation,
    address,
    address_text,
    ipv4_addresses,
)
from tests.unit.core.records.factories import protocol_batch, telemetry_batch


def same(a: RecordBatch, b: RecordBatch) -> bool:
    return a.kind is b.kind and all(
        np.array_equal(a[c.name], b[c.name], equal_nan=a[c.name].dtype.kind == "f") for c in a.kind.columns
    )


@pytest.mark.parametrize("batch", [protocol_batch(5000), telemetry_batch(500), protocol_batch(0)])
def test_chunks_round_trip(batch: RecordBatch) -> None:
    assert same(chunks.decode(batch.kind, chunks.encode(batch)), batch)


def test_addresses_keep_their_trailing_zero_bytes() -> None:
    packed = ipv4_addresses(np.array([0x0A000000, 0x0A000100], dtype=np.uint32))
    assert [address_text(bytes(row)) for row in packed.view(np.uint8).reshape(-1, 16)] == [
        "10.0.0.0",
        "10.0.1.0",
    ]
    assert address("10.0.0.0") == bytes(packed.view(np.uint8)[:16])
    batch = protocol_batch(10)
    columns = dict(batch.columns)
    columns["src_addr"] = packed.repeat(5)
    keys = chunks.keys_of(RecordBatch(PROTOCOL_RECORDS, columns))
    assert chunks.key(PROTOCOL_RECORDS, "src_addr", address("10.0.0.0")) in keys


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_decodes_silently(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        chunks.decode(PROTOCOL_RECORDS, data)


def test_a_truncated_chunk_is_refused() -> None:
    blob = chunks.encode(protocol_batch(100))
    with pytest.raises(InvalidInput, match="damaged protocol chunk"):
        chunks.decode(PROTOCOL_RECORDS, blob[:-7])


def test_batches_check_their_columns() -> None:
    with pytest.raises(InvalidInput, match="missing columns"):
        RecordBatch.build(PROTOCOL_RECORDS, {"ts": [1]})
    columns = dict(protocol_batch(3).columns)
    columns["ts"] = np.arange(4)
    with pytest.raises(InvalidInput, match="differ in length"):
        RecordBatch.build(PROTOCOL_RECORDS, columns)


# The aggregate key as the storage policy documents it (written out here, not imported, so that
# the test is an independent reference).
AGGREGATE_KEYS = (
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


def reference_aggregates(batch: RecordBatch) -> dict[tuple[object, ...], tuple[int, int, int, int]]:
    """The storage policy's read aggregates, computed the slow and obvious way."""
    found: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 2**63 - 1, -(2**63)])
    for row in batch.rows():
        if row["operation"] != Operation.READ:
            continue
        entry = found[(row["ts"] // MINUTE_NS * MINUTE_NS, *(row[k] for k in AGGREGATE_KEYS))]
        entry[0] += 1
        entry[1] += row["status"] > 0 or row["status"] == -1  # an exception, or no answer seen
        entry[2] = min(entry[2], row["ts"])
        entry[3] = max(entry[3], row["ts"])
    return {k: (v[0], v[1], v[2], v[3]) for k, v in found.items()}


def as_mapping(aggregates: RecordBatch) -> dict[tuple[object, ...], tuple[int, int, int, int]]:
    return {
        tuple(row[k] for k in ("ts", *AGGREGATE_KEYS)): (
            row["requests"],
            row["errors"],
            row["first_ts"],
            row["last_ts"],
        )
        for row in aggregates.rows()
    }


def test_reads_become_per_minute_aggregates_and_everything_else_stays_whole() -> None:
    batch = protocol_batch(20_000, step_ns=10_000_000, read_share=0.8)
    full, minutes = apply_policy(batch)
    assert full.kind is PROTOCOL_RECORDS and minutes.kind is READ_MINUTES
    reads = batch["operation"] == Operation.READ
    assert len(full) == int((~reads).sum())
    assert not np.any(full["operation"] == Operation.READ)
    assert int(minutes["requests"].sum()) == int(reads.sum())
    assert as_mapping(minutes) == reference_aggregates(batch)
    assert np.all(minutes["src_port"] == 0)


def test_partial_aggregates_merge_into_the_same_result() -> None:
    batch = protocol_batch(6000, step_ns=20_000_000, read_share=1.0)
    whole = aggregate_reads(batch)
    halves = [aggregate_reads(batch.take(slice(0, 2500))), aggregate_reads(batch.take(slice(2500, None)))]
    merged = merge_read_minutes(RecordBatch.concat(READ_MINUTES, halves))
    assert as_mapping(merged) == as_mapping(whole)


def test_a_one_way_read_is_no_error_but_an_unanswered_one_is() -> None:
    batch = protocol_batch(6000, step_ns=20_000_000, read_share=1.0)
    status = np.resize(np.array([0, 2, -1, -2], dtype=np.int16), len(batch))  # -2: no answer expected
    mixed = RecordBatch(PROTOCOL_RECORDS, {**batch.columns, "status": status})
    minutes = aggregate_reads(mixed)
    assert int(minutes["requests"].sum()) == 6000
    assert int(minutes["errors"].sum()) == 3000  # the exceptions and the unanswered, not the one-way
    assert as_mapping(minutes) == reference_aggregates(mixed)


def test_other_kinds_pass_the_policy_unchanged() -> None:
    batch = telemetry_batch(100)
    assert apply_policy(batch) == [batch]
    assert apply_policy(RecordBatch.empty("telemetry")) == []
