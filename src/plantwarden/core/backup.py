"""Backups of the domain store: a portable archive that restores into an empty store.

The archive (`.tar.gz`) holds `manifest.json` (format, Plantwarden version, schema revision,
per-table row counts and SHA-256) and one JSON-lines file per table. Rows are read and written
through reflection of the live schema, so a backup can be taken at any known revision and
restored on SQLite or PostgreSQL alike: the restore creates the schema at the backup's revision,
loads the rows in foreign-key order in one transaction, checks the counts, then migrates to the
head. A failed restore leaves the target store empty again; the archive is only ever read.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, MetaData, Table, func, select, text
from sqlalchemy import types as sqltypes

from plantwarden.core.db import RECORDS_TABLE_PREFIX, Store
from plantwarden.core.errors import BackupError, Conflict
from plantwarden.core.files import atomic_open
from plantwarden.core.migrate import VERSION_TABLE, current_revision, is_empty, known_revisions, upgrade
from plantwarden.core.parsing import utf8_text

FORMAT = "plantwarden-backup"
FORMAT_VERSION = 1
BATCH_ROWS = 2000

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class TableEntry:
    name: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What an archive holds; written first-class into the archive as `manifest.json`."""

    revision: str
    dialect: str
    created_at: str
    plantwarden_version: str
    tables: list[TableEntry] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def create_backup(
    store: Store, destination: Path, *, version: str, progress: Progress | None = None
) -> Manifest:
    """Write a consistent snapshot of the store to `destination`, a new file (FileExistsError if
    one is there, even if it appears meanwhile): 0600 from the start (it holds every secret of the
    store), whole or not at all, and on disk before this returns (`core.files`)."""
    revision = current_revision(store)
    if revision is None:
        raise BackupError("the store is empty: there is nothing to back up")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(destination, mode=0o600, exclusive=True) as stream:
        return _write_archive(store, stream, revision, version, progress)


def _write_archive(
    store: Store, stream: BinaryIO, revision: str, version: str, progress: Progress | None
) -> Manifest:
    entries: list[TableEntry] = []
    with store.engine.connect() as connection, tarfile.open(fileobj=stream, mode="w:gz") as archive:
        _begin_snapshot(connection)
        for table in _tables(connection):
            payload = io.BytesIO()
            count = 0
            for row in _rows(connection, table):
                payload.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                count += 1
                if progress and count % BATCH_ROWS == 0:
                    progress(table.name, count)
            data = payload.getvalue()
            _add_member(archive, f"tables/{table.name}.jsonl", data)
            entries.append(TableEntry(table.name, count, hashlib.sha256(data).hexdigest()))
            if progress:
                progress(table.name, count)
        manifest = Manifest(
            revision=revision,
            dialect=store.dialect,
            created_at=datetime.now(UTC).isoformat(),
            plantwarden_version=version,
            tables=entries,
        )
        _add_member(archive, "manifest.json", json.dumps(asdict(manifest), indent=2).encode())
        connection.rollback()
    return manifest


