"""Partitions of the records plane on PostgreSQL: one table per partition, and a catalog.

`records_partitions` lists the partitions (kind, writer, interval, table); each partition is
the table `records_part_<catalog id>` with the columns `(id, ts_min, ts_max, rows, data, keys)`,
a btree index on the time bounds and a GIN index on the index keys. The backend creates these
tables itself (they are not domain state, so not Alembic's); every name starts with `records_`
so that backups can leave them out.

The one writer of a partition holds a session-level advisory lock on its own connection until
it closes; `drop` takes the same lock with a try-lock and drops nothing while a writer holds it.
Advisory locks are database-wide while a catalog lives in one schema, so the lock key is the
pair (oid of the catalog table, catalog id). Opening and dropping partitions are serialised by a
transaction-level advisory lock keyed by the schema. Readers run short statements only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from plantwarden.core.errors import Conflict
from plantwarden.core.records.partitions import Chunk, PartitionRef, check_writer_name

log = logging.getLogger(__name__)

CATALOG = "records_partitions"
_TABLE_NAME = re.compile(r"^records_part_(\d+)$")
_READ_BATCH = 8  # chunk blobs fetched per statement (a chunk is up to a few MB)
_DROP_LOCK_TIMEOUT = "10s"
_COPY_TYPES = ["bigint", "bigint", "bigint", "integer", "bytea", "bytea[]"]

Connection = psycopg.Connection[tuple[Any, ...]]

_CREATE_CATALOG = sql.SQL("""
CREATE TABLE IF NOT EXISTS records_partitions (
    id bigserial PRIMARY KEY, kind text NOT NULL, writer text NOT NULL,
    start_ns bigint NOT NULL, end_ns bigint NOT NULL, table_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (kind, writer, start_ns))
