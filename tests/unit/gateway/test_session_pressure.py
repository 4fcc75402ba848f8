"""A session under pressure from its own client: one that pipelines without reading its answers
(the gateway's queue of answers stays bounded, and no answer is lost), and one that reads them
slowly (it is not taken for a slow sender). A real Gateway, a real session on a socket pair with
a small send buffer, so that the kernel's buffers fill in a moment."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordWriter
from plantwarden.gateway import session as session_module
from plantwarden.gateway.decide import SERVER_DEVICE_BUSY, RateLimit
from plantwarden.gateway.frames import GATEWAY_PATH_UNAVAILABLE
from plantwarden.gateway.identity import Client
from plantwarden.gateway.link import Link
from plantwarden.gateway.records import Endpoints, RecordBuffer, packed, read_gateway_records
from plantwarden.gateway.server import Gateway, GatewayConfig
from plantwarden.gateway.session import SLICE, Session
from plantwarden.policy.model import Subject
from tests.unit.gateway.support import adu, read_holding, state

NO_ROUTE = adu(1, 9, read_holding(0, 1))  # unit id 9: no PLC behind the gateway answers it
ANSWER = struct.pack(">HHHBBB", 1, 0, 3, 9, 0x83, GATEWAY_PATH_UNAVAILABLE)
HIGH_WATER = 16 * 1024
"""The session's bound on unread answers, made small here (256 KiB in the gateway)."""
ENDS = Endpoints("plant-a", "default", packed("127.0.0.1"), 50_000, packed("127.0.0.1"), 502)


@dataclass
class Pair:
    gateway: Gateway
    session: Session
    link: Link
    client: socket.socket


@pytest.fixture(autouse=True)
def _small_high_water(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "HIGH_WATER", HIGH_WATER)


@contextlib.asynccontextmanager
async def session_pair(
    frame_timeout: float = 5.0,
    source_rate: float | None = None,
    idle_timeout: float = 600.0,
    records: RecordBuffer | None = None,
) -> AsyncIterator[Pair]:
    """A session of a plain operator client (no rate limit on its address unless `source_rate`)."""
    limit = None if source_rate is None else RateLimit(source_rate, source_rate)
    config = GatewayConfig(
        "plant-a", frame_timeout=frame_timeout, idle_timeout=idle_timeout, source_rate_limit=limit
    )
    gateway = Gateway(config, lambda: state(), records=records)
    await gateway.start()
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    link = Link(ours)
    session = Session(gateway, Client(Subject("address", "127.0.0.1"), "operator"), link, ENDS)
    task = asyncio.create_task(session.run())
    try:
        yield Pair(gateway, session, link, theirs)
    finally:
        session.close("test:done", "the test ended")
        await asyncio.wait_for(task, 5)
        theirs.close()
        await gateway.stop()


def _send_all(client: socket.socket, data: bytes, sent: list[int]) -> None:
    """Send what the gateway takes (in a thread: it blocks when the gateway stops reading)."""
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            count = client.send(view[:65536])
            sent.append(count)
            view = view[count:]


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def test_a_client_that_never_reads_leaves_a_bounded_queue_and_then_gets_every_answer() -> None:
    requests = 8_000  # 72 kB of answers: far more than HIGH_WATER and the sockets' buffers

    async def scenario() -> None:
        async with session_pair() as pair:
            sent: list[int] = []
            sender = threading.Thread(target=_send_all, args=(pair.client, NO_ROUTE * requests, sent))
            sender.start()
            peak = 0

            def stalled() -> bool:
                nonlocal peak
                peak = max(peak, pair.link.get_write_buffer_size())
                return pair.link.get_write_buffer_size() > HIGH_WATER and not sender.is_alive()

            with contextlib.suppress(TimeoutError):  # the sender may still block: it is stalled
                await _until(stalled, timeout=3.0)
            peak = max(peak, pair.link.get_write_buffer_size())
            assert HIGH_WATER < peak <= HIGH_WATER + (SLICE + 1) * len(ANSWER)
            assert not pair.session.closed
            received = bytearray()
            reader = pair.client
            reader.setblocking(False)
            while len(received) < requests * len(ANSWER):
                await asyncio.sleep(0)
                try:
                    chunk = reader.recv(1 << 20)
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                    continue
                assert chunk, "the gateway closed the connection"
                received += chunk
            sender.join(5)
            assert sum(sent) == requests * len(NO_ROUTE)
            assert bytes(received) == ANSWER * requests  # every answer, in order, none lost

    asyncio.run(scenario())


def test_a_client_slow_to_read_its_answers_is_not_taken_for_a_slow_sender() -> None:
    async def scenario() -> None:
        async with session_pair(frame_timeout=0.2) as pair:
            sent: list[int] = []
            # a partial ADU at the end: its rest waits in the kernel while the gateway, its
            # answers unread, stops reading
            data = NO_ROUTE * 8_000 + NO_ROUTE[:5]
            threading.Thread(target=_send_all, args=(pair.client, data, sent), daemon=True).start()
            await _until(lambda: pair.link.get_write_buffer_size() > HIGH_WATER)
            reader = pair.client
            reader.setblocking(False)
            loop = asyncio.get_running_loop()
            until = loop.time() + 1.0  # five frame timeouts of reading 4 kB every 50 ms
            while loop.time() < until:
                with contextlib.suppress(BlockingIOError):
                    reader.recv(4096)
                await asyncio.sleep(0.05)
            assert not pair.session.closed

    asyncio.run(scenario())


def test_requests_no_plc_would_take_count_against_the_source_address_rate() -> None:
    async def scenario() -> None:
        async with session_pair(source_rate=10.0) as pair:
            pair.client.sendall(NO_ROUTE * 15)
            pair.client.setblocking(False)
            received = bytearray()
            while len(received) < 15 * len(ANSWER):
                try:
                    received += pair.client.recv(4096)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            codes = [received[index + 8] for index in range(0, len(received), len(ANSWER))]
            assert codes == [GATEWAY_PATH_UNAVAILABLE] * 10 + [SERVER_DEVICE_BUSY] * 5

    asyncio.run(scenario())


def test_a_client_that_stops_sending_and_never_reads_ends_idle_not_as_a_slow_sender(
    tmp_path: Path,
) -> None:
    backend = SQLitePartitions(tmp_path / "records")

    async def scenario() -> None:
        records = RecordBuffer(RecordWriter(backend, "gateway-plant-a"))
        async with session_pair(frame_timeout=0.2, idle_timeout=0.5, records=records) as pair:
            sent: list[int] = []
            data = NO_ROUTE * 8_000 + NO_ROUTE[:5]  # and a partial ADU it never finishes
            sender = threading.Thread(target=_send_all, args=(pair.client, data, sent), daemon=True)
            sender.start()
            await _until(lambda: pair.link.get_write_buffer_size() > HIGH_WATER)
            await _until(lambda: pair.session.closed, timeout=3.0)  # the idle timeout, not never

    asyncio.run(scenario())
    rules = {rule for batch in read_gateway_records(backend, 0, 2**62) for rule in batch["rule"]}
    assert "gateway:no-route" in rules
    assert not any(str(rule).startswith("gateway:frame") for rule in rules), rules
