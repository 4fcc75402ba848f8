"""Partitions of the records plane: what a storage backend offers, and the SQLite backend.

A partition holds the chunks of one record kind, written by one named writer, for one time
interval. Exactly one writer holds a partition open; retention drops whole partitions (a file or
a table), never rows.

SQLite layout: `<root>/<kind>/<writer>/<YYYYmmddTHHMMSS>_<seconds>.db`, each file with the tables
`chunks(id, ts_min, ts_max, rows, data)` and `chunk_keys(key, chunk_id)`. The writer holds an
exclusive `flock` on the `.lock` file beside it while the partition is open.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from plantwarden.core.errors import Conflict, InvalidInput

WRITER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_FILE_NAME = re.compile(r"^(\d{8}T\d{6})_(\d+)\.db$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,
    rows INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_ts ON chunks (ts_min, ts_max);
CREATE INDEX IF NOT EXISTS chunks_ts_max ON chunks (ts_max);
CREATE TABLE IF NOT EXISTS chunk_keys (key BLOB NOT NULL, chunk_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_keys_key ON chunk_keys (key, chunk_id);
"""


@dataclass(frozen=True)
class Chunk:
    """One encoded chunk and the index keys that find it."""

    ts_min: int
    ts_max: int
    rows: int
    data: bytes
    keys: Sequence[bytes]


@dataclass(frozen=True)
class PartitionRef:
    """Where one partition lives; `start_ns` <= ts < `end_ns` for every record in it."""

    kind: str
    writer: str
    start_ns: int
    end_ns: int
    location: str


class PartitionWriter(Protocol):
    ref: PartitionRef

    def append(self, chunks: Sequence[Chunk]) -> None:
        """Store chunks and their keys in one transaction."""

    def close(self) -> None:
        """Make the partition durable and compact, and give up the writer's lock."""


class PartitionBackend(Protocol):
    """Storage of partitions: the SQLite directory here, PostgreSQL tables in `pg_partitions`."""

    def open_writer(self, kind: str, writer: str, start_ns: int, end_ns: int) -> PartitionWriter: ...

    def partitions(self, kind: str | None = None) -> list[PartitionRef]: ...

    def chunks(
        self,
        ref: PartitionRef,
        start_ns: int,
        end_ns: int,
        key_groups: Sequence[Sequence[bytes]],
        *,
        newest_first: bool = False,
    ) -> Iterator[tuple[int, int, bytes]]: ...

    def size(self, ref: PartitionRef) -> int: ...

    def drop(self, ref: PartitionRef) -> bool: ...


def writer_name_of(prefix: str, name: str) -> str:
    """The writer of a process named `prefix` working for `name` (a site): `prefix-name` when that is
    a writer name; otherwise `name` as a slug, cut to fit, then a hash of the whole of it, so that two
    names alike in their first characters (or but for case and punctuation) stay two writers, where
    a cut alone would make them share one (and a cut before a hyphen was no writer name at all)."""
    whole = f"{prefix}-{name}"
    if WRITER_NAME.fullmatch(whole):
        return whole
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    head = f"{prefix}-{slug}"[: 63 - 1 - len(digest)].rstrip("-")
    found = f"{head}-{digest}"
    check_writer_name(found)
    return found


def check_writer_name(name: str) -> None:
    """Writer names become file and table names: lower-case slugs only."""
    if not WRITER_NAME.fullmatch(name):
        raise InvalidInput(f"writer name {name!r} is not valid: use lower-case letters, digits and hyphens")


