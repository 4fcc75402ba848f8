from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from plantwarden.core import backup, migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import BackupError, Conflict
from plantwarden.zones import services
from tests.conftest import PostgresSchemas, StoreFactory

CTX = Context(source="test", clock=FixedClock(datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=UTC)))


def fill(store: Store, sites: int = 3) -> None:
    migrate.ensure_ready(store)
    with store.transaction() as session:
        for number in range(sites):
            services.create_site(session, CTX, f"plant-{number}", f"Plant {number} — Süd")
            services.add_segment(session, CTX, f"plant-{number}", "cell-1", "Filling line\nwith a newline")


def snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    with store.transaction() as session:
        return {
            "sites": [(s.id, s.name, s.created_at) for s in services.list_sites(session)],
            "segments": [
                (s.id, g.name, g.description, g.created_at)
                for s in services.list_sites(session)
                for g in s.segments
            ],
        }


def backed_up(store_factory: StoreFactory, tmp_path: Path) -> tuple[Store, Path, backup.Manifest]:
    """A filled store and a backup of it."""
    source = store_factory()
    fill(source)
    archive = tmp_path / "backup.tar.gz"
    return source, archive, backup.create_backup(source, archive, version="test")


def rewritten(archive: Path, destination: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """A copy of `archive` with each member's bytes passed through `change(name, data)`."""
    with tarfile.open(archive, "r:gz") as original, tarfile.open(destination, "w:gz") as copy:
        for member in original.getmembers():
            handle = original.extractfile(member)
            assert handle is not None
            data = change(member.name, handle.read())
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    return destination


def test_a_backup_restores_into_an_empty_store_with_all_its_data(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    source, archive, manifest = backed_up(store_factory, tmp_path)
    assert manifest.revision == migrate.head_revision()
    rows = {t.name: t.rows for t in manifest.tables}
    assert {name: count for name, count in rows.items() if count} == {
        "sites": 3,
        "network_segments": 6,
        "event_log": 6,
    }

    target = store_factory()
    seen: list[tuple[str, int]] = []
    backup.restore_backup(target, archive, progress=lambda table, rows: seen.append((table, rows)))
    assert snapshot(target) == snapshot(source)
    assert migrate.current_revision(target) == migrate.head_revision()
    assert ("sites", 3) in seen and ("network_segments", 6) in seen


def test_restore_refuses_a_store_that_holds_data(store_factory: StoreFactory, tmp_path: Path) -> None:
    source, archive, _ = backed_up(store_factory, tmp_path)
    before = snapshot(source)
    with pytest.raises(Conflict, match="empty store"):
        backup.restore_backup(source, archive)
    assert snapshot(source) == before


def test_a_damaged_archive_is_refused_and_the_target_stays_empty(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    _, archive, _ = backed_up(store_factory, tmp_path)
    damaged = rewritten(
        archive,
        tmp_path / "damaged.tar.gz",
        lambda name, data: data.replace(b"Plant 1", b"Plant X") if name == "tables/sites.jsonl" else data,
    )
    target = store_factory()
    with pytest.raises(BackupError, match="checksum"):
        backup.restore_backup(target, damaged)
    assert migrate.is_empty(target)


def test_a_failed_load_leaves_the_target_empty(store_factory: StoreFactory, tmp_path: Path) -> None:
    _, archive, manifest = backed_up(store_factory, tmp_path)

    def claim_one_row_more(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        raw = json.loads(data)
        raw["tables"][0]["rows"] += 1  # the manifest claims a row the file does not hold
        return json.dumps(raw).encode()

    lying = rewritten(archive, tmp_path / "lying.tar.gz", claim_one_row_more)
    target = store_factory()
    with pytest.raises(BackupError, match=f"table {manifest.tables[0].name}: restored"):
        backup.restore_backup(target, lying)
    assert migrate.is_empty(target)


def test_a_backup_taken_at_an_older_revision_restores_and_is_upgraded(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    source = store_factory()
    migrate.upgrade(source, migrate.known_revisions()[0])
    with source.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO sites (id, name, created_at) VALUES ('old', 'Old plant', :t)"),
            {"t": datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None)},
        )
    archive = tmp_path / "old.tar.gz"
    assert backup.create_backup(source, archive, version="test").revision == migrate.known_revisions()[0]
    target = store_factory()
    backup.restore_backup(target, archive)
    with target.transaction() as session:
        (site,) = services.list_sites(session)
        assert (site.id, site.created_at, [g.name for g in site.segments]) == (
            "old",
            datetime(2025, 1, 1, tzinfo=UTC),
            ["default"],
        )


def test_backup_of_an_empty_store_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="nothing to back up"):
        backup.create_backup(store, tmp_path / "x.tar.gz", version="test")
    assert not (tmp_path / "x.tar.gz").exists()


def test_something_that_is_not_a_backup_is_refused(store: Store, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(BackupError, match="cannot read backup"):
        backup.restore_backup(store, bogus)
    assert migrate.is_empty(store)


def test_a_truncated_archive_is_refused_and_the_target_stays_empty(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    _, archive, _ = backed_up(store_factory, tmp_path)
    half = tmp_path / "half.tar.gz"
    half.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupError, match="the backup is truncated or damaged"):
        backup.read_manifest(half)
    target = store_factory()
    with pytest.raises(BackupError, match="the backup is truncated or damaged"):
        backup.restore_backup(target, half)
    assert migrate.is_empty(target)


def test_a_manifest_that_is_not_an_object_is_refused(store: Store, tmp_path: Path) -> None:
    listed = tmp_path / "listed.tar.gz"
    with tarfile.open(listed, "w:gz") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"[1]"))
    with pytest.raises(BackupError, match="is not a Plantwarden backup"):
        backup.restore_backup(store, listed)


def test_a_manifest_that_is_not_utf8_is_refused_at_its_first_bad_byte(store: Store, tmp_path: Path) -> None:
    edited = tmp_path / "edited.tar.gz"
    content = b'{\n  "format": "plantwarden-backup",\n  "note": "Schicht S\xfcd"\n}\n'
    with tarfile.open(edited, "w:gz") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    with pytest.raises(BackupError) as caught:
        backup.restore_backup(store, edited)
    said = "has an unreadable manifest: not UTF-8 text (line 3, byte 0xfc at offset 56)"
    assert caught.value.message == f"{edited} {said}"
    assert migrate.is_empty(store)


def test_a_backup_moves_between_sqlite_and_postgresql(postgres: PostgresSchemas, tmp_path: Path) -> None:
    from sqlalchemy import make_url

    from plantwarden.core.db import create_store_engine

    sqlite = Store(create_store_engine(make_url(f"sqlite:///{tmp_path}/a.db")))
    fill(sqlite)
    archive = tmp_path / "to-pg.tar.gz"
    backup.create_backup(sqlite, archive, version="test")
    pg = postgres.store()
    backup.restore_backup(pg, archive)
    assert snapshot(pg) == snapshot(sqlite)

    back = tmp_path / "to-sqlite.tar.gz"
    backup.create_backup(pg, back, version="test")
    sqlite_again = Store(create_store_engine(make_url(f"sqlite:///{tmp_path}/b.db")))
    backup.restore_backup(sqlite_again, back)
    assert snapshot(sqlite_again) == snapshot(sqlite)
    sqlite.close()
    sqlite_again.close()


def test_records_plane_tables_are_not_domain_state(postgres: PostgresSchemas, tmp_path: Path) -> None:
    from plantwarden.core.records.pg_partitions import PostgresPartitions
    from plantwarden.core.records.plane import RecordWriter
    from tests.unit.core.records.factories import protocol_batch

    store = postgres.store()
    with RecordWriter(PostgresPartitions(store.engine), "sensor-1") as writer:
        writer.write(protocol_batch(1000, read_share=0.0))
    assert migrate.is_empty(store)  # record tables alone do not make a store Plantwarden's
    fill(store)
    archive = tmp_path / "with-records.tar.gz"
    manifest = backup.create_backup(store, archive, version="test")
    assert not [t.name for t in manifest.tables if t.name.startswith("records_")]
    target = postgres.store()
    backup.restore_backup(target, archive)
    assert snapshot(target) == snapshot(store)
