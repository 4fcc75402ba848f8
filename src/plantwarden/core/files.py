"""Files written whole or not at all: what a command writes at a user's request (`-o FILE`,
`--out`, a backup) and the files of the data directory that must never be half written.

The content goes to a new temporary file beside the target (`.NAME.XXXXXXXX.partial`), which is
flushed and synced to disk, then renamed over the target (`os.replace`), and the directory is
synced. A failure part-way (a full disk, an error while the content is produced, Ctrl-C) removes
the temporary and leaves the target as it was; a power cut after the rename finds the whole new
file. `atomic_write` takes content in hand; `atomic_open` is a context manager yielding the file
object to write content to as it is produced.

Permissions: a secret (`mode=0o600`) is created with that mode (less the umask), so that it is
never readable by others, not even for a moment; without `mode`, a new file gets 0o666 less the
umask (as `open` gives it) and a replaced file keeps its permissions and, when the system lets
us, its owner. A file this process may not write is not replaced (PermissionError, as from
`open`). `exclusive=True` never replaces anything: the whole file appears under its name only if
nothing is there (a hard link; on a file system without hard links, such as FAT, a check just
before the rename), else FileExistsError.

A symbolic link is followed: the file it names is replaced and the link stays. A target that
exists but is not a regular file (a FIFO, /dev/stdout, /dev/null) is written directly: there is
no file to keep, and a rename would put a file in the device's place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

TEMPORARY_SUFFIX = ".partial"
NEW_FILE_MODE = 0o666
_NAME_KEPT = 40  # characters of the target's name in the temporary's, well within NAME_MAX in UTF-8
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP}


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None, exclusive: bool = False) -> None:
    """Write `data` (a str as UTF-8) to `path` whole or not at all (see the module)."""
    content = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_open(path, "wb", mode=mode, exclusive=exclusive) as handle:
        handle.write(content)


@overload
def atomic_open(
    path: Path, open_mode: Literal["wb"] = "wb", *, mode: int | None = None, exclusive: bool = False
) -> AbstractContextManager[BinaryIO]: ...


@overload
def atomic_open(
    path: Path,
    open_mode: Literal["w"],
    *,
    mode: int | None = None,
    exclusive: bool = False,
    newline: str | None = None,
) -> AbstractContextManager[TextIO]: ...


def atomic_open(
    path: Path,
    open_mode: Literal["w", "wb"] = "wb",
    *,
    mode: int | None = None,
    exclusive: bool = False,
    newline: str | None = None,
) -> AbstractContextManager[IO[Any]]:
    """A file object (binary, or UTF-8 text for "w") for the new content of `path`: when the
    `with` block ends normally the content replaces `path`; when it raises, `path` stays as it
    was and no temporary is left."""
    return _replacing(path, open_mode, mode, exclusive, newline)


@contextmanager
def _replacing(
    path: Path, open_mode: str, mode: int | None, exclusive: bool, newline: str | None
) -> Iterator[IO[Any]]:
    existing = _status(path)
    if existing is not None and exclusive:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    if existing is not None and not os.access(path, os.W_OK):  # as `open` would refuse it
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with _fdopen(os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC), open_mode, newline) as handle:
            yield handle
        return
    target = Path(os.path.realpath(path))
    temporary, descriptor = _create_temporary(target, mode, existing)
    handle = _fdopen(descriptor, open_mode, newline)
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        _publish(temporary, target, exclusive)
    except BaseException:
        with contextlib.suppress(OSError, ValueError):  # what was left in its buffer is discarded
            handle.close()
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def private_directory(path: Path) -> None:
    """Create `path` and each missing parent 0700, so that a directory this creates is its owner's
    only (the data directory holds the store, the records and the keys); a directory that exists
    keeps its permissions."""
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made by another process meanwhile: its permissions stay
            continue
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask


def fsync_directory(directory: Path) -> None:
    """Make the renames and new names in `directory` durable (a file system that cannot sync a
    directory, EINVAL, makes them durable its own way)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(descriptor)


def _status(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _fdopen(descriptor: int, open_mode: str, newline: str | None) -> IO[Any]:
    try:
        if open_mode == "wb":
            return os.fdopen(descriptor, "wb")
        return os.fdopen(descriptor, "w", encoding="utf-8", newline=newline)
    except BaseException:
        os.close(descriptor)
        raise


def _create_temporary(target: Path, mode: int | None, existing: os.stat_result | None) -> tuple[Path, int]:
    """A new file beside `target`, created with `mode`, else the replaced file's permissions, else
    NEW_FILE_MODE (each less the umask); a replaced file's owner and exact permissions kept."""
    kept = stat.S_IMODE(existing.st_mode) & 0o777 if existing is not None else None
    create_mode = mode if mode is not None else kept if kept is not None else NEW_FILE_MODE
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        temporary = target.with_name(f".{target.name[:_NAME_KEPT]}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        try:
            descriptor = os.open(temporary, flags, create_mode)
        except FileExistsError:
            continue
        break
    if mode is None and kept is not None and existing is not None:
        try:
            created = os.fstat(descriptor)
            if (created.st_uid, created.st_gid) != (existing.st_uid, existing.st_gid):
                with contextlib.suppress(PermissionError):  # only root gives a file away
                    os.fchown(descriptor, existing.st_uid, existing.st_gid)
            os.fchmod(descriptor, kept)  # the bits the umask took off, and any fchown cleared
        except BaseException:
            os.close(descriptor)
            temporary.unlink(missing_ok=True)
            raise
    return temporary, descriptor


def _publish(temporary: Path, target: Path, exclusive: bool) -> None:
    """Give the whole temporary file the target's name: over it, or (`exclusive`) only if free."""
    if not exclusive:
        temporary.replace(target)
        return
    try:
        target.hardlink_to(temporary)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        temporary.replace(target)
        return
    temporary.unlink()
