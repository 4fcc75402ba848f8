"""The domain store: SQLAlchemy engine, sessions and the shared declarative base.

SQLite (WAL) in the data directory by default, PostgreSQL by URL. Domains declare their tables
on `Base`; high-rate protocol records never come through here (they use the records plane).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from plantwarden.core.config import CoreSettings
from plantwarden.core.files import private_directory

DATABASE_FILE_NAME = "plantwarden.db"
# Tables of the records plane on PostgreSQL: high-rate data, not domain state. Migrations,
# emptiness checks and backups of the domain store leave them alone.
RECORDS_TABLE_PREFIX = "records_"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every domain table; one metadata with stable constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware, on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_write_lock(session: Session, table: str, column: str) -> bool:
    """On SQLite, take the store's write lock now, held to the end of the transaction; whether it
    is SQLite. Its driver begins a transaction only at the first write, so the reads of a
    read-then-write would otherwise see another writer's commit in between: a write that changes
    nothing (`table`.`column` set to itself where nothing matches) takes the lock, and another
    writer waits for it (the busy timeout). PostgreSQL callers lock rows or take an advisory lock."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    session.execute(text(f"UPDATE {table} SET {column} = {column} WHERE 1 = 0"))  # noqa: S608 - names are ours
    return True


def store_url(core: CoreSettings) -> URL:
    """The URL of the domain store: `database_url`, or SQLite in the data directory."""
    if core.database_url is not None:
        return make_url(core.database_url.reveal())
    return make_url(f"sqlite:///{core.data_path / DATABASE_FILE_NAME}")


def describe_url(url: URL) -> str:
    """The URL with its password hidden, fit for logs and `config show`."""
    return url.render_as_string(hide_password=True)


def private_sqlite_file(path: Path) -> None:
    """Make a new SQLite store its owner's only: its directory 0700 when this creates it (the data
    directory, which then keeps the records and evidence beside it private too), and the database
    file 0600, created empty before SQLite opens it (SQLite gives its -wal and -shm files the
    database file's permissions). The store holds password hashes, the audit log and the plant's
    alerts; an existing file or directory keeps the permissions it has."""
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def create_store_engine(url: URL, *, schema: str | None = None) -> Engine:
    """An engine for the store. SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL
    gets pre-ping and, with `schema`, a search path (used to isolate tests)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        private_sqlite_file(Path(url.database))
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class Store:
    """The engine and a session factory; `transaction()` commits on success, rolls back on error."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, core: CoreSettings) -> Store:
        """Open the store the settings name (the directory of an SQLite store is created)."""
        return cls(create_store_engine(store_url(core)))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