def _begin_snapshot(connection: Connection) -> None:
    """Make every read of the backup see one snapshot of the store."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def _tables(connection: Connection) -> list[Table]:
    """The domain tables: not the schema revision (in the manifest), not the records plane."""
    metadata = MetaData()
    metadata.reflect(bind=connection, only=_is_domain_table)
    return [t for t in metadata.sorted_tables if t.name != VERSION_TABLE]


def _is_domain_table(name: str, _metadata: MetaData) -> bool:
    return not name.startswith(RECORDS_TABLE_PREFIX)


def _rows(connection: Connection, table: Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = connection.execution_options(yield_per=BATCH_ROWS).execute(select(table).order_by(*order))
    for row in result.mappings():
        yield {name: _encode(value) for name, value in row.items()}


def _add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict | list):
        return {"$json": value}
    raise BackupError(f"cannot back up a value of type {type(value).__name__}")


def read_manifest(source: Path) -> Manifest:
    """Read and check the manifest of an archive without touching any store."""
    with _open(source) as archive:
        return _manifest(archive, source)


def restore_backup(store: Store, source: Path, *, progress: Progress | None = None) -> Manifest:
    """Restore an archive into an empty store, then migrate it to the head revision."""
    with _open(source) as archive:
        manifest = _manifest(archive, source)
        if manifest.revision not in known_revisions():
            raise BackupError(
                f"the backup is at revision {manifest.revision}, unknown to this version: "
                "restore it with the Plantwarden that wrote it"
            )
        if not is_empty(store):
            raise Conflict("restore needs an empty store: point it at a new data directory or database")
        contents = {entry.name: _verified(archive, entry) for entry in manifest.tables}
        upgrade(store, manifest.revision)
        try:
            _load(store, manifest, contents, progress)
            upgrade(store)
        except BaseException:
            _drop_everything(store)
            raise
    return manifest


def _open(source: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(source, "r:gz")
    except (OSError, tarfile.TarError) as error:
        raise BackupError(f"cannot read backup {source}: {error}") from error


def _manifest(archive: tarfile.TarFile, source: Path) -> Manifest:
    try:
        raw = json.loads(utf8_text(_member(archive, "manifest.json")).removeprefix("\ufeff"))
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"{source} is not a Plantwarden backup")
        if raw.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"{source} has backup format {raw.get('format_version')}, expected {FORMAT_VERSION}"
            )
        raw["tables"] = [TableEntry(**entry) for entry in raw["tables"]]
        return Manifest(**raw)
    except (KeyError, TypeError, ValueError) as error:  # ValueError: not JSON, or NotUtf8Text
        raise BackupError(f"{source} has an unreadable manifest: {error}") from error


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = archive.extractfile(name)
        if handle is None:
            raise BackupError(f"{name} in the backup is not a file")
        return handle.read()
    except KeyError:
        raise BackupError(f"the backup has no {name}") from None
    except (EOFError, OSError, tarfile.TarError, zlib.error) as error:  # a cut or damaged archive
        raise BackupError(f"the backup is truncated or damaged ({error})") from None


def _verified(archive: tarfile.TarFile, entry: TableEntry) -> bytes:
    data = _member(archive, f"tables/{entry.name}.jsonl")
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise BackupError(
            f"table {entry.name} in the backup does not match its checksum: the archive is damaged"
        )
    return data


def _load(store: Store, manifest: Manifest, contents: dict[str, bytes], progress: Progress | None) -> None:
    with store.engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(bind=connection, only=_is_domain_table)
        for entry in manifest.tables:
            if entry.name not in metadata.tables:
                raise BackupError(
                    f"table {entry.name} of the backup does not exist at revision {manifest.revision}"
                )
            table = metadata.tables[entry.name]
            _insert_rows(connection, table, contents[entry.name], progress)
            count = connection.execute(select(func.count()).select_from(table)).scalar_one()
            if count != entry.rows:
                raise BackupError(f"table {entry.name}: restored {count} rows, the backup holds {entry.rows}")
            _reset_sequences(connection, table)


def _insert_rows(connection: Connection, table: Table, data: bytes, progress: Progress | None) -> None:
    batch: list[dict[str, Any]] = []
    done = 0
    for line in data.splitlines():
        row = json.loads(line)
        batch.append(
            {name: _decode(value, table.c[name].type, connection.dialect.name) for name, value in row.items()}
        )
        if len(batch) >= BATCH_ROWS:
            connection.execute(table.insert(), batch)
            done += len(batch)
            batch.clear()
            if progress:
                progress(table.name, done)
    if batch:
        connection.execute(table.insert(), batch)
        done += len(batch)
    if progress:
        progress(table.name, done)


def _decode(value: Any, column_type: sqltypes.TypeEngine[Any], dialect: str) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        tag, inner = next(iter(value.items()))
        if tag == "$uuid":
            parsed = uuid.UUID(inner)
            return parsed if isinstance(column_type, sqltypes.Uuid) else parsed.hex
        if tag == "$datetime":
            moment = datetime.fromisoformat(inner)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            return moment.replace(tzinfo=None) if dialect == "sqlite" else moment
        if tag == "$date":
            return date.fromisoformat(inner)
        if tag == "$bytes":
            return base64.b64decode(inner)
        if tag == "$decimal":
            return Decimal(inner)
        if tag == "$json":
            return inner
    if isinstance(value, str) and isinstance(column_type, sqltypes.Uuid):
        return uuid.UUID(value)
    return value


def _reset_sequences(connection: Connection, table: Table) -> None:
    """After explicit ids were inserted, move PostgreSQL sequences past them."""
    if connection.dialect.name != "postgresql":
        return
    for column in table.primary_key.columns:
        if not isinstance(column.type, sqltypes.Integer):
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        ).scalar()
        if sequence:
            highest = connection.execute(select(func.max(column))).scalar() or 0
            connection.execute(
                text("SELECT setval(:sequence, :next, false)"), {"sequence": sequence, "next": highest + 1}
            )


def _drop_everything(store: Store) -> None:
    with store.engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(bind=connection, only=_is_domain_table)
        metadata.drop_all(bind=connection)
