"""The software tap: what the running plant sends, as a live pcapng stream a sensor can read.

The plant's own clients (the HMI, the historian, the engineer, the devices, an attack) report
every connection they open, every payload they send or receive and every close; the tap turns
them into the frames a span port would have seen, with the same Ethernet, VLAN, IPv4 and TCP
shape as the traffic generator (`traffic.network`, `wire`), and writes them with the wall-clock
time at once, so a reader of a FIFO or a file being written sees them as they happen. No root and
no capture interface are needed. Payloads are real (the bytes that went over the socket); the
link layer, the sequence numbers and the checksums are drawn, since loopback has none of them.

The plant must outlive its reader: when the reader of a FIFO goes away (a sensor that stops or
is restarted), writing fails with a broken pipe. The tap then drops frames, with one warning,
never failing the client that reported them, and closes its end, so that what the old reader
left unread goes with the pipe. As soon as a reader opens the FIFO again, the tap starts a new
pcapng section (its header first), so the new reader reads a capture from its start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from plantwarden.sim.pcap import PcapngWriter
from plantwarden.sim.plant import Plant
from plantwarden.sim.traffic.network import Network
from plantwarden.sim.wire import Segment, TcpConnection

log = logging.getLogger(__name__)
Endpoint = tuple[str, int]
MAX_SEGMENT = 1460
RTT = 0.0003
REOPEN_EVERY = 0.5
"""Seconds between two looks for a new reader of a FIFO whose reader went away."""


class Tap:
    """Frames of the plant's TCP exchanges, written as they happen to a pcapng stream."""

    def __init__(
        self,
        plant: Plant,
        stream: BinaryIO,
        *,
        seed: int = 0,
        owns_stream: bool = False,
        reopen: Callable[[], BinaryIO | None] | None = None,
    ) -> None:
        self.network = Network(plant, random.Random(f"{seed}:tap"))  # noqa: S311 - link-layer looks, not secrets
        self.names = {host.address: host.name for host in plant.hosts}
        self.connections: dict[tuple[Endpoint, Endpoint], TcpConnection] = {}
        self.lock = threading.Lock()
        self.reopen = reopen
        """A new stream once the reader is gone (None: none yet); without it, frames stay dropped."""
        self.written = self.dropped = 0
        self.sections = 0
        self.writer: PcapngWriter | None = None
        self._next_look = 0.0
        self._start(stream, owns_stream)

    @property
    def packets(self) -> int:
        """Frames written so far (in every section)."""
        return self.written

    def _start(self, stream: BinaryIO, owns_stream: bool) -> None:
        """A new pcapng section on `stream`: its header and the interface, written at once."""
        self.writer = PcapngWriter(
            stream, owns_stream=owns_stream, interface="plant-tap", comment="Plantwarden tap"
        )
        self.sections += 1
        self.writer.flush()

    def _name(self, address: str) -> str:
        name = self.names.get(address)
        return name if name is not None else self.network.host_at(address).name

    def opened(self, client: Endpoint, server: Endpoint) -> None:
        """A client connected: the handshake."""
        with self.lock:
            connection = self.network.tcp(self._name(client[0]), self._name(server[0]), server[1], client[1])
            self.connections[client, server] = connection
            self._write(connection.handshake(time.time(), RTT))

    def sent(self, client: Endpoint, server: Endpoint, data: bytes, *, from_client: bool) -> None:
        """A payload went one way on an open connection: its segments."""
        with self.lock:
            connection = self.connections.get((client, server))
            if connection is None or not data:
                return
            now = time.time()
            for start in range(0, len(data), MAX_SEGMENT):
                self._write([connection.send(now, from_client, data[start : start + MAX_SEGMENT])])

    def closed(self, client: Endpoint, server: Endpoint) -> None:
        """The client closed the connection: the closing exchange."""
        with self.lock:
            connection = self.connections.pop((client, server), None)
            if connection is not None:
                self._write(connection.close(time.time(), RTT))

    def refused(self, client: Endpoint, server: Endpoint) -> None:
        """A connection attempt to a closed port (or an address that does not answer)."""
        with self.lock:
            connection = self.network.tcp(self._name(client[0]), self._name(server[0]), server[1], client[1])
            now = time.time()
            self._write([connection.syn(now), connection.refuse(now + RTT)])

    def _write(self, segments: list[Segment]) -> None:
        if self.writer is None and not self._reader_back():
            self.dropped += len(segments)
            return
        assert self.writer is not None
        try:
            for segment in segments:
                self.writer.write(segment.time, segment.frame)
            self.writer.flush()
        except OSError as error:  # the reader went away (a broken pipe), or the file cannot grow
            self._lost(error)
            self.dropped += len(segments)
            return
        self.written += len(segments)

    def _lost(self, error: OSError) -> None:
        """Stop writing to a stream that failed; the frames are dropped until a reader is back."""
        writer, self.writer = self.writer, None
        if writer is not None and writer.owns_stream:
            writer.buffer.clear()  # what could not be written is not written at close either
            with contextlib.suppress(OSError):  # its descriptor is closed all the same
                writer.stream.close()
        log.warning(
            "the tap cannot write (%s): frames are dropped%s",
            error.strerror or error,
            " until a reader opens it again" if self.reopen is not None else "",
        )

    def _reader_back(self) -> bool:
        """Whether a reader opened the FIFO again (looked for every `REOPEN_EVERY` s): the tap
        starts a new section for it."""
        if self.reopen is None or time.monotonic() < self._next_look:
            return False
        self._next_look = time.monotonic() + REOPEN_EVERY
        stream = self.reopen()
        if stream is None:
            return False
        try:
            self._start(stream, owns_stream=True)
        except OSError as error:
            self._lost(error)
            return False
        log.info(
            "a reader opened the tap again: section %d starts (%d frames dropped)",
            self.sections,
            self.dropped,
        )
        return True

    def close(self) -> None:
        """Flush, and close the stream if the tap opened it."""
        with self.lock:
            if self.writer is not None:
                try:
                    self.writer.close()
                except OSError as error:
                    self._lost(error)


def open_tap(plant: Plant, target: str, *, seed: int = 0) -> Tap:
    """A tap writing to `target`: a file or FIFO path, or `-` for standard output. A FIFO whose
    reader goes away is opened again when a reader is back."""
    if target == "-":
        return Tap(plant, sys.stdout.buffer, seed=seed)
    path = Path(target)
    stream = path.open("wb")  # a FIFO: waits for its first reader
    fifo = stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    return Tap(
        plant, stream, seed=seed, owns_stream=True, reopen=(lambda: reader_side(path)) if fifo else None
    )


def reader_side(fifo: Path) -> BinaryIO | None:
    """The FIFO opened for writing if a reader has it open, else None (without waiting for one)."""
    try:
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ENXIO, errno.ENOENT):  # no reader yet; the FIFO was removed
            return None
        raise
    os.set_blocking(descriptor, True)  # as the first stream: a reader that lags slows the writer
    return os.fdopen(descriptor, "wb")
