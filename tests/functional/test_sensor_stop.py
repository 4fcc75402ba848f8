"""How `sensor run` ends when it is stopped: a live capture ends by being stopped (Ctrl-C, or
SIGTERM from systemd, a container or `plantwarden up`), which is no error (exit status 0, as
tcpdump's); capture files not read to their end were interrupted (128 + the signal's number).
Each keeps what was read. A stop printed `error: interrupted` and exited 1, which a service
manager reads as a failed unit."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from plantwarden.sim.pcap import PcapngWriter
from tests.helpers import start_plantwarden, wait_for

FRAME = b"\x00\x11\x22\x33\x44\x55" * 2 + b"\x08\x00" + bytes(46)


def _feed(fifo: Path, opened: list[BinaryIO], done: threading.Event) -> None:
    """Open the FIFO for writing (once the sensor reads it) and write frames until `done`."""
    stream = fifo.open("wb")
    opened.append(stream)
    writer = PcapngWriter(stream, interface="test")
    try:
        while not done.is_set():
            writer.write(time.time(), FRAME)
            writer.flush()
            time.sleep(0.05)
    except OSError:  # the sensor went away
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()


@pytest.mark.parametrize(
    ("source", "signum", "code", "said"),
    [
        ("--tap", signal.SIGTERM, 0, "stopped (SIGTERM): what was read is recorded"),
        ("--tap", signal.SIGINT, 0, "stopped (Ctrl-C): what was read is recorded"),
        ("--pcap", signal.SIGINT, 130, "interrupted (Ctrl-C) before the end of the capture"),
        ("--pcap", signal.SIGTERM, 143, "interrupted (SIGTERM) before the end of the capture"),
    ],
)
def test_a_stopped_sensor_says_how_it_ended(
    tmp_path: Path, source: str, signum: signal.Signals, code: int, said: str
) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    opened: list[BinaryIO] = []
    done = threading.Event()
    feeder = threading.Thread(target=_feed, args=(fifo, opened, done), daemon=True)
    feeder.start()
    process = start_plantwarden(
        "--data-dir",
        str(tmp_path / "data"),
        "sensor",
        "run",
        source,
        str(fifo),
        "--site",
        "plant",
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: opened or None, timeout=60, what="the sensor reading the FIFO")
        stderr = tmp_path / "stderr.log"
        wait_for(lambda: "packets" in stderr.read_text() or None, timeout=60, what="the sensor's progress")
        process.send_signal(signum)
        assert process.wait(timeout=60) == code
    finally:
        done.set()
        if process.poll() is None:
            process.kill()
        feeder.join(timeout=10)
    text = stderr.read_text()
    assert said in text, text
    assert "error" not in text, text
    assert "records" in (tmp_path / "stdout.log").read_text()  # the summary came first
