from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from plantwarden.core.errors import Conflict, InvalidInput
from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordQuery, RecordWriter, enforce_retention, query
from plantwarden.core.records.schema import Operation, Protocol, address
from tests.unit.core.records.factories import BASE_NS, protocol_batch, telemetry_batch

HOUR_NS = 3600 * 1_000_000_000
EVERYTHING = (0, 2**62)


@pytest.fixture
def backend(tmp_path: Path) -> SQLitePartitions:
    return SQLitePartitions(tmp_path / "records", wal_limit_bytes=1024 * 1024)


def test_records_come_back_as_written(backend: SQLitePartitions) -> None:
    batch = protocol_batch(50_000, read_share=0.0)
    with RecordWriter(backend, "sensor-1", chunk_rows=4096) as writer:
        report = writer.write(batch)
    assert (report.records, report.stored, report.chunks) == (50_000, 50_000, 13)
    found = query(backend, RecordQuery("protocol", *EVERYTHING))
    assert len(found) == 50_000
    for column in batch.kind.names:
        assert np.array_equal(found[column], batch[column]), column


def test_queries_filter_by_time_asset_protocol_and_operation(backend: SQLitePartitions) -> None:
    batch = protocol_batch(30_000, read_share=0.0, step_ns=200_000_000)  # spans two hourly partitions
    with RecordWriter(backend, "sensor-1", chunk_rows=2048) as writer:
        writer.write(batch)
    assert len(backend.partitions("protocol")) == 2
    plc = address("10.0.1.3")
    start, end = BASE_NS + 600 * 10**9, BASE_NS + 4200 * 10**9
    found = query(
        backend,
        RecordQuery("protocol", start, end, asset=plc, protocol=Protocol.MODBUS, operation=Operation.WRITE),
    )
    times, dst, src = batch["ts"], batch["dst_addr"], batch["src_addr"]
    expected = (
        (times >= start)
        & (times < end)
        & ((dst == plc) | (src == plc))
        & (batch["protocol"] == Protocol.MODBUS)
        & (batch["operation"] == Operation.WRITE)
    )
    assert len(found) == int(expected.sum()) > 0
    assert np.array_equal(found["ts"], times[expected])


def test_newest_first_with_a_limit_reads_only_the_newest(backend: SQLitePartitions) -> None:
    batch = protocol_batch(20_000, read_share=0.0, step_ns=500_000_000)
    with RecordWriter(backend, "sensor-1", chunk_rows=1000) as writer:
        writer.write(batch)
    found = query(backend, RecordQuery("protocol", *EVERYTHING, limit=25, newest_first=True))
    assert np.array_equal(found["ts"], batch["ts"][::-1][:25])


def test_reads_are_stored_as_aggregates_and_merge_across_batches(backend: SQLitePartitions) -> None:
    batch = protocol_batch(10_000, read_share=1.0, step_ns=5_000_000)
    with RecordWriter(backend, "sensor-1") as writer:
        writer.write(batch.take(slice(0, 4000)))
        writer.write(batch.take(slice(4000, None)))
    assert len(query(backend, RecordQuery("protocol", *EVERYTHING))) == 0
    minutes = query(backend, RecordQuery("protocol_read_minutes", *EVERYTHING))
    assert int(minutes["requests"].sum()) == 10_000
    one_plc = query(backend, RecordQuery("protocol_read_minutes", *EVERYTHING, asset=address("10.0.1.0")))
    assert int(one_plc["requests"].sum()) == int((batch["dst_addr"] == address("10.0.1.0")).sum())


def test_telemetry_is_queried_by_device_and_variable(backend: SQLitePartitions) -> None:
    batch = telemetry_batch(3000)
    with RecordWriter(backend, "gateway") as writer:
        writer.write(batch)
    found = query(backend, RecordQuery("telemetry", *EVERYTHING, device="pump-1", variable="pressure"))
    expected = (batch["device"] == "pump-1") & (batch["variable"] == "pressure")
    assert np.array_equal(found["value"], batch["value"][expected])


