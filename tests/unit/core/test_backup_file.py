"""The backup archive as a file: 0600, on disk before `create_backup` returns, never over a file
that is there (even one that appears while the backup is taken), and nothing left when it fails."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plantwarden.core import backup, migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.zones import services
from tests.output_support import files_of

CTX = Context(source="test", clock=FixedClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC)))


@pytest.fixture
def filled(store: Store) -> Store:
    migrate.ensure_ready(store)
    with store.transaction() as session:
        services.create_site(session, CTX, "plant-a", "Plant A")
    return store


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "backups"
    directory.mkdir()
    return directory


def test_the_archive_is_0600_and_synced_to_disk_before_the_backup_returns(
    filled: Store, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.fsync is watched (and still syncs): without it a power cut after "backed up" could
    leave an empty or partial archive under the name."""
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.fstat(descriptor).st_ino)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    archive = out / "plantwarden.tar.gz"
    backup.create_backup(filled, archive, version="test")
    assert archive.stat().st_ino in synced and out.stat().st_ino in synced
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert backup.read_manifest(archive).total_rows >= 1


def test_a_file_that_appears_while_the_backup_is_taken_is_kept(filled: Store, out: Path) -> None:
    archive = out / "plantwarden.tar.gz"

    def someone_writes_there(_table: str, _rows: int) -> None:
        if not archive.exists():
            archive.write_bytes(b"another backup, taken meanwhile")

    with pytest.raises(FileExistsError):
        backup.create_backup(filled, archive, version="test", progress=someone_writes_there)
    assert files_of(out) == {"plantwarden.tar.gz": b"another backup, taken meanwhile"}


def test_a_backup_interrupted_part_way_leaves_nothing(filled: Store, out: Path) -> None:
    def interrupt(_table: str, _rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup.create_backup(filled, out / "plantwarden.tar.gz", version="test", progress=interrupt)
    assert files_of(out) == {}
