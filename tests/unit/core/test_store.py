from __future__ import annotations

import importlib
import pkgutil
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

import plantwarden
from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Base, Store
from plantwarden.core.errors import StoreNotReady
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Settings
from plantwarden.zones import services
from plantwarden.zones.models import NetworkSegment, Site
from tests.conftest import make_settings


def test_an_empty_store_is_created_at_the_head_revision(store: Store) -> None:
    assert migrate.current_revision(store) is None
    assert migrate.is_empty(store)
    assert migrate.ensure_ready(store) == migrate.head_revision()
    assert migrate.current_revision(store) == migrate.head_revision()


def import_every_module() -> None:
    """Import the whole package, so that every model is on `Base.metadata`."""
    for module in pkgutil.walk_packages(plantwarden.__path__, "plantwarden."):
        if ".migrations." not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def test_migrations_build_exactly_the_tables_the_models_declare(store: Store) -> None:
    import_every_module()
    migrate.upgrade(store)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


@pytest.mark.parametrize("start", migrate.known_revisions()[:-1])
def test_upgrade_keeps_data_written_at_an_earlier_head(store: Store, start: str) -> None:
    migrate.upgrade(store, start)
    created = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with store.engine.begin() as connection:
        for site in ("plant-a", "plant-b"):
            connection.execute(
                text("INSERT INTO sites (id, name, created_at) VALUES (:id, :name, :created)"),
                {"id": site, "name": site.upper(), "created": created.replace(tzinfo=None)},
            )
            if start != "0001_sites":  # from 0002 on, every site has its default segment
                connection.execute(
                    text(
                        "INSERT INTO network_segments (site_id, name, description, created_at)"
                        " VALUES (:id, 'default', '', :created)"
                    ),
                    {"id": site, "created": created.replace(tzinfo=None)},
                )
    migrate.upgrade(store)
    with store.transaction() as session:
        sites = services.list_sites(session)
        assert [(s.id, s.name) for s in sites] == [("plant-a", "PLANT-A"), ("plant-b", "PLANT-B")]
        assert [[g.name for g in s.segments] for s in sites] == [["default"], ["default"]]
        assert all(s.created_at == created for s in sites)


def test_a_store_behind_the_head_is_refused_not_silently_upgraded(store: Store) -> None:
    migrate.upgrade(store, migrate.known_revisions()[0])
    with pytest.raises(StoreNotReady, match="plantwarden db upgrade"):
        migrate.ensure_ready(store)
    assert migrate.current_revision(store) == migrate.known_revisions()[0]


def test_a_store_from_a_newer_version_is_refused(store: Store) -> None:
    migrate.upgrade(store)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(StoreNotReady, match="newer Plantwarden"):
        migrate.ensure_ready(store)


def test_a_foreign_database_is_refused(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("CREATE TABLE somebody_elses (id INTEGER PRIMARY KEY)"))
    with pytest.raises(StoreNotReady, match="not made by Plantwarden"):
        migrate.ensure_ready(store)


def test_timestamps_come_back_aware_and_in_utc(store: Store) -> None:
    migrate.upgrade(store)
    local = datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with store.transaction() as session:
        services.create_site(session, Context(source="test", clock=FixedClock(local)), "plant-a", "Plant A")
    with store.transaction() as session:
        site = session.scalars(select(Site)).one()
        assert site.created_at == local
        assert site.created_at.tzinfo is UTC
        assert site.created_at.hour == 12


def test_naive_timestamps_are_refused(store: Store) -> None:
    migrate.upgrade(store)
    with pytest.raises(Exception, match="naive datetimes are not stored"), store.transaction() as session:
        session.add(Site(id="x", name="X", created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
        session.flush()


def test_foreign_keys_are_enforced(store: Store) -> None:
    migrate.upgrade(store)
    with pytest.raises(Exception, match=r"(?i)foreign key"), store.transaction() as session:
        session.add(NetworkSegment(site_id="nowhere", name="cell-1", created_at=datetime.now(UTC)))
        session.flush()


def test_the_embedded_store_is_sqlite_in_wal_mode_in_the_data_directory(settings: Settings) -> None:
    store = Store.from_settings(settings[CoreSettings])
    try:
        migrate.ensure_ready(store)
        assert store.engine.url.database == str(settings[CoreSettings].data_path / "plantwarden.db")
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()


def test_a_new_sqlite_store_is_its_owner_s_only(tmp_path: Path) -> None:
    """The store holds password hashes, the audit log and the plant's alerts: it was created 0644
    in a data directory 0755, readable by every user of the host."""
    data = tmp_path / "srv" / "data"
    store = Store.from_settings(make_settings(data)[CoreSettings])
    try:
        migrate.ensure_ready(store)
        with store.transaction() as session:
            session.execute(text("CREATE TABLE written_now (x INTEGER)"))
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in data.iterdir()
            if p.name.startswith("plantwarden.db")
        }
        assert modes["plantwarden.db"] == 0o600
        assert modes["plantwarden.db-wal"] == 0o600  # SQLite gives it the database's mode
        assert {stat.S_IMODE(d.stat().st_mode) for d in (data, data.parent)} == {0o700}
    finally:
        store.close()


def test_an_existing_store_and_directory_keep_their_permissions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    first = Store.from_settings(make_settings(data)[CoreSettings])
    migrate.ensure_ready(first)
    first.close()
    (data / "plantwarden.db").chmod(0o640)  # an administrator's choice (a backup group)
    again = Store.from_settings(make_settings(data)[CoreSettings])
    try:
        migrate.ensure_ready(again)
    finally:
        again.close()
    assert stat.S_IMODE((data / "plantwarden.db").stat().st_mode) == 0o640
    assert stat.S_IMODE(data.stat().st_mode) == 0o755


def test_a_data_directory_a_process_makes_first_is_private(tmp_path: Path) -> None:
    """Whatever a process writes there first (the supervisor's state, a records partition, the
    audit key), the data directory it makes is 0700."""
    data = tmp_path / "new" / "data"
    Runtime(make_settings(data))
    assert [stat.S_IMODE(d.stat().st_mode) for d in (data, data.parent)] == [0o700, 0o700]
