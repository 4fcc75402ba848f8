"""Schema migrations of the domain store (Alembic), driven from code, not from an ini file."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from plantwarden.core.db import RECORDS_TABLE_PREFIX, Store
from plantwarden.core.errors import InvalidInput, StoreNotReady

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision this version of Plantwarden knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreNotReady("no migrations are packaged")
    return head


def known_revisions() -> list[str]:
    """Every revision from the first to the head, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(store: Store) -> str | None:
    """The revision the store is at, or None for an empty store."""
    try:
        with store.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise StoreNotReady(f"cannot reach the store: {error.__class__.__name__}: {error}") from error


def upgrade(store: Store, revision: str = "head") -> str | None:
    """Migrate the store up to `revision`; returns the revision it is at afterwards. A revision
    Alembic cannot resolve (unknown, empty, a range, a relative step past the head) is `InvalidInput`."""
    if not revision.strip():  # Alembic fails an assertion on it
        raise InvalidInput("the revision to upgrade to is empty (head, or a revision id)")
    config = _config()
    try:
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except CommandError as error:
        known = known_revisions()
        raise InvalidInput(
            f"cannot upgrade to revision {revision!r}: {error} (the revisions run from {known[0]} to "
            f"{known[-1]}, the head; `plantwarden db current` shows the store's)"
        ) from None
    return current_revision(store)


def is_empty(store: Store) -> bool:
    """True when the store holds no domain tables (a new data directory or schema); the
    records plane's tables on PostgreSQL do not count."""
    with store.engine.connect() as connection:
        names = inspect(connection).get_table_names()
    return not [name for name in names if not name.startswith(RECORDS_TABLE_PREFIX)]


def ensure_ready(store: Store, *, initialise_empty: bool = True) -> str:
    """Check that the store is at the head revision, creating the schema of an empty store.

    A store at an older revision is never upgraded silently: the operator backs it up and runs
    `plantwarden db upgrade`. A store at a newer revision was written by a newer Plantwarden.
    """
    current = current_revision(store)
    head = head_revision()
    if current is None and initialise_empty and is_empty(store):
        upgrade(store)
        log.info("created the schema of an empty store (revision %s)", head)
        return head
    if current == head:
        return head
    if current is None:
        raise StoreNotReady("the store holds tables but no schema revision; it was not made by Plantwarden")
    if current in known_revisions():
        raise StoreNotReady(
            f"the store is at revision {current}, this version expects {head}: "
            "take a backup (`plantwarden backup`), then run `plantwarden db upgrade`"
        )
    raise StoreNotReady(
        f"the store is at revision {current}, unknown to this version (head {head}): "
        "it was written by a newer Plantwarden"
    )
