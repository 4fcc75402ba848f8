"""Real failures of a write part-way, for the tests of the files commands write at a user's
request: a full disk (RLIMIT_FSIZE: every write past a size fails with EFBIG, "File too large",
as ENOSPC would), from now or from the moment the store has committed; and a directory's
files with their bytes, to show that a failed write changed nothing and left no temporary."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

DISK_ROOM = 256
"""Bytes a file may reach on the "full disk": less than any output the tests write."""


@contextmanager
def full_disk(room: int = DISK_ROOM) -> Iterator[None]:
    """Every write that would take a file of this process past `room` bytes fails (EFBIG);
    SIGXFSZ is ignored so that the write returns the error instead of ending the process."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)
        signal.signal(signal.SIGXFSZ, previous_handler)


@contextmanager
def full_disk_after_commit(room: int = DISK_ROOM) -> Iterator[None]:
    """The disk fills up once a session has committed (the store's own writes are done): the
    output written next is the first write to fail."""
    with ExitStack() as stack:

        def fill(_session: Session) -> None:
            stack.enter_context(full_disk(room))

        event.listen(Session, "after_commit", fill, once=True)
        try:
            yield
        finally:
            event.remove(Session, "after_commit", fill)


def writes_any_file(directory: Path) -> bool:
    """Whether this process may write a file whatever its permissions (root, with its
    capabilities): the tests of a refusal then have nothing to show."""
    probe = directory / ".read-only-probe"
    probe.touch(0o444)
    probe.chmod(0o444)
    try:
        return os.access(probe, os.W_OK)
    finally:
        probe.unlink()


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file in `directory` (hidden temporaries too) with its bytes."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}
