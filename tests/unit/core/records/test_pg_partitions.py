"""The PostgreSQL backend of the records plane, on the real server (each test in its own schema)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from plantwarden.core.errors import Conflict
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import Chunk
from plantwarden.core.records.pg_partitions import PostgresPartitions, partition_id
from plantwarden.core.records.plane import RecordQuery, RecordWriter, enforce_retention, query
from plantwarden.core.records.schema import (
    TELEMETRY,
    Operation,
    Protocol,
    address,
)
from tests.conftest import PostgresSchemas
from tests.unit.core.records import factories

pytestmark = pytest.mark.postgres

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
BASE_NS = 1_790_000_000 * SECOND_NS - 1_790_000_000 * SECOND_NS % (3600 * SECOND_NS)  # hour-aligned
EVERYTHING = (0, 2**62)


def blobs_of(chunks: Iterable[tuple[int, int, bytes]]) -> list[bytes]:
    """The blobs of `backend.chunks(...)`, in the order given."""
    return [blob for _, _, blob in chunks]


def protocol_batch(n: int, *, reads: bool = False, step_ns: int = 10_000_000, **options: int) -> RecordBatch:
    """The shared test records: all reads, or none."""
    return factories.protocol_batch(n, read_share=1.0 if reads else 0.0, step_ns=step_ns, **options)


@pytest.fixture
def backend(postgres: PostgresSchemas) -> PostgresPartitions:
    """The PostgreSQL backend in a schema of the test's own."""
    return PostgresPartitions(postgres.store().engine)


def chunk(ts: int, payload: bytes = b"x" * 1000) -> Chunk:
    return Chunk(ts, ts, 1, payload, [b"k"])


def chunk_ids(backend: PostgresPartitions, name: str) -> list[int]:
    with backend.engine.connect() as connection:
        column = sa.column("id", sa.BigInteger)
        return list(
            connection.execute(sa.select(column).select_from(sa.table(name)).order_by(column)).scalars()
        )


def test_records_come_back_as_written(backend: PostgresPartitions) -> None:
    batch = protocol_batch(30_000, step_ns=200_000_000)  # 100 minutes: two hourly partitions
    with RecordWriter(backend, "sensor-1", chunk_rows=4096) as writer:
        report = writer.write(batch)
    assert (report.records, report.stored) == (30_000, 30_000)
    refs = backend.partitions()
    assert [(r.kind, r.writer, r.start_ns) for r in refs] == [
        ("protocol", "sensor-1", BASE_NS),
        ("protocol", "sensor-1", BASE_NS + 3600 * SECOND_NS),
    ]
    assert all(r.location.startswith("records_part_") for r in refs)
    found = query(backend, RecordQuery("protocol", *EVERYTHING))
    for column in batch.kind.names:
        assert np.array_equal(found[column], batch[column]), column


def test_queries_filter_by_time_asset_protocol_and_operation(backend: PostgresPartitions) -> None:
    batch = protocol_batch(30_000, step_ns=200_000_000)
    with RecordWriter(backend, "sensor-1", chunk_rows=512) as writer:
        writer.write(batch)
    plc = address("10.0.1.3")
    start, end = BASE_NS + 600 * SECOND_NS, BASE_NS + 4200 * SECOND_NS
    request = RecordQuery(
        "protocol", start, end, asset=plc, protocol=Protocol.MODBUS, operation=Operation.CONTROL
    )
    found = query(backend, request)
    times = batch["ts"]
    expected = (
        (times >= start)
        & (times < end)
        & ((batch["dst_addr"] == plc) | (batch["src_addr"] == plc))
        & (batch["protocol"] == Protocol.MODBUS)
        & (batch["operation"] == Operation.CONTROL)
    )
    assert len(found) == int(expected.sum()) > 0
    assert np.array_equal(found["ts"], times[expected])
    assert len(query(backend, RecordQuery("protocol", *EVERYTHING, asset=address("10.9.9.9")))) == 0


def test_newest_first_with_a_limit_returns_the_newest(backend: PostgresPartitions) -> None:
    batch = protocol_batch(20_000, step_ns=500_000_000)
    with RecordWriter(backend, "sensor-1", chunk_rows=1000) as writer:
        writer.write(batch)
    found = query(backend, RecordQuery("protocol", *EVERYTHING, limit=25, newest_first=True))
    assert np.array_equal(found["ts"], batch["ts"][::-1][:25])
    ref = backend.partitions()[-1]
    blobs = list(backend.chunks(ref, *EVERYTHING, [], newest_first=True))
    assert blobs == list(backend.chunks(ref, *EVERYTHING, []))[::-1]


