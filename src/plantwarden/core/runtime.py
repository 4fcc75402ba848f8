"""What a process holds once it has started: its settings, a clock and (opened lazily) the store.

Built once by the entry point (the command line) and passed explicitly to whatever needs it;
domain command modules receive it through the `RuntimeProvider` protocol, so that they never
import the delivery layer.
"""

from __future__ import annotations

from typing import Protocol

from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.files import private_directory
from plantwarden.core.migrate import ensure_ready
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import Settings


class Runtime:
    """Settings, clock and store of one process."""

    def __init__(self, settings: Settings, clock: Clock | None = None, *, source: str = "cli") -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.source = source
        self._store: Store | None = None
        private_directory(self.core.data_path)  # whatever this process writes there first: 0700 if new

    @property
    def core(self) -> CoreSettings:
        return self.settings[CoreSettings]

    def context(self, actor: str | None = None) -> Context:
        """The context service calls of this process run in."""
        return Context(source=self.source, clock=self.clock, actor=actor)

    def store(self) -> Store:
        """The store, opened on first use (no readiness check)."""
        if self._store is None:
            self._store = Store.from_settings(self.core)
        return self._store

    def ready_store(self) -> Store:
        """The store at the head revision; an empty store gets its schema, an old one is refused."""
        store = self.store()
        ensure_ready(store)
        return store

    def records(self) -> PartitionBackend:
        """The records plane's partitions (SQLite files or PostgreSQL tables, as the store)."""
        return open_backend(self.core, self.settings[RecordsSettings], self.store())

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.close()
            self._store = None


class RuntimeProvider(Protocol):
    """The command-line context object as domain commands see it."""

    def runtime(self) -> Runtime: ...