@pytest.mark.parametrize(
    ("kind", "filters", "problem"),
    [
        ("flows", {"operation": Operation.WRITE}, "records of kind flows cannot be filtered by operation:"),
        ("flows", {"device": "plc-1", "variable": "v"}, "cannot be filtered by device or variable"),
        ("telemetry", {"asset": address("10.0.1.3")}, "telemetry cannot be filtered by asset"),
        ("telemetry", {"protocol": Protocol.MODBUS}, "telemetry cannot be filtered by protocol"),
        ("protocol", {"device": "plc-1"}, "their filters are site, asset, protocol, operation"),
        ("protocol_read_minutes", {"operation": Operation.WRITE}, "by operation (they are all reads)"),
    ],
)
def test_a_filter_the_kind_has_no_field_for_is_refused(
    backend: SQLitePartitions, kind: str, filters: dict[str, object], problem: str
) -> None:
    """It was dropped: `records query flows --operation write` listed every flow as the writes, and
    an asset filter on telemetry raised a KeyError."""
    with pytest.raises(InvalidInput, match=re.escape(problem)):
        query(backend, RecordQuery(kind, *EVERYTHING, **filters))  # type: ignore[arg-type]


def test_read_minutes_are_all_reads(backend: SQLitePartitions) -> None:
    with RecordWriter(backend, "sensor-1") as writer:
        writer.write(protocol_batch(2000, read_share=1.0, step_ns=5_000_000))
    minutes = RecordQuery("protocol_read_minutes", *EVERYTHING)
    reads = RecordQuery("protocol_read_minutes", *EVERYTHING, operation=Operation.READ)
    assert len(query(backend, reads)) == len(query(backend, minutes)) > 0


def test_one_writer_per_partition(backend: SQLitePartitions) -> None:
    with RecordWriter(backend, "sensor-1") as first:
        first.write(protocol_batch(10, read_share=0.0))
        second = RecordWriter(backend, "sensor-1")
        with pytest.raises(Conflict, match="already open by another writer"):
            second.write(protocol_batch(10, read_share=0.0))
        with RecordWriter(backend, "sensor-2") as other:  # another writer has partitions of its own
            other.write(protocol_batch(10, read_share=0.0))
    with pytest.raises(InvalidInput, match="writer name"):
        RecordWriter(backend, "../escape").write(protocol_batch(1, read_share=0.0))


def test_a_reopened_partition_keeps_its_records(backend: SQLitePartitions) -> None:
    for seed in (1, 2):
        with RecordWriter(backend, "sensor-1") as writer:
            writer.write(protocol_batch(1000, seed=seed, read_share=0.0))
    assert len(query(backend, RecordQuery("protocol", *EVERYTHING))) == 2000


def test_retention_by_age_drops_whole_old_partitions(backend: SQLitePartitions) -> None:
    with RecordWriter(backend, "sensor-1", partition_seconds=60) as writer:
        writer.write(protocol_batch(6000, read_share=0.0, step_ns=100_000_000))  # ten minutes
    assert len(backend.partitions()) == 10
    now = BASE_NS + 600 * 10**9
    report = enforce_retention(backend, now_ns=now, max_age_ns=300 * 10**9, max_bytes=None)
    assert len(report.dropped) == 5
    assert min(r.start_ns for r in backend.partitions()) == BASE_NS + 300 * 10**9