def test_a_second_writer_on_the_same_partition_is_refused(backend: PostgresPartitions) -> None:
    first = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + 3600 * SECOND_NS)
    with pytest.raises(Conflict, match="already open"):
        backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + 3600 * SECOND_NS)
    other = backend.open_writer("protocol", "sensor-2", BASE_NS, BASE_NS + 3600 * SECOND_NS)
    first.close()
    again = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + 3600 * SECOND_NS)
    assert again.ref == first.ref
    for writer in (other, again):
        writer.close()
    first.close()  # closing twice is harmless


def test_writers_racing_to_create_a_partition_get_one_catalog_row(backend: PostgresPartitions) -> None:
    outcomes: list[str] = []
    writers = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            writers.append(backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS))
            outcomes.append("opened")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["opened", "refused", "refused", "refused"]
    assert len(backend.partitions()) == 1
    writers[0].close()


def test_partitions_of_other_schemas_are_locked_apart(postgres: PostgresSchemas) -> None:
    one, two = (PostgresPartitions(postgres.store().engine) for _ in range(2))
    first = one.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    second = two.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    assert partition_id(first.ref) == partition_id(second.ref) == 1  # same catalog id, no conflict
    assert not two.drop(second.ref)
    first.close()
    assert not two.drop(second.ref)
    second.close()
    assert two.drop(second.ref) and one.partitions() == [first.ref]
    assert one.drop(first.ref)


def test_an_open_partition_is_never_dropped(backend: PostgresPartitions) -> None:
    writer = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    writer.append([chunk(BASE_NS)])
    assert backend.drop(writer.ref) is False
    assert backend.partitions() == [writer.ref]
    assert blobs_of(backend.chunks(writer.ref, *EVERYTHING, [])) == [b"x" * 1000]
    writer.close()
    assert backend.drop(writer.ref) is True
    assert backend.partitions() == [] and backend.size(writer.ref) == 0
    assert blobs_of(backend.chunks(writer.ref, *EVERYTHING, [])) == []
    assert backend.drop(writer.ref) is True  # already gone


def test_reading_an_empty_backend_finds_nothing(backend: PostgresPartitions) -> None:
    assert backend.partitions() == []
    assert len(query(backend, RecordQuery("protocol", *EVERYTHING))) == 0
    assert enforce_retention(backend, now_ns=BASE_NS, max_age_ns=1, max_bytes=0).dropped == []


def fill(backend: PostgresPartitions, minutes: int) -> None:
    for minute in range(minutes):
        start = BASE_NS + minute * MINUTE_NS
        writer = backend.open_writer("protocol", "sensor-1", start, start + MINUTE_NS)
        writer.append([chunk(start, bytes(np.random.default_rng(minute).bytes(100_000)))])
        writer.close()


def test_retention_drops_the_oldest_partitions_by_size_never_an_open_one(backend: PostgresPartitions) -> None:
    fill(backend, 4)
    refs = backend.partitions()
    sizes = [backend.size(ref) for ref in refs]
    assert all(size > 100_000 for size in sizes)
    oldest = backend.open_writer("protocol", "sensor-1", refs[0].start_ns, refs[0].end_ns)
    report = enforce_retention(backend, now_ns=BASE_NS, max_age_ns=None, max_bytes=sum(sizes[2:]))
    assert report.dropped == refs[1:3] and report.skipped_open == 1
    assert backend.partitions() == [refs[0], refs[3]]
    oldest.close()


def test_retention_drops_partitions_by_age(backend: PostgresPartitions) -> None:
    fill(backend, 4)
    refs = backend.partitions()
    report = enforce_retention(
        backend, now_ns=BASE_NS + 5 * MINUTE_NS, max_age_ns=3 * MINUTE_NS, max_bytes=None
    )
    assert report.dropped == refs[:2]
    assert backend.partitions() == refs[2:]
    with backend.engine.connect() as connection:
        tables = connection.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        ).scalar_one()
    assert tables == 1 + 2  # the catalog and the two partitions left


