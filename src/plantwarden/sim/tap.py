"""The software tap: what the running plant sends, as a live pcapng stream a sensor can read.

The plant's own clients (the HMI, the historian, the engineer, the devices, an attack) report
every connection they open, every payload they send or receive and every close; the tap turns
them into the frames a span port would have seen, with the same Ethernet, VLAN, IPv4 and TCP
shape as the traffic generator (`traffic.network`, `wire`), and writes them with the wall-clock
time at once, so a reader of a FIFO or a file being written sees them as they happen. No root and
no capture interface are needed. Payloads are real (the bytes that went over the socket); the
link layer, the sequence numbers and the checksums are drawn, since loopback has none of them.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from plantwarden.sim.pcap import PcapngWriter
from plantwarden.sim.plant import Plant
from plantwarden.sim.traffic.network import Network
from plantwarden.sim.wire import Segment, TcpConnection

Endpoint = tuple[str, int]
MAX_SEGMENT = 1460
RTT = 0.0003


class Tap:
    """Frames of the plant's TCP exchanges, written as they happen to a pcapng stream."""

    def __init__(self, plant: Plant, stream: BinaryIO, *, seed: int = 0, owns_stream: bool = False) -> None:
        self.network = Network(plant, random.Random(f"{seed}:tap"))  # noqa: S311 - link-layer looks, not secrets
        self.names = {host.address: host.name for host in plant.hosts}
        self.writer = PcapngWriter(
            stream, owns_stream=owns_stream, interface="plant-tap", comment="Plantwarden tap"
        )
        self.connections: dict[tuple[Endpoint, Endpoint], TcpConnection] = {}
        self.lock = threading.Lock()
        self.writer.flush()

    @property
    def packets(self) -> int:
        """Frames written so far."""
        return self.writer.packets

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
        for segment in segments:
            self.writer.write(segment.time, segment.frame)
        self.writer.flush()

    def close(self) -> None:
        """Flush, and close the stream if the tap opened it."""
        with self.lock:
            self.writer.close()


def open_tap(plant: Plant, target: str, *, seed: int = 0) -> Tap:
    """A tap writing to `target`: a file or FIFO path, or `-` for standard output."""
    if target == "-":
        return Tap(plant, sys.stdout.buffer, seed=seed)
    return Tap(plant, Path(target).open("wb"), seed=seed, owns_stream=True)