def _stamp(start_ns: int) -> str:
    return datetime.fromtimestamp(start_ns // 1_000_000_000, UTC).strftime("%Y%m%dT%H%M%S")


def _start_ns(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def chunk_query(
    start_ns: int,
    end_ns: int,
    key_groups: Sequence[Sequence[bytes]],
    param: str,
    *,
    newest_first: bool = False,
) -> tuple[str, list[object]]:
    """SQL selecting (ts_min, ts_max, blob) of chunks that overlap the interval and hold a key
    of every group, oldest first by ts_min or newest first by ts_max."""
    # Only placeholders are formatted in; every value is a bound parameter.
    sql = f"SELECT ts_min, ts_max, data FROM chunks WHERE ts_max >= {param} AND ts_min < {param}"  # noqa: S608
    params: list[object] = [start_ns, end_ns]
    for group in key_groups:
        marks = ", ".join([param] * len(group))
        sql += f" AND id IN (SELECT chunk_id FROM chunk_keys WHERE key IN ({marks}))"  # noqa: S608
        params.extend(group)
    return sql + (" ORDER BY ts_max DESC, id DESC" if newest_first else " ORDER BY ts_min, id"), params


class SQLitePartitions:
    """Partitions as SQLite files under one directory."""

    def __init__(self, root: Path, *, wal_limit_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root
        self.wal_limit_bytes = wal_limit_bytes

    def path(self, kind: str, writer: str, start_ns: int, end_ns: int) -> Path:
        seconds = (end_ns - start_ns) // 1_000_000_000
        return self.root / kind / writer / f"{_stamp(start_ns)}_{seconds}.db"

    def open_writer(self, kind: str, writer: str, start_ns: int, end_ns: int) -> SQLitePartitionWriter:
        check_writer_name(writer)
        path = self.path(kind, writer, start_ns, end_ns)
        ref = PartitionRef(kind, writer, start_ns, end_ns, str(path))
        return SQLitePartitionWriter(ref, self.wal_limit_bytes)

    def partitions(self, kind: str | None = None) -> list[PartitionRef]:
        found = []
        for kind_dir in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if kind is not None and kind_dir.name != kind:
                continue
            for path in sorted(kind_dir.glob("*/*.db")):
                match = _FILE_NAME.fullmatch(path.name)
                if match:
                    start = _start_ns(match[1])
                    end = start + int(match[2]) * 1_000_000_000
                    found.append(PartitionRef(kind_dir.name, path.parent.name, start, end, str(path)))
        return sorted(found, key=lambda r: (r.start_ns, r.kind, r.writer))

    def chunks(
        self,
        ref: PartitionRef,
        start_ns: int,
        end_ns: int,
        key_groups: Sequence[Sequence[bytes]],
        *,
        newest_first: bool = False,
    ) -> Iterator[tuple[int, int, bytes]]:
        sql, params = chunk_query(start_ns, end_ns, key_groups, "?", newest_first=newest_first)
        try:
            connection = sqlite3.connect(f"file:{ref.location}?mode=ro", uri=True, timeout=30)
        except sqlite3.OperationalError:
            return  # dropped by retention after it was listed
        try:
            yield from connection.execute(sql, params)
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):  # a partition created but not yet written
                raise
        finally:
            connection.close()

    def size(self, ref: PartitionRef) -> int:
        return sum(_file_size(Path(ref.location + suffix)) for suffix in ("", "-wal", "-shm"))

    def drop(self, ref: PartitionRef) -> bool:
        lock_path = Path(ref.location).with_suffix(".lock")
        try:
            with _exclusive(lock_path, wait=False):
                for suffix in ("", "-wal", "-shm"):
                    Path(ref.location + suffix).unlink(missing_ok=True)
                lock_path.unlink(missing_ok=True)
        except BlockingIOError:
            return False  # open for writing: never dropped
        return True


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class _exclusive:  # noqa: N801 - used like a function: `with _exclusive(path):`
    """An exclusive `flock` on a lock file, held for the block."""

    def __init__(self, path: Path, *, wait: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[bytes] = path.open("ab")
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(self.handle.fileno(), flags)
        except BaseException:
            self.handle.close()
            raise

    def __enter__(self) -> _exclusive:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()


class SQLitePartitionWriter:
    """The one writer of an SQLite partition file."""

    def __init__(self, ref: PartitionRef, wal_limit_bytes: int) -> None:
        self.ref = ref
        self._path = Path(ref.location)
        self._wal_limit = wal_limit_bytes
        try:
            self._lock = _exclusive(self._path.with_suffix(".lock"), wait=False)
        except BlockingIOError:
            raise Conflict(f"partition {self._path} is already open by another writer") from None
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"journal_size_limit={wal_limit_bytes}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        self._next_id = int(self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM chunks").fetchone()[0])

    def append(self, chunks: Sequence[Chunk]) -> None:
        first = self._next_id
        ids = range(first, first + len(chunks))
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO chunks (id, ts_min, ts_max, rows, data) VALUES (?, ?, ?, ?, ?)",
                [(i, c.ts_min, c.ts_max, c.rows, c.data) for i, c in zip(ids, chunks, strict=True)],
            )
            self._db.executemany(
                "INSERT INTO chunk_keys (key, chunk_id) VALUES (?, ?)",
                [(k, i) for i, c in zip(ids, chunks, strict=True) for k in c.keys],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._next_id = first + len(chunks)
        self._checkpoint_if_large()

    def _checkpoint_if_large(self) -> None:
        """Keep the WAL small even while readers come and go (readers hold no long snapshots)."""
        if _file_size(Path(f"{self._path}-wal")) > self._wal_limit:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if self._lock.handle.closed:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.close()
        finally:
            self._lock.release()
