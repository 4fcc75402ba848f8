"""Where `sensor run` reads packets from: capture files (or standard input), a live interface, the
plant's tap (a FIFO); with `--duration`, a live interface or the tap is left when it is over."""

from __future__ import annotations

import io
import os
import select
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.pcap import open_capture_reader, read_capture


def packet_batches(
    pcaps: tuple[Path, ...], interface: str | None, tap: Path | None, duration: float | None
) -> Iterator[tuple[PacketBatch | None, tuple[int, int] | None]]:
    """The batches of the chosen source, each with the capture's (received, dropped) counts when it
    keeps them (a live interface), and `(None, counts)` after each quiet second of one."""
    if interface:
        yield from _live(interface, duration)
        return
    if tap is not None and duration is not None:
        yield from _tap_until(tap, time.monotonic() + duration)
        return
    paths: Iterable[Path] = pcaps if pcaps else [tap] if tap is not None else []
    for path in paths:
        source = sys.stdin.buffer if str(path) == "-" else path
        for batch in read_capture(source):
            yield batch, None


def _live(
    interface: str, duration: float | None
) -> Iterator[tuple[PacketBatch | None, tuple[int, int] | None]]:
    """Batches as the kernel hands them over, and `(None, stats)` after each second without any."""
    from plantwarden.capture.live import LiveCapture  # noqa: PLC0415 - Linux-only, loaded when asked for

    deadline = None if duration is None else time.monotonic() + duration
    quiet_since = time.monotonic()
    with LiveCapture(interface) as capture:
        while deadline is None or time.monotonic() < deadline:
            batch = capture.read(timeout=0.2)
            stats = capture.stats()
            if batch is not None:
                quiet_since = time.monotonic()
                yield batch, (stats.received, stats.dropped)
            elif time.monotonic() - quiet_since >= 1.0:
                quiet_since = time.monotonic()
                yield None, (stats.received, stats.dropped)


class _TimeUp(Exception):
    """The --duration of a run on the tap is over."""


class _TapUntil(io.FileIO):
    """The tap read until a deadline: opening a FIFO does not wait for its writer, and a read that
    would wait past the deadline raises `_TimeUp` (a read with data waiting still returns it)."""

    def __init__(self, path: Path, deadline: float) -> None:
        super().__init__(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK))
        self.deadline = deadline

    def read(self, size: int | None = -1) -> bytes:
        while True:
            if not select.select([self], [], [], max(0.0, self.deadline - time.monotonic()))[0]:
                raise _TimeUp
            data = super().read(size)
            if data is not None:  # None: nothing after all (the descriptor does not block)
                return data


def _tap_until(tap: Path, deadline: float) -> Iterator[tuple[PacketBatch | None, tuple[int, int] | None]]:
    """The tap's batches until the deadline, as `_live` stops a live interface: a batch read is
    handed on, a quiet tap (or one no plant writes yet) is left at the deadline."""
    with _TapUntil(tap, deadline) as stream:
        try:
            with open_capture_reader(stream) as reader:  # it reads the first bytes: it may wait
                for batch in reader:
                    yield batch, None
                    if time.monotonic() >= deadline:
                        return
        except _TimeUp:
            return
