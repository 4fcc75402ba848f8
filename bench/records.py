"""Records plane vs the ORM, SQLAlchemy Core and raw executemany, on the same records.

All four write the same protocol records into SQLite (WAL, synchronous=NORMAL) in the same run:
- ORM: one mapped object per record, `session.add_all`, one commit (with the console's indexes);
- Core: `insert()` with a list of dicts (executemany), with the same indexes;
- raw executemany: sqlite3 `executemany` of tuples from numpy `tolist()`, the same indexes;
- records plane: `RecordWriter.write` (columnar chunks indexed by time, address, protocol and
  operation), once with every record a write (nothing aggregated, the worst case) and once with
  the realistic mix of 95 % read polling (the storage policy aggregates reads per minute).
Then the console's queries (one asset's records; the newest 100) on the plane and on the
raw-row table. Every writer is checked to have stored all its rows before it is timed again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import (
    BigInteger,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    create_engine,
    make_url,
)
from sqlalchemy import insert as core_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from plantwarden.core.db import create_store_engine
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.pg_partitions import PostgresPartitions
from plantwarden.core.records.plane import RecordQuery, RecordWriter, query
from plantwarden.core.records.schema import PROTOCOL_RECORDS, Operation, address, ipv4_addresses

COLUMNS = PROTOCOL_RECORDS.names
BASE_NS = 1_789_999_200_000_000_000


def make_records(n: int, read_share: float, seed: int = 7) -> RecordBatch:
    """A plant-like mix: 15 HMIs and engineering hosts polling 7 PLCs, 1 ms apart."""
    rng = np.random.default_rng(seed)
    operations = np.where(rng.random(n) < read_share, Operation.READ, Operation.WRITE)
    return RecordBatch.build(
        PROTOCOL_RECORDS,
        {
            "ts": BASE_NS + np.arange(n, dtype=np.int64) * 1_000_000,
            "site": "plant-a",
            "segment": "cell-1",
            "src_addr": ipv4_addresses(rng.integers(0x0A000001, 0x0A000010, n).astype(np.uint32)),
            "dst_addr": ipv4_addresses(rng.integers(0x0A000100, 0x0A000107, n).astype(np.uint32)),
            "src_port": rng.integers(40000, 40010, n),
            "dst_port": 502,
            "transport": 6,
            "protocol": 1,
            "operation": operations,
            "function": np.where(operations == Operation.READ, 3, 6),
            "unit": 1,
            "address": rng.integers(0, 50, n) * 10,
            "quantity": 10,
            "status": 0,
            "value": rng.random(n),
            "response_ns": rng.integers(1_000_000, 20_000_000, n),
        },
    )


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    site: Mapped[str] = mapped_column(String)
    segment: Mapped[str] = mapped_column(String)
    src_addr: Mapped[bytes] = mapped_column(LargeBinary)
    dst_addr: Mapped[bytes] = mapped_column(LargeBinary)
    src_port: Mapped[int] = mapped_column(Integer)
    dst_port: Mapped[int] = mapped_column(Integer)
    transport: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[int] = mapped_column(Integer)
    operation: Mapped[int] = mapped_column(Integer)
    function: Mapped[int] = mapped_column(Integer)
    unit: Mapped[int] = mapped_column(Integer)
    address: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    response_ns: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        Index("records_ts", "ts"),
        Index("records_src", "src_addr", "ts"),
        Index("records_dst", "dst_addr", "ts"),
        Index("records_kind", "protocol", "operation", "ts"),
    )


def _engine(path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
    _Base.metadata.create_all(engine)
    return engine


def _python_rows(batch: RecordBatch) -> list[tuple[object, ...]]:
    lists = [batch.columns[name].tolist() for name in COLUMNS]
    lists[COLUMNS.index("src_addr")] = [bytes(r) for r in batch["src_addr"].view(np.uint8).reshape(-1, 16)]
    lists[COLUMNS.index("dst_addr")] = [bytes(r) for r in batch["dst_addr"].view(np.uint8).reshape(-1, 16)]
    return list(zip(*lists, strict=True))


def orm(batch: RecordBatch, path: Path) -> float:
    engine = _engine(path)
    started = time.perf_counter()
    with Session(engine) as session:
        session.add_all(_Row(**dict(zip(COLUMNS, row, strict=True))) for row in _python_rows(batch))
        session.commit()
    return time.perf_counter() - started


def core(batch: RecordBatch, path: Path) -> float:
    engine = _engine(path)
    table: Table = _Row.__table__  # type: ignore[assignment]
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            core_insert(table), [dict(zip(COLUMNS, row, strict=True)) for row in _python_rows(batch)]
        )
    return time.perf_counter() - started


def raw(batch: RecordBatch, path: Path) -> float:
    _engine(path).dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    marks = ", ".join("?" * len(COLUMNS))
    started = time.perf_counter()
    rows = _python_rows(batch)
    connection.execute("BEGIN")
    connection.executemany(f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({marks})", rows)  # noqa: S608
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def plane(batch: RecordBatch, path: Path, pieces: int = 10) -> float:
    backend = SQLitePartitions(path)
    size = len(batch) // pieces
    parts = [batch.take(slice(i * size, (i + 1) * size)) for i in range(pieces)]
    started = time.perf_counter()
    with RecordWriter(backend, "bench") as writer:
        for part in parts:
            writer.write(part)
    return time.perf_counter() - started


def _count_rows(path: Path) -> int:
    connection = sqlite3.connect(path)
    count = int(connection.execute("SELECT count(*) FROM records").fetchone()[0])
    connection.close()
    return count


def _line(
    name: str, n: int, seconds: float, reference: float | None = None, reference_name: str = "raw executemany"
) -> None:
    ratio = f"  x{reference / seconds:5.1f} vs {reference_name}" if reference else ""
    print(f"{name:54} {n / seconds:>12,.0f} records/s  ({seconds:6.2f} s){ratio}")


def run(*, quick: bool = False) -> None:
    n = 100_000 if quick else 1_000_000
    orm_n = n // 10  # the ORM is timed on a tenth: it is that slow, and the rate is per record
    writes = make_records(n, read_share=0.0)
    mixed = make_records(n, read_share=0.95)
    work = Path(tempfile.mkdtemp(prefix="pw-bench-records-"))
    try:
        print(f"## records plane: {n:,} Modbus records into SQLite, with the console's indexes")
        orm_seconds = orm(writes.take(slice(0, orm_n)), work / "orm.db")
        assert _count_rows(work / "orm.db") == orm_n
        _line("ORM (session.add_all), 4 indexes", orm_n, orm_seconds)
        core_seconds = core(writes, work / "core.db")
        assert _count_rows(work / "core.db") == n
        raw_seconds = raw(writes, work / "raw.db")
        assert _count_rows(work / "raw.db") == n
        _line("SQLAlchemy Core insert (executemany), 4 indexes", n, core_seconds, raw_seconds)
        _line("raw sqlite3 executemany, 4 indexes", n, raw_seconds, raw_seconds)
        plane_seconds = plane(writes, work / "plane-writes")
        stored = query(SQLitePartitions(work / "plane-writes"), RecordQuery("protocol", 0, 2**62))
        assert len(stored) == n
        _line("records plane, every record kept in full", n, plane_seconds, raw_seconds)
        mixed_seconds = plane(mixed, work / "plane-mixed")
        _line("records plane, 95 % reads (kept as per-minute aggregates)", n, mixed_seconds, raw_seconds)
        _queries(work, n)
        run_postgres(n)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _queries(work: Path, n: int) -> None:
    asset = address("10.0.1.3")
    backend = SQLitePartitions(work / "plane-writes")
    connection = sqlite3.connect(work / "raw.db")
    timings = {}
    started = time.perf_counter()
    found = query(backend, RecordQuery("protocol", 0, 2**62, asset=asset))
    timings["plane: one PLC's records"] = (time.perf_counter() - started, len(found))
    started = time.perf_counter()
    rows = connection.execute(
        "SELECT * FROM records WHERE src_addr = ? UNION ALL SELECT * FROM records WHERE dst_addr = ?",
        (asset, asset),
    ).fetchall()
    timings["raw rows: one PLC's records"] = (time.perf_counter() - started, len(rows))
    started = time.perf_counter()
    newest = query(backend, RecordQuery("protocol", 0, 2**62, limit=100, newest_first=True))
    timings["plane: newest 100"] = (time.perf_counter() - started, len(newest))
    started = time.perf_counter()
    rows = connection.execute("SELECT * FROM records ORDER BY ts DESC LIMIT 100").fetchall()
    timings["raw rows: newest 100"] = (time.perf_counter() - started, len(rows))
    connection.close()
    print(f"## queries over the {n:,} records")
    for name, (seconds, count) in timings.items():
        print(f"{name:54} {seconds * 1000:>9.1f} ms  ({count:,} records)")


POSTGRES_URL = os.environ.get("PW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def run_postgres(n: int) -> None:
    """The same records into PostgreSQL: the plane (binary COPY of chunks) against row-per-record
    COPY and executemany into a table with the console's four indexes."""
    try:
        admin = create_engine(POSTGRES_URL)
        with admin.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except OperationalError as error:
        print(f"## PostgreSQL skipped: {POSTGRES_URL} unreachable ({str(error).splitlines()[0]})")
        return
    schema = f"pwbench_{os.getpid()}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = create_store_engine(make_url(POSTGRES_URL), schema=schema)
    try:
        _postgres_runs(engine, n)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _postgres_runs(engine: Engine, n: int) -> None:
    writes = make_records(n, read_share=0.0)
    rows = _python_rows(writes)
    _Base.metadata.create_all(engine)
    columns = ", ".join(COLUMNS)
    print(f"## records plane: {n:,} Modbus records into PostgreSQL, with the console's indexes")
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        started = time.perf_counter()
        with cursor.copy(f"COPY records ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        copy_seconds = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM records")
        counted = cursor.fetchone()
        assert counted is not None
        assert counted[0] == n
        sample = rows[: n // 10]
        marks = ", ".join(["%s"] * len(COLUMNS))
        started = time.perf_counter()
        cursor.executemany(f"INSERT INTO records ({columns}) VALUES ({marks})", sample)  # noqa: S608
        connection.commit()
        many_seconds = time.perf_counter() - started
    finally:
        connection.close()
    _line("psycopg executemany, row per record, 4 indexes", len(sample), many_seconds)
    _line("COPY, row per record, 4 indexes", n, copy_seconds, copy_seconds, "COPY")
    backend = PostgresPartitions(engine)
    size = n // 10
    started = time.perf_counter()
    with RecordWriter(backend, "bench") as writer:
        for i in range(10):
            writer.write(writes.take(slice(i * size, (i + 1) * size)))
    plane_seconds = time.perf_counter() - started
    assert len(query(backend, RecordQuery("protocol", 0, 2**62))) == n
    _line("records plane (binary COPY of chunks), all kept in full", n, plane_seconds, copy_seconds, "COPY")
