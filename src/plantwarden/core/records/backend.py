"""Choosing the records plane's storage: SQLite files next to an SQLite store, tables in the
PostgreSQL database when the store is PostgreSQL."""

from __future__ import annotations

from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.records.partitions import PartitionBackend, SQLitePartitions
from plantwarden.core.records.pg_partitions import PostgresPartitions
from plantwarden.core.records.settings import RecordsSettings

RECORDS_DIR = "records"


def open_backend(core: CoreSettings, records: RecordsSettings, store: Store) -> PartitionBackend:
    """The partition backend for this installation."""
    if store.dialect == "postgresql":
        return PostgresPartitions(store.engine)
    return SQLitePartitions(core.data_path / RECORDS_DIR, wal_limit_bytes=records.wal_limit_mb * 1024 * 1024)
