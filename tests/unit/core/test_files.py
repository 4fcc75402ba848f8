"""Files written whole or not at all (`core.files`), on real files: the old file kept and no
temporary left when the write fails part-way, the content synced before the rename, secrets
created 0600, permissions, owner and links kept, and FIFOs and devices written in place."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwarden.core.files import TEMPORARY_SUFFIX, atomic_open, atomic_write, private_directory
from tests.output_support import full_disk, writes_any_file

GOOD = b"the good file, as the user left it\n" * 20


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_the_new_content_replaces_the_file_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write(target, "first\n")
    assert _files(tmp_path) == {"out.txt": b"first\n"}
    with atomic_open(target, "w", newline="") as handle:
        handle.write("a\r\nb\n")
    assert _files(tmp_path) == {"out.txt": b"a\r\nb\n"}
    atomic_write(target, b"\x00\xff")
    assert _files(tmp_path) == {"out.txt": b"\x00\xff"}


@pytest.mark.parametrize("failure", [RuntimeError("the producer failed"), KeyboardInterrupt()])
def test_a_failure_part_way_leaves_the_old_file_and_removes_the_temporary(
    tmp_path: Path, failure: BaseException
) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(GOOD)
    with pytest.raises(type(failure)), atomic_open(target) as handle:
        handle.write(b"half of the new content")
        handle.flush()
        assert len(_files(tmp_path)) == 2  # the temporary, beside the target
        raise failure
    assert _files(tmp_path) == {"out.csv": GOOD}


def test_a_full_disk_leaves_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.pem"
    target.write_bytes(GOOD)
    with pytest.raises(OSError, match="File too large"), full_disk():
        atomic_write(target, b"x" * 100_000)
    assert _files(tmp_path) == {"out.pem": GOOD}


def test_the_content_is_synced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.fsync and os.replace are watched, and still do their work."""
    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.fstat(descriptor).st_ino))
        real_fsync(descriptor)

    def replace(source: str | Path, destination: str | Path) -> None:
        events.append(("replace", Path(source).stat().st_ino))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "backup.tar.gz"
    target.write_bytes(GOOD)
    atomic_write(target, b"new content")
    written = target.stat().st_ino
    assert events == [("fsync", written), ("replace", written), ("fsync", tmp_path.stat().st_ino)]


def test_a_secret_is_created_0600_and_never_readable_by_others(tmp_path: Path) -> None:
    previous = os.umask(0)  # not even with no umask at all
    try:
        target = tmp_path / "root-ca-backup.pem"
        target.write_bytes(GOOD)
        target.chmod(0o644)
        with atomic_open(target, mode=0o600) as handle:
            (temporary,) = [p for p in tmp_path.iterdir() if p.name.endswith(TEMPORARY_SUFFIX)]
            assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
            handle.write(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        atomic_write(tmp_path / "new.key", b"key", mode=0o600)
        assert stat.S_IMODE((tmp_path / "new.key").stat().st_mode) == 0o600
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask")
def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_usual(tmp_path: Path) -> None:
    kept = tmp_path / "ruleset.nft"
    kept.write_bytes(GOOD)
    kept.chmod(0o664)  # group-writable: more than the umask lets a new file have
    atomic_write(kept, "table inet filter {}\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664
    atomic_write(tmp_path / "new.txt", "x")
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_replaced_file_keeps_its_owner(tmp_path: Path) -> None:
    target = tmp_path / "assets.csv"
    target.write_bytes(GOOD)
    os.chown(target, 4242, 4343)
    atomic_write(target, "name\n")
    assert (target.stat().st_uid, target.stat().st_gid) == (4242, 4343)


def test_a_file_this_process_may_not_write_is_not_replaced(tmp_path: Path) -> None:
    if writes_any_file(tmp_path):
        pytest.skip("this process may write any file (root)")
    target = tmp_path / "read-only.txt"
    target.write_bytes(GOOD)
    target.chmod(0o444)
    with pytest.raises(PermissionError):
        atomic_write(target, "x")
    assert _files(tmp_path) == {"read-only.txt": GOOD}


def test_a_symbolic_link_is_followed_and_stays(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "out.txt"
    real.write_bytes(GOOD)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["out.txt"]


def test_exclusive_never_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "backup.pem"
    atomic_write(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write(target, b"second", exclusive=True)
    with pytest.raises(FileExistsError), atomic_open(tmp_path / "raced.pem", exclusive=True) as handle:
        handle.write(b"ours")
        (tmp_path / "raced.pem").write_bytes(b"theirs, written meanwhile")
    assert _files(tmp_path) == {"backup.pem": b"first", "raced.pem": b"theirs, written meanwhile"}


def test_exclusive_on_a_file_system_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT and exFAT (a USB stick for the root CA's backup) refuse link() with EPERM; that file
    system is not mounted here, so its refusal is."""

    def no_hard_links(_self: Path, _target: Path) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(Path, "hardlink_to", no_hard_links)
    atomic_write(tmp_path / "backup.pem", b"whole", exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write(tmp_path / "backup.pem", b"again", exclusive=True)
    assert _files(tmp_path) == {"backup.pem": b"whole"}


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write(fifo, b"frames")
    reader.join(timeout=10)
    assert received == [b"frames"]
    assert stat.S_ISFIFO(fifo.stat().st_mode) and [p.name for p in tmp_path.iterdir()] == ["stream"]


def test_a_name_as_long_as_the_system_allows_has_a_temporary_that_fits(tmp_path: Path) -> None:
    target = tmp_path / ("é" * 127)  # 254 bytes in UTF-8
    atomic_write(target, "x")
    assert _files(tmp_path) == {target.name: b"x"}


def test_a_private_directory_is_made_0700_with_its_missing_parents(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    deep = shared / "srv" / "plantwarden" / "data"
    private_directory(deep)
    assert [stat.S_IMODE(d.stat().st_mode) for d in (deep, deep.parent, deep.parent.parent)] == [0o700] * 3
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # it was there: left as it is
    deep.chmod(0o750)
    private_directory(deep)
    assert stat.S_IMODE(deep.stat().st_mode) == 0o750