def test_a_partition_survives_close_and_reopen_and_ids_continue(backend: PostgresPartitions) -> None:
    writer = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    writer.append([chunk(BASE_NS + i, bytes([i])) for i in range(3)])
    writer.close()
    reopened = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    reopened.append([chunk(BASE_NS + 3, b"\x03"), chunk(BASE_NS + 4, b"\x04")])
    reopened.close()
    assert reopened.ref == writer.ref
    assert chunk_ids(backend, writer.ref.location) == [1, 2, 3, 4, 5]
    assert blobs_of(backend.chunks(writer.ref, *EVERYTHING, [])) == [bytes([i]) for i in range(5)]
    assert blobs_of(backend.chunks(writer.ref, BASE_NS + 1, BASE_NS + 3, [])) == [b"\x01", b"\x02"]


def test_a_failed_append_stores_nothing_and_the_writer_goes_on(backend: PostgresPartitions) -> None:
    writer = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    with pytest.raises(OverflowError):
        writer.append([chunk(BASE_NS, b"a"), chunk(2**70, b"b")])
    writer.append([chunk(BASE_NS, b"c")])
    writer.close()
    assert chunk_ids(backend, writer.ref.location) == [1]


def test_chunks_match_any_key_of_every_group(backend: PostgresPartitions) -> None:
    writer = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    keyed = [(b"a", [b"\x00a", b"p1"]), (b"b", [b"\x00b", b"p1"]), (b"c", [b"\x00a", b"p2"])]
    writer.append([Chunk(BASE_NS, BASE_NS, 1, data, keys) for data, keys in keyed])
    writer.close()

    def select(*groups: list[bytes]) -> list[bytes]:
        return blobs_of(backend.chunks(writer.ref, *EVERYTHING, list(groups)))

    assert select([b"\x00a"]) == [b"a", b"c"]
    assert select([b"\x00a", b"\x00b"], [b"p1"]) == [b"a", b"b"]
    assert select([b"\x00b"], [b"p2"]) == []
    assert select([b"missing"]) == []


def test_read_polling_is_stored_and_merged_as_read_minutes(backend: PostgresPartitions) -> None:
    first = protocol_batch(6_000, reads=True, seed=1)  # one minute of polling, in two batches
    second = protocol_batch(6_000, reads=True, seed=1, start_ns=BASE_NS + 5)
    with RecordWriter(backend, "sensor-1") as writer:
        writer.write(first)
        writer.write(second)
    assert [r.kind for r in backend.partitions()] == ["protocol_read_minutes"]
    minutes = query(backend, RecordQuery("protocol_read_minutes", *EVERYTHING, protocol=Protocol.S7COMM))
    assert int(minutes["requests"].sum()) == 2 * int((first["protocol"] == Protocol.S7COMM).sum())
    assert len(query(backend, RecordQuery("protocol", *EVERYTHING))) == 0


def test_telemetry_is_stored_and_found_by_device_and_variable(backend: PostgresPartitions) -> None:
    n = 5_000
    rng = np.random.default_rng(3)
    batch = RecordBatch.build(
        TELEMETRY,
        {
            "ts": BASE_NS + np.arange(n, dtype=np.int64) * SECOND_NS,
            "site": "plant-a",
            "device": rng.choice(np.array(["pump-1", "tank-2"], dtype=object), n),
            "variable": rng.choice(np.array(["pressure", "level"], dtype=object), n),
            "value": rng.normal(5.0, 1.0, n),
            "quality": 0,
        },
    )
    with RecordWriter(backend, "historian", chunk_rows=500) as writer:
        writer.write(batch)
    found = query(backend, RecordQuery("telemetry", *EVERYTHING, device="tank-2", variable="level"))
    expected = (batch["device"] == "tank-2") & (batch["variable"] == "level")
    assert len(found) == int(expected.sum()) > 0
    assert np.array_equal(found["value"], batch["value"][expected])


def test_chunk_blobs_are_compressed_with_lz4_where_the_server_has_it(backend: PostgresPartitions) -> None:
    writer = backend.open_writer("protocol", "sensor-1", BASE_NS, BASE_NS + MINUTE_NS)
    writer.close()
    with backend.engine.connect() as connection:
        lz4 = connection.execute(
            text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar_one()
        method = connection.execute(
            text("SELECT attcompression FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum = 5"),
            {"t": writer.ref.location},
        ).scalar_one()
    assert method == ("l" if lz4 else "")