def test_retention_by_size_keeps_the_directory_under_its_limit_while_records_arrive(
    backend: SQLitePartitions, tmp_path: Path
) -> None:
    limit = 3 * 1024 * 1024
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_writing() -> None:
        try:
            with RecordWriter(backend, "sensor-1", partition_seconds=10, max_open=1) as writer:
                for round_number in range(400):
                    if stop.is_set():
                        return
                    start = BASE_NS + round_number * 10 * 10**9
                    writer.write(
                        protocol_batch(
                            2000, seed=round_number, start_ns=start, read_share=0.0, step_ns=5_000_000
                        )
                    )
        except BaseException as error:  # surfaced in the test thread
            errors.append(error)

    writer_thread = threading.Thread(target=keep_writing)
    writer_thread.start()
    peaks, dropped = [], 0
    try:
        for _ in range(40):
            time.sleep(0.05)
            report = enforce_retention(backend, now_ns=BASE_NS, max_age_ns=None, max_bytes=limit)
            peaks.append(report.kept_bytes)
            dropped += len(report.dropped)
    finally:
        stop.set()
        writer_thread.join(timeout=60)
    assert not errors
    final = enforce_retention(backend, now_ns=BASE_NS, max_age_ns=None, max_bytes=limit)
    directory = sum(p.stat().st_size for p in (tmp_path / "records").rglob("*") if p.is_file())
    assert directory <= limit
    assert final.kept_bytes <= limit
    assert max(peaks) <= limit + 1024 * 1024  # at most the one partition open for writing over
    assert dropped > 10  # records kept arriving, and the oldest partitions kept going


def test_the_write_ahead_log_stays_small_under_constant_readers(backend: SQLitePartitions) -> None:
    stop = threading.Event()
    reads = 0

    def keep_reading() -> None:
        nonlocal reads
        while not stop.is_set():
            query(backend, RecordQuery("protocol", *EVERYTHING, limit=10, newest_first=True))
            reads += 1

    readers = [threading.Thread(target=keep_reading) for _ in range(2)]
    sizes = []
    with RecordWriter(backend, "sensor-1", partition_seconds=86_400) as writer:
        writer.write(protocol_batch(100, read_share=0.0))
        for thread in readers:
            thread.start()
        try:
            for round_number in range(60):
                start = BASE_NS + (round_number + 1) * 10**9
                writer.write(
                    protocol_batch(5000, seed=round_number, start_ns=start, read_share=0.0, step_ns=1000)
                )
                (partition,) = backend.partitions("protocol")
                wal = Path(partition.location + "-wal")
                sizes.append(wal.stat().st_size if wal.exists() else 0)
        finally:
            stop.set()
            for thread in readers:
                thread.join()
    assert reads > 10
    assert max(sizes) < 4 * 1024 * 1024, sizes
    (partition,) = backend.partitions("protocol")
    # Far more went through the log than it ever held at once (the limit is 1 MB here).
    assert Path(partition.location).stat().st_size > 3 * max(sizes) > 0, (
        max(sizes),
        Path(partition.location).stat().st_size,
    )
    assert not Path(partition.location + "-wal").exists()  # closed partitions leave no log behind


def test_limits_hold_across_writers_and_late_records(backend: SQLitePartitions) -> None:
    early = protocol_batch(3000, seed=1, read_share=0.0, step_ns=1_000_000)
    late = protocol_batch(500, seed=2, read_share=0.0, start_ns=BASE_NS + 10**9, step_ns=100_000)
    newest = protocol_batch(20, seed=3, read_share=0.0, start_ns=BASE_NS + 200 * 10**9)
    with (
        RecordWriter(backend, "alpha", chunk_rows=256) as alpha,
        RecordWriter(backend, "zeta", chunk_rows=256) as zeta,
    ):
        alpha.write(early)
        zeta.write(newest)  # another writer, same hour, newer records
        alpha.write(late)  # late records, appended after newer ones
    everything = np.sort(np.concatenate([early["ts"], late["ts"], newest["ts"]]))
    for limit in (1, 30, 700):
        found = query(backend, RecordQuery("protocol", *EVERYTHING, limit=limit, newest_first=True))
        assert np.array_equal(found["ts"], everything[::-1][:limit]), limit
        found = query(backend, RecordQuery("protocol", *EVERYTHING, limit=limit))
        assert np.array_equal(found["ts"], everything[:limit]), limit
