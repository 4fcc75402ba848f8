"""Settings of the records plane."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.settings import SettingsSection, setting


@dataclass(frozen=True)
class RecordsSettings(SettingsSection):
    """Partitioning and retention of protocol records, flows and telemetry."""

    section = "records"
    doc = (
        "Records are stored as columnar chunks in time partitions (SQLite files under "
        "`<data_dir>/records/`, or tables in PostgreSQL when `database_url` names it). "
        "Retention drops whole partitions, oldest first."
    )

    partition_seconds: int = setting(3600, "Length of one time partition, in seconds.")
    chunk_rows: int = setting(16384, "Records per stored chunk (the unit of reading).")
    retention_days: float = setting(90.0, "Partitions whose interval ended longer ago than this are dropped.")
    max_size_gb: float = setting(
        20.0, "Size limit of all record partitions; the oldest are dropped beyond it."
    )
    wal_limit_mb: int = setting(64, "An SQLite partition's write-ahead log is checkpointed beyond this size.")

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_gb * 1024**3)
