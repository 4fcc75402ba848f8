"""Reading a capture's stream a chunk at a time, and following streams that cannot seek.

A stream that cannot seek (a FIFO, stdin) is followed: when no data has come for `idle_timeout`
seconds (or data has been waiting for `MAX_DELAY` seconds) the reading stops early, so that the
packets read so far go out as a possibly small batch.
"""

from __future__ import annotations

import enum
import io
import os
import select
import stat
import time
from collections.abc import Callable
from typing import BinaryIO

READ_SIZE = 4 << 20
IDLE_TIMEOUT = 0.05
MAX_DELAY = 0.5


class Status(enum.Enum):
    FULL = "full"
    IDLE = "idle"
    END = "end"


class ChunkSource:
    """Reads a stream a chunk at a time; when following, stops early once the data pauses."""

    def __init__(self, stream: BinaryIO, idle_timeout: float | None, read_size: int) -> None:
        self.stream = stream
        self.idle_timeout = idle_timeout
        self.read_size = read_size
        read1 = getattr(stream, "read1", None)
        self._read: Callable[[int], bytes] = read1 if callable(read1) else stream.read
        self._rewinds = idle_timeout is None and _seekable(stream)

    def fill(self, keep: bytes | memoryview) -> tuple[bytes, Status]:
        """`keep` followed by up to `read_size` new bytes, and why the reading stopped.

        A seekable stream reads `keep` again instead (cheaper than joining it to the new bytes).
        """
        want = self.read_size
        if self._rewinds and len(keep):
            self.stream.seek(-len(keep), io.SEEK_CUR)
            want, keep = want + len(keep), b""
        parts: list[bytes | memoryview] = [keep] if len(keep) else []
        total, started, status = 0, 0.0, Status.FULL
        while total < want:
            if total and self.idle_timeout is not None and not self._wait(started):
                status = Status.IDLE
                break
            data = self._read(want - total)
            if not data:
                status = Status.END
                break
            started = started or time.monotonic()
            parts.append(data)
            total += len(data)
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0], status
        return b"".join(parts), status

    def _wait(self, started: float) -> bool:
        """Whether more data comes within the idle timeout (and before the maximal delay)."""
        assert self.idle_timeout is not None
        timeout = min(self.idle_timeout, started + MAX_DELAY - time.monotonic())
        return timeout > 0 and bool(select.select([self.stream], [], [], timeout)[0])


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def is_followed(stream: BinaryIO) -> bool:
    """Whether a stream is followed: it has a file descriptor that is not a regular file."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    return not stat.S_ISREG(mode)