""")
# A partition reopened with a longer interval is widened; `start <= ts < end` holds either way.
_REGISTER = sql.SQL("""
INSERT INTO records_partitions (id, kind, writer, start_ns, end_ns, table_name)
SELECT n, %s, %s, %s, %s, 'records_part_' || n FROM nextval(pg_get_serial_sequence(%s, 'id')) AS n
ON CONFLICT (kind, writer, start_ns)
DO UPDATE SET end_ns = greatest(records_partitions.end_ns, excluded.end_ns)
RETURNING id, end_ns, table_name, tableoid
""")
# Chunk blobs are compressed with lz4 where the server has it: pglz (the default) makes COPY
# several times slower for about the same size.
_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
_CREATE_PARTITION = (
    "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, ts_min bigint NOT NULL, "
    "ts_max bigint NOT NULL, rows integer NOT NULL, data bytea {compression} NOT NULL, "
    "keys bytea[] NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {ts_index} ON {table} (ts_min, ts_max)",
    "CREATE INDEX IF NOT EXISTS {keys_index} ON {table} USING gin (keys)",
)
# Serialises opening and dropping partitions of one schema (a transaction-level lock).
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('plantwarden.records.' || current_schema(), 0))"


def lock_keys(catalog_oid: int, number: int) -> tuple[int, int]:
    """The two int4 keys of a partition's advisory lock: the catalog's oid and the catalog id."""
    return _int4(catalog_oid), _int4(number)


def _int4(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def partition_id(ref: PartitionRef) -> int:
    """The catalog id of a partition, from its table name (`records_part_<id>`)."""
    match = _TABLE_NAME.fullmatch(ref.location)
    if match is None:
        raise ValueError(f"{ref.location!r} is not a PostgreSQL records partition")
    return int(match[1])


def _driver(raw: PoolProxiedConnection) -> Connection:
    connection = raw.driver_connection
    if not isinstance(connection, psycopg.Connection):
        raise TypeError("PostgresPartitions needs an engine using the psycopg (3) driver")
    return connection


def _is_true(row: tuple[Any, ...] | None) -> bool:
    return row is not None and row[0] is True


class PostgresPartitions:
    """Partitions as PostgreSQL tables, listed in the `records_partitions` catalog."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection, outside any transaction; back to the pool afterwards."""
        raw = self.engine.raw_connection()
        try:
            connection = _driver(raw)
            connection.rollback()  # the pool's pre-ping may have begun one
            yield connection
        finally:
            raw.close()

    def open_writer(self, kind: str, writer: str, start_ns: int, end_ns: int) -> PostgresPartitionWriter:
        """Register (or reopen) the partition and become its one writer; `Conflict` if taken."""
        check_writer_name(writer)
        raw = self.engine.raw_connection()
        try:
            connection = _driver(raw)
            raw.detach()  # its own connection: closing it really ends the session and its lock
            connection.rollback()
            connection.autocommit = True
            return PostgresPartitionWriter(raw, connection, (kind, writer, start_ns, end_ns))
        except BaseException:
            raw.close()
            raise

    def partitions(self, kind: str | None = None) -> list[PartitionRef]:
        """Every partition (of `kind`), oldest first."""
        query = "SELECT kind, writer, start_ns, end_ns, table_name FROM records_partitions"
        params: list[object] = []
        if kind is not None:
            query += " WHERE kind = %s"
            params.append(kind)
        query += " ORDER BY start_ns, kind, writer"
        with self._connection() as connection:
            try:
                rows = connection.execute(query, params).fetchall()
            except pg_errors.UndefinedTable:
                return []  # no partition was ever opened
            finally:
                connection.rollback()
        return [PartitionRef(*row) for row in rows]

    def chunks(
        self,
        ref: PartitionRef,
        start_ns: int,
        end_ns: int,
        key_groups: Sequence[Sequence[bytes]],
        *,
        newest_first: bool = False,
    ) -> Iterator[tuple[int, int, bytes]]:
        """(ts_min, ts_max, blob) of chunks overlapping [start_ns, end_ns) that hold a key of
        every group: oldest first by ts_min, or newest first by ts_max.

        The matching ids are read first, then the blobs a few at a time, each statement in its
        own short transaction (a slow consumer holds no snapshot and no lock on the table).
        """
        table = sql.Identifier(ref.location)
        order = sql.SQL(" ORDER BY ts_max DESC, id DESC" if newest_first else " ORDER BY ts_min, id")
        select_ids, params = _chunk_ids_query(table, start_ns, end_ns, key_groups)
        select_data = sql.SQL("SELECT ts_min, ts_max, data FROM {} WHERE id = ANY(%s::bigint[])").format(
            table
        )
        with self._connection() as connection:
            ids = [row[0] for row in _fetch_rows(connection, select_ids + order, params) or []]
            for first in range(0, len(ids), _READ_BATCH):
                rows = _fetch_rows(connection, select_data + order, [ids[first : first + _READ_BATCH]])
                if rows is None:
                    return
                yield from ((int(a), int(b), bytes(data)) for a, b, data in rows)

    def size(self, ref: PartitionRef) -> int:
        """Bytes of the partition's table, its TOAST table and its indexes (0 once dropped)."""
        with self._connection() as connection:
            row = connection.execute(
                "SELECT coalesce(pg_total_relation_size(to_regclass(quote_ident(%s))), 0)", [ref.location]
            ).fetchone()
            connection.rollback()
        return int(row[0]) if row is not None else 0

    def drop(self, ref: PartitionRef) -> bool:
        """Drop the partition's table and catalog row; False (nothing dropped) while it is open."""
        with self._connection() as connection:
            try:
                with connection.transaction():
                    return _drop(connection, ref)
            except pg_errors.LockNotAvailable:
                return False  # readers kept the table busy; the next round tries again


def _chunk_ids_query(
    table: sql.Identifier, start_ns: int, end_ns: int, key_groups: Sequence[Sequence[bytes]]
) -> tuple[sql.Composed, list[object]]:
    query = sql.SQL("SELECT id FROM {} WHERE ts_max >= %s AND ts_min < %s").format(table)
    params: list[object] = [start_ns, end_ns]
    for group in key_groups:
        query += sql.SQL(" AND keys && %s::bytea[]")
        params.append(list(group))
    return query, params


def _fetch_rows(connection: Connection, query: sql.Composed, params: Sequence[object]) -> list[Any] | None:
    """Every row, in a transaction of its own; None once the table is gone."""
    try:
        return list(connection.execute(query, params))
    except pg_errors.UndefinedTable:
        return None  # dropped by retention after it was listed
    finally:
        connection.rollback()


