"""The software tap outlives its reader: a sensor that stops (or is restarted) must not fail the
plant's clients, and the next reader of the FIFO gets a capture from its start."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.sim import tap as tap_module
from plantwarden.sim.plant import default_plant
from plantwarden.sim.tap import Tap, open_tap

PLANT = default_plant()
HMI = (PLANT.host("hmi-1").address, 40_001)
PLC = (PLANT.plcs[0].host.address, 502)


class Reader:
    """A thread that opens the FIFO for reading and keeps what it reads (up to `limit` bytes)."""

    def __init__(self, fifo: Path, limit: int | None = None) -> None:
        self.data = bytearray()
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fifo, limit), daemon=True)
        self.thread.start()

    def _run(self, fifo: Path, limit: int | None) -> None:
        with fifo.open("rb", buffering=0) as stream:
            self.opened.set()
            while limit is None or len(self.data) < limit:
                chunk = stream.read(65536)
                if not chunk:
                    break
                self.data += chunk

    def packets(self) -> int:
        return sum(len(batch) for batch in read_capture(io.BytesIO(bytes(self.data))))


def exchange(tap: Tap, port: int) -> None:
    """One connection of the HMI to a PLC: handshake, a request and its answer, close."""
    client = (HMI[0], port)
    tap.opened(client, PLC)
    tap.sent(client, PLC, b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x02", from_client=True)
    tap.sent(client, PLC, b"\x00\x01\x00\x00\x00\x07\x01\x03\x04\x00\x01\x00\x02", from_client=False)
    tap.closed(client, PLC)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "tap.fifo"
    os.mkfifo(path)
    return path


def test_a_reader_that_goes_away_fails_no_client_and_the_next_one_reads_a_whole_capture(
    fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tap_module, "REOPEN_EVERY", 0.0)
    first = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.DEVNULL)  # a sensor, to be killed
    tap = open_tap(PLANT, str(fifo))  # waits for the first reader
    exchange(tap, 40_001)
    written = tap.packets
    assert written > 0 and tap.sections == 1
    first.kill()
    first.wait(10)
    for port in range(40_002, 40_010):  # the pipe is broken: dropped, and no client fails
        exchange(tap, port)
    assert tap.writer is None and tap.dropped > 0 and tap.packets == written

    second = Reader(fifo)  # it waits in open() for a writer: the tap's next write finds it
    deadline = time.monotonic() + 10
    port = 40_020
    while tap.sections == 1 and time.monotonic() < deadline:
        exchange(tap, port)  # a reader is back: a new section, its header first
        port += 1
        time.sleep(0.01)
    assert tap.sections == 2 and tap.packets > written
    tap.close()
    second.thread.join(10)
    assert second.data[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header
    assert second.packets() == tap.packets - written


def test_without_a_fifo_a_failed_write_drops_frames_and_fails_no_client(tmp_path: Path) -> None:
    read, write = os.pipe()
    tap = Tap(PLANT, os.fdopen(write, "wb"), owns_stream=True)  # no reopen: a pipe given by the caller
    os.close(read)
    exchange(tap, 40_001)
    exchange(tap, 40_002)
    assert tap.writer is None and tap.dropped > 0
    tap.close()