def _drop(connection: Connection, ref: PartitionRef) -> bool:
    connection.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_DROP_LOCK_TIMEOUT)))
    connection.execute(_SCHEMA_LOCK)
    row = connection.execute("SELECT to_regclass(%s)::oid", [CATALOG]).fetchone()
    if row is None or row[0] is None:
        return True  # no catalog: nothing to drop
    locked = connection.execute(
        "SELECT pg_try_advisory_xact_lock(%s::int4, %s::int4)", lock_keys(row[0], partition_id(ref))
    )
    if not _is_true(locked.fetchone()):
        return False  # open for writing: never dropped
    connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(ref.location)))
    connection.execute("DELETE FROM records_partitions WHERE id = %s", [partition_id(ref)])
    return True


class PostgresPartitionWriter:
    """The one writer of a PostgreSQL partition, on a connection of its own."""

    def __init__(
        self, raw: PoolProxiedConnection, connection: Connection, key: tuple[str, str, int, int]
    ) -> None:
        self._raw = raw
        self._db = connection
        self._closed = False
        with connection.transaction():
            self.ref, self._lock = _register(connection, *key)
        self._table = sql.Identifier(self.ref.location)
        row = connection.execute(
            sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(self._table)
        ).fetchone()
        self._next_id = int(row[0]) if row is not None else 1

    def append(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks and their keys in one transaction, with a binary COPY."""
        first = self._next_id
        copy = sql.SQL("COPY {} (id, ts_min, ts_max, rows, data, keys) FROM STDIN (FORMAT BINARY)")
        with (
            self._db.transaction(),
            self._db.cursor() as cursor,
            cursor.copy(copy.format(self._table)) as out,
        ):
            out.set_types(_COPY_TYPES)
            for number, chunk in enumerate(chunks, start=first):
                out.write_row((number, chunk.ts_min, chunk.ts_max, chunk.rows, chunk.data, list(chunk.keys)))
        self._next_id = first + len(chunks)

    def close(self) -> None:
        """Refresh the planner's statistics, give up the lock and close the connection.

        Every append is already committed, and closing the connection ends the session and its
        lock, so a failure here (a lost connection) is logged rather than raised.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._db.execute(sql.SQL("ANALYZE {}").format(self._table))
            self._db.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", self._lock)
        except psycopg.Error as error:
            log.warning("closing partition %s: %s", self.ref.location, error)
        finally:
            self._raw.close()  # detached: really closed


def _register(
    connection: Connection, kind: str, writer: str, start_ns: int, end_ns: int
) -> tuple[PartitionRef, tuple[int, int]]:
    """In one transaction: create the catalog and the partition's row and table if missing, and
    take the partition's writer lock (a session lock: it outlives the transaction)."""
    connection.execute("SET LOCAL client_min_messages = warning")  # no "already exists" notices
    connection.execute(_SCHEMA_LOCK)
    connection.execute(_CREATE_CATALOG)
    row = connection.execute(_REGISTER, [kind, writer, start_ns, end_ns, CATALOG]).fetchone()
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE returns the row either way
    number, end_ns, table_name, catalog_oid = row
    lock = lock_keys(catalog_oid, number)
    if not _is_true(connection.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", lock).fetchone()):
        raise Conflict(f"partition {table_name} ({kind}, {writer}) is already open by another writer")
    _create_partition(connection, table_name)
    return PartitionRef(kind, writer, start_ns, end_ns, table_name), lock


def _create_partition(connection: Connection, table_name: str) -> None:
    """The partition's table and indexes, if missing."""
    names = {"table": table_name, "ts_index": f"{table_name}_ts", "keys_index": f"{table_name}_keys"}
    parts: dict[str, sql.Composable] = {name: sql.Identifier(value) for name, value in names.items()}
    lz4 = _is_true(connection.execute(_LZ4).fetchone())
    parts["compression"] = sql.SQL("COMPRESSION lz4" if lz4 else "")
    for statement in _CREATE_PARTITION:
        connection.execute(sql.SQL(statement).format(**parts))
