"""The upstream pool against a fake PLC of our own, on a loopback socket.

The fake PLC answers each request as the test says: at once, late, never, out of order, with
another unit id, another protocol id or a broken length field, cut over several TCP segments, or by
closing the connection. It records every frame it receives and which requests are outstanding on
each connection, and counts its connections, so the tests can prove the pool's bound, its
pipelining and its transaction ids. A second one, `StalledPlc`, stops reading, to prove that
requests then wait for it (and for nothing else once it is gone).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.gateway.upstream import WRITE_BUFFER_LIMIT, UpstreamError, UpstreamPool

T = TypeVar("T")
MBAP = struct.Struct(">HHHB")


@dataclass(frozen=True)
class Received:
    connection: int
    transaction_id: int
    unit_id: int
    pdu: bytes


Reply = list[tuple[float, bytes | None]]
"""What the PLC does for a request: after each delay (seconds), write these bytes, or close (None)."""


def frame(transaction_id: int, unit_id: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    return MBAP.pack(transaction_id, protocol_id, len(pdu) + 1, unit_id) + pdu


def echo(request: Received) -> Reply:
    """The request's own PDU back at once: each request carries a payload only it has."""
    return [(0.0, frame(request.transaction_id, request.unit_id, request.pdu))]


@dataclass
class FakePlc:
    reply: Callable[[Received], Reply] = echo
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    open_max: int = 0
    outstanding_max: int = 0  # most requests unanswered at once on one connection
    out_of_order: int = 0  # answers written while an earlier request of the connection waited
    reused_in_flight: int = 0  # requests whose transaction id was still outstanding
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> FakePlc:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # Server.close_clients() is Python 3.13+
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.open_max = max(self.open_max, self.open_now)
        self._writers.add(writer)
        outstanding: list[int] = []
        try:
            while True:
                header = await reader.readexactly(7)
                transaction_id, protocol_id, length, unit_id = MBAP.unpack(header)
                assert protocol_id == 0 and 2 <= length <= 254
                request = Received(number, transaction_id, unit_id, await reader.readexactly(length - 1))
                self.received.append(request)
                if transaction_id in outstanding:
                    self.reused_in_flight += 1
                outstanding.append(transaction_id)
                self.outstanding_max = max(self.outstanding_max, len(outstanding))
                self._schedule(writer, outstanding, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()

    def _schedule(self, writer: asyncio.StreamWriter, outstanding: list[int], request: Received) -> None:
        loop = asyncio.get_running_loop()
        steps = self.reply(request)
        if not steps:
            return  # never answered, and stays outstanding

        def send(data: bytes | None, last: bool) -> None:
            if last and request.transaction_id in outstanding:
                if outstanding[0] != request.transaction_id:
                    self.out_of_order += 1
                outstanding.remove(request.transaction_id)
            if data is None:
                writer.close()
            elif not writer.is_closing():
                writer.write(data)

        for index, (delay, data) in enumerate(steps):
            loop.call_later(delay, send, data, index == len(steps) - 1)


class StalledPlc(asyncio.Protocol):
    """A PLC that reads nothing until told to (`read_again`), then echoes every request it reads
    (a request frame is a valid answer to itself); or that drops its connections meanwhile."""

    def __init__(self, connections: list[StalledPlc]) -> None:
        self.connections = connections
        self.buffer = bytearray()

    @classmethod
    async def serve(cls) -> tuple[asyncio.Server, list[StalledPlc]]:
        listening = socket.socket()
        # A small receive buffer (the accepted sockets inherit it): the kernel takes little before
        # the gateway's own buffer fills.
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        connections: list[StalledPlc] = []
        server = await asyncio.get_running_loop().create_server(lambda: cls(connections), sock=listening)
        return server, connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()
        self.connections.append(self)

    def read_again(self) -> None:
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 7 and len(self.buffer) >= 6 + MBAP.unpack_from(self.buffer)[2]:
            end = 6 + MBAP.unpack_from(self.buffer)[2]
            self.transport.write(bytes(self.buffer[:end]))
            del self.buffer[:end]


def upstream_socket(pool: UpstreamPool) -> socket.socket:
    """The socket of the pool's one open connection (the pool does not show it: tests only)."""
    return cast(socket.socket, pool._open[0].transport.get_extra_info("socket"))


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def numbered(n: int) -> bytes:
    """A read-holding-registers-shaped PDU whose 4 data bytes say which request it is."""
    return b"\x03" + n.to_bytes(4, "big")


async def expect_error(reason: str, call: Awaitable[bytes]) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await call
    assert caught.value.reason == reason, caught.value.message
    return caught.value


def test_200_requests_from_16_tasks_over_two_connections_each_get_their_own_answer() -> None:
    shuffle = random.Random(7)  # noqa: S311 - answer delays, not secrets

    def late_and_out_of_order(request: Received) -> Reply:
        return [(shuffle.uniform(0, 0.01), frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late_and_out_of_order) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=2)

            async def client(task: int) -> list[tuple[bytes, bytes]]:
                asked = [numbered(task * 1000 + n) for n in range(13 if task < 8 else 12)]
                return [(pdu, await pool.request(task + 1, pdu)) for pdu in asked]

            results = await asyncio.gather(*(client(task) for task in range(16)))
            await pool.close()
        pairs = [pair for result in results for pair in result]
        assert len(pairs) == 200
        assert all(asked == answered for asked, answered in pairs)
        assert plc.connections == 2 and plc.open_max == 2  # the bound, and both used
        assert plc.outstanding_max > 1 and plc.out_of_order > 0  # pipelined, answered out of order
        assert plc.reused_in_flight == 0
        assert pool.stats["requests"] == pool.stats["answers"] == 200
        assert pool.stats["in_flight_max"] == 16
        assert len({(r.connection, r.transaction_id) for r in plc.received}) == 200

    run(scenario)


def test_a_size_one_pool_pipelines_everything_on_one_connection() -> None:
    async def scenario() -> None:
        async with FakePlc() as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            answers = await asyncio.gather(*(pool.request(1, numbered(n)) for n in range(50)))
            await pool.close()
        assert answers == [numbered(n) for n in range(50)]
        assert plc.connections == 1 and plc.outstanding_max > 1

    run(scenario)


def test_pipeline_depth_one_keeps_one_request_in_flight_per_connection_and_serves_all_in_turn() -> None:
    def late(request: Received) -> Reply:
        return [(0.002, frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=2, pipeline_depth=1)
            answers = await asyncio.gather(*(pool.request(1, numbered(n)) for n in range(60)))
            await pool.close()
        assert answers == [numbered(n) for n in range(60)]
        assert plc.outstanding_max == 1 and plc.connections == 2 and pool.stats["in_flight_max"] == 2

    run(scenario)


def test_the_request_timeout_counts_the_wait_for_room_on_a_connection() -> None:
    """Requests in line behind an unanswered one fail within their own timeout, not one after
    another; and a request that comes later does not overtake them."""

    def only_5(request: Received) -> Reply:
        return echo(request) if request.pdu == numbered(5) else []

    async def scenario() -> None:
        async with FakePlc(only_5) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.2, pipeline_depth=1)
            started = time.monotonic()
            stuck = asyncio.ensure_future(pool.request(1, numbered(1)))
            await asyncio.sleep(0.01)
            waiting = [asyncio.ensure_future(pool.request(1, numbered(n))) for n in (2, 3, 4)]
            await asyncio.sleep(0.01)
            later = asyncio.ensure_future(pool.request(1, numbered(5)))
            results = await asyncio.gather(stuck, *waiting, return_exceptions=True)
            failed_by = time.monotonic() - started
            assert await later == numbered(5)
            await pool.close()
        assert [getattr(r, "reason", None) for r in results] == ["timeout"] * 4
        assert any("had room for another request" in str(r) for r in results)
        assert failed_by < 0.35  # each within its own 0.2 s, not 4 x 0.2 s
        assert pool.stats["in_flight_max"] == 1 and plc.received[-1].pdu == numbered(5)

    run(scenario)


def test_a_busy_client_does_not_starve_a_request_waiting_for_room() -> None:
    """A client that sends its next request as soon as its answer arrives finds the room it just
    freed, before the request in line runs: it must queue behind that request all the same."""

    def late(request: Received) -> Reply:
        return [(0.002, frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, pipeline_depth=1)

            async def busy() -> None:
                for n in range(20):
                    await pool.request(1, numbered(n))

            hog = asyncio.ensure_future(busy())
            await asyncio.sleep(0.001)
            assert await pool.request(2, numbered(100)) == numbered(100)
            await hog
            await pool.close()
        assert [r.pdu for r in plc.received].index(numbered(100)) <= 2

    run(scenario)


def test_answers_in_reverse_order_reach_the_right_requests() -> None:
    async def scenario() -> None:
        held: list[Received] = []

        def hold_then_reverse(request: Received) -> Reply:
            held.append(request)
            if len(held) < 8:
                return []
            return [(0.0, b"".join(frame(r.transaction_id, r.unit_id, r.pdu) for r in reversed(held)))]

        async with FakePlc(hold_then_reverse) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            answers = await asyncio.gather(*(pool.request(n, numbered(n)) for n in range(8)))
            await pool.close()
        assert answers == [numbered(n) for n in range(8)] and plc.outstanding_max == 8

    run(scenario)


def test_answers_cut_anywhere_across_tcp_segments_reach_their_requests() -> None:
    """Three answers written in four segments, 10 ms apart: the first cut inside a header, the next
    inside a PDU, then one segment with the end of an answer, a whole one and the start of the last."""
    held: list[Received] = []

    def hold_then_cut(request: Received) -> Reply:
        if len(held) == 3:
            return echo(request)
        held.append(request)
        if len(held) < 3:
            return []
        answers = b"".join(frame(r.transaction_id, r.unit_id, r.pdu) for r in held)
        assert len(answers) == 36  # 3 x (7 + 5)
        cuts = [0, 3, 10, 26, 36]
        return [(0.01 * n, answers[cuts[n] : cuts[n + 1]]) for n in range(4)]

    async def scenario() -> None:
        async with FakePlc(hold_then_cut) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            answers = await asyncio.gather(*(pool.request(n, numbered(n)) for n in range(3)))
            assert await pool.request(7, numbered(7)) == numbered(7)  # nothing left in the buffer
            await pool.close()
        assert answers == [numbered(n) for n in range(3)]
        assert pool.stats["answers"] == 4 and pool.stats["dropped"] == pool.stats["malformed"] == 0

    run(scenario)


def test_the_connections_send_each_request_at_once_tcp_nodelay() -> None:
    async def scenario() -> None:
        async with FakePlc() as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            await pool.request(1, numbered(1))
            assert upstream_socket(pool).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            await pool.close()

    run(scenario)


@pytest.mark.parametrize("then", ["reads-again", "drops-the-connection", "deadline-passes", "pool-closes"])
def test_requests_to_a_plc_that_stops_reading_wait_until_it_reads_again(then: str) -> None:
    """More than WRITE_BUFFER_LIMIT bytes of requests the PLC does not read: nothing more is sent on
    the connection, the other requests wait in line; an answer that comes meanwhile is handed over
    at once. When the PLC reads again every request is answered; when it drops the connection, those
    sent on it fail as "unavailable" and the others go on a new one; at their deadline all fail as
    "timeout", in flight or in line; when the pool closes, all fail as "closed" at once, though the
    PLC reads none of what is still buffered."""
    count = 600  # 600 x 260 bytes: well past the limit and what the kernel buffers

    def big(n: int) -> bytes:
        return b"\x10" + n.to_bytes(4, "big") + bytes(248)  # a 253-byte PDU (the most there is)

    async def scenario() -> None:
        server, plc = await StalledPlc.serve()
        port = server.sockets[0].getsockname()[1]
        timeout = 0.3 if then == "deadline-passes" else 10.0
        pool = UpstreamPool("127.0.0.1", port, size=1, request_timeout=timeout)
        requests = [asyncio.ensure_future(pool.request(1, big(0)))]
        while not pool._open:
            assert not requests[0].done(), requests[0]
            await asyncio.sleep(0.001)
        upstream_socket(pool).setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # same for ours
        requests += [asyncio.ensure_future(pool.request(1, big(n))) for n in range(1, count)]
        await asyncio.sleep(0.02)
        connection = pool._open[0]
        assert connection.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT
        assert connection.paused
        sent = pool.stats["requests"]  # the others wait in line
        assert WRITE_BUFFER_LIMIT // 260 < sent < count
        plc[0].transport.write(frame(1, 1, big(0)))  # the first one's answer (id 1)
        await asyncio.sleep(0.05)
        assert requests[0].done() and not any(request.done() for request in requests[1:])
        assert pool.stats["requests"] == sent
        started = time.monotonic()
        async with asyncio.timeout(5):  # a hang fails the test
            if then == "reads-again":
                plc[0].read_again()
            elif then == "drops-the-connection":
                plc[0].transport.abort()
                while len(plc) < 2:  # the pool opens a new connection for the requests in line
                    await asyncio.sleep(0.001)
                plc[1].read_again()
            elif then == "pool-closes":
                await pool.close()
            results = await asyncio.gather(*requests, return_exceptions=True)
        took = time.monotonic() - started
        await pool.close()
        assert connection.closed.done()  # the pool's end is closed, though the PLC did not read
        for stalled in plc:
            stalled.transport.abort()
        server.close()
        await server.wait_closed()
        assert results[0] == big(0)
        if then == "reads-again":
            assert results == [big(n) for n in range(count)]
            assert pool.stats["answers"] == count and pool.stats["dropped"] == 1  # the first, echoed
            assert pool.stats["requests"] == count
        elif then == "drops-the-connection":
            assert [getattr(result, "reason", None) for result in results[1:sent]] == ["unavailable"] * (
                sent - 1
            )
            assert results[sent:] == [big(n) for n in range(sent, count)]
            assert took < 0.2 and len(plc) == 2
            assert pool.stats["unavailable"] == sent - 1 and pool.stats["requests"] == count
        else:
            reason = "timeout" if then == "deadline-passes" else "closed"
            assert [getattr(result, "reason", result) for result in results[1:]] == [reason] * (count - 1)
            assert took < (0.5 if then == "deadline-passes" else 0.2)
            assert pool.stats["answers"] == 1 and pool.stats["unavailable"] == 0
            assert pool.stats["requests"] == sent
            if then == "deadline-passes":
                assert pool.stats["timeouts"] == count - 1
                assert "did not answer" in str(results[1]) and "had room" in str(results[-1])


def test_a_plc_that_closes_every_new_connection_at_once_is_unavailable() -> None:
    """What a PLC with no connection left for the gateway does."""

    async def close_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
        pool = UpstreamPool("127.0.0.1", server.sockets[0].getsockname()[1], size=1)
        for _ in range(3):
            await expect_error("unavailable", pool.request(1, numbered(1)))
        await pool.close()
        server.close()
        await server.wait_closed()
        assert pool.stats["unavailable"] == 3 and pool.stats["connects"] == 3
        assert pool.stats["answers"] == 0

    run(scenario)


def test_an_unanswered_request_times_out_and_the_connection_keeps_serving() -> None:
    def never_for_7(request: Received) -> Reply:
        return [] if request.pdu == numbered(7) else echo(request)

    async def scenario() -> None:
        async with FakePlc(never_for_7) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.2)
            started = time.monotonic()
            lost = pool.request(1, numbered(7))
            others = [pool.request(1, numbered(n)) for n in range(3)]
            results = await asyncio.gather(lost, *others, return_exceptions=True)
            elapsed = time.monotonic() - started
            assert await pool.request(1, numbered(9)) == numbered(9)
            await pool.close()
        assert isinstance(results[0], UpstreamError) and results[0].reason == "timeout"
        assert "within 0.2 s" in results[0].message
        assert results[1:] == [numbered(n) for n in range(3)]
        assert 0.2 <= elapsed < 1.0
        assert pool.stats["timeouts"] == 1 and plc.connections == 1

    run(scenario)


def test_a_late_answer_is_dropped_and_never_reaches_the_next_request() -> None:
    def late_for_1(request: Received) -> Reply:
        delay = 0.3 if request.pdu == numbered(1) else 0.0
        return [(delay, frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late_for_1) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.1)
            await expect_error("timeout", pool.request(1, numbered(1)))
            await asyncio.sleep(0.3)  # the late answer arrives meanwhile
            assert await pool.request(1, numbered(2)) == numbered(2)
            await pool.close()
        assert pool.stats["dropped"] == 1 and pool.stats["timeouts"] == 1

    run(scenario)


@pytest.mark.parametrize(
    ("wrong", "counter"),
    [
        (lambda r: frame(r.transaction_id, r.unit_id + 1, r.pdu), "mismatched"),  # another unit id
        (lambda r: frame(r.transaction_id, r.unit_id, b"\x04" + r.pdu[1:]), "mismatched"),  # another fc
        (lambda r: frame(r.transaction_id, r.unit_id, r.pdu, protocol_id=1), "dropped"),  # not Modbus
        (lambda r: frame(r.transaction_id ^ 0x5555, r.unit_id, r.pdu), "dropped"),  # an unknown id
    ],
    ids=["unit-id", "function-code", "protocol-id", "transaction-id"],
)
def test_an_answer_that_does_not_match_its_request_is_never_handed_to_it(
    wrong: Callable[[Received], bytes], counter: str
) -> None:
    def wrong_for_5(request: Received) -> Reply:
        return [(0.0, wrong(request))] if request.pdu == numbered(5) else echo(request)

    async def scenario() -> None:
        async with FakePlc(wrong_for_5) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.2)
            await expect_error("timeout", pool.request(9, numbered(5)))
            assert await pool.request(9, numbered(6)) == numbered(6)
            await pool.close()
        assert pool.stats[counter] == 1 and pool.stats["answers"] == 1 and plc.connections == 1

    run(scenario)


def test_an_exception_answer_is_returned_as_the_answer() -> None:
    def illegal_address(request: Received) -> Reply:
        return [(0.0, frame(request.transaction_id, request.unit_id, b"\x83\x02"))]

    async def scenario() -> None:
        async with FakePlc(illegal_address) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port)
            assert await pool.request(1, numbered(1)) == b"\x83\x02"
            await pool.close()

    run(scenario)


def test_a_broken_length_field_closes_the_connection_and_the_next_request_reconnects() -> None:
    def broken_for_3(request: Received) -> Reply:
        if request.pdu == numbered(3):
            return [(0.0, MBAP.pack(request.transaction_id, 0, 0, request.unit_id))]
        return [] if request.pdu == numbered(4) else echo(request)

    async def scenario() -> None:
        async with FakePlc(broken_for_3) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            held = asyncio.ensure_future(pool.request(1, numbered(4)))
            await asyncio.sleep(0.05)
            await expect_error("unavailable", pool.request(1, numbered(3)))
            await expect_error("unavailable", held)  # in flight on the closed connection
            assert await pool.request(1, numbered(1)) == numbered(1)
            await pool.close()
        assert pool.stats["malformed"] == 1 and pool.stats["reconnects"] == 1
        assert plc.connections == 2 and pool.stats["unavailable"] == 2

    run(scenario)


def test_a_plc_closing_the_connection_fails_what_is_in_flight_and_the_pool_reconnects() -> None:
    def close_on_8(request: Received) -> Reply:
        if request.pdu == numbered(8):
            return [(0.05, None)]
        return [] if request.pdu == numbered(9) else echo(request)

    async def scenario() -> None:
        async with FakePlc(close_on_8) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            results = await asyncio.gather(
                pool.request(1, numbered(9)), pool.request(1, numbered(8)), return_exceptions=True
            )
            assert [getattr(r, "reason", r) for r in results] == ["unavailable", "unavailable"]
            assert "closed the connection" in str(results[0])
            assert await pool.request(1, numbered(1)) == numbered(1)
            await pool.close()
        assert plc.connections == 2 and pool.stats["reconnects"] == 1

    run(scenario)


def test_a_plc_closing_a_connection_it_served_gets_a_new_one_at_once() -> None:
    def answer_then_close(request: Received) -> Reply:
        return [(0.0, frame(request.transaction_id, request.unit_id, request.pdu)), (0.01, None)]

    async def scenario() -> None:
        async with FakePlc(answer_then_close) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            for n in range(5):
                assert await pool.request(1, numbered(n)) == numbered(n)
                await asyncio.sleep(0.03)  # the PLC closes the idle connection meanwhile
            started = time.monotonic()
            assert await pool.request(1, numbered(9)) == numbered(9)
            assert time.monotonic() - started < 0.04  # no backoff: the connection had served
            await pool.close()
        assert plc.connections == 6 and pool.stats["reconnects"] == 5

    run(scenario)


def test_no_plc_listening_is_unavailable_and_retries_back_off_until_it_listens() -> None:
    async def scenario() -> None:
        async with FakePlc() as probe:
            port = probe.port
        await asyncio.sleep(0.01)
        pool = UpstreamPool("127.0.0.1", port, size=2, connect_timeout=0.5)
        started = time.monotonic()
        for _ in range(3):
            error = await expect_error("unavailable", pool.request(1, numbered(1)))
        assert f"127.0.0.1:{port}" in error.message
        assert time.monotonic() - started >= 0.05 + 0.1  # no wait first, then 50 ms and 100 ms
        server = await asyncio.start_server(
            lambda r, w: FakePlc()._serve(r, w), "127.0.0.1", port, reuse_address=True
        )
        assert await pool.request(1, numbered(2)) == numbered(2)
        await pool.close()
        server.close()
        assert pool.stats["unavailable"] == 3 and pool.stats["connects"] == 4
        assert pool.stats["reconnects"] == 3

    run(scenario)


def test_requests_waiting_for_one_connection_attempt_share_it() -> None:
    async def scenario() -> None:
        async with FakePlc() as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=2)
            answers = await asyncio.gather(*(pool.request(1, numbered(n)) for n in range(10)))
            await pool.close()
        assert answers == [numbered(n) for n in range(10)] and plc.connections <= 2

    run(scenario)


def test_close_fails_requests_in_flight_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        async with FakePlc(lambda request: []) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=2)
            held = [asyncio.ensure_future(pool.request(1, numbered(n))) for n in range(4)]
            await asyncio.sleep(0.05)
            await pool.close()
            for request in held:
                await expect_error("closed", request)
            await expect_error("closed", pool.request(1, numbered(5)))
            await asyncio.sleep(0.05)
            assert plc.open_now == 0 and len(plc.received) == 4

    run(scenario)


def test_a_cancelled_request_is_forgotten_and_its_answer_dropped() -> None:
    def late(request: Received) -> Reply:
        return [(0.1, frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await pool.request(1, numbered(1))
            await asyncio.sleep(0.15)
            assert await pool.request(1, numbered(2)) == numbered(2)
            await pool.close()
        assert pool.stats["dropped"] == 1 and pool.stats["timeouts"] == 0

    run(scenario)


@pytest.mark.slow
def test_transaction_ids_wrap_around_and_skip_the_ones_still_in_flight() -> None:
    """65,600 requests on one connection while the first one stays unanswered: the counter wraps
    and never hands out the id that is still in flight."""
    first = numbered(0xFFFFFFFF)

    def hold_first(request: Received) -> Reply:
        return [] if request.pdu == first else echo(request)

    async def scenario() -> None:
        async with FakePlc(hold_first) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=60)
            held = asyncio.ensure_future(pool.request(1, first))
            await asyncio.sleep(0.01)

            async def client(task: int) -> None:
                for n in range(4100):
                    assert await pool.request(1, numbered(task * 10_000 + n)) == numbered(task * 10_000 + n)

            await asyncio.gather(*(client(task) for task in range(16)))
            held.cancel()
            await pool.close()
        ids = [r.transaction_id for r in plc.received]
        assert ids[0] == 1 and 1 not in ids[1:] and 0 in ids  # wrapped past 0xFFFF, skipped 1
        assert plc.reused_in_flight == 0 and len(ids) == 65_601

    run(scenario)


class Calls:
    """A callback for `submit`: records what it is called with, and whether `submit` was running."""

    def __init__(self, expected: int = 1) -> None:
        self.got: list[bytes | UpstreamError] = []
        self.inside_submit: list[bool] = []
        self.expected = expected
        self.all_in = asyncio.Event()
        self.submitting = False

    def __call__(self, answer: bytes | UpstreamError) -> None:
        self.got.append(answer)
        self.inside_submit.append(self.submitting)
        if len(self.got) == self.expected:
            self.all_in.set()

    def submit(self, pool: UpstreamPool, unit_id: int, pdu: bytes) -> None:
        self.submitting = True
        try:
            pool.submit(unit_id, pdu, self)
        finally:
            self.submitting = False

    async def wait(self) -> list[bytes | UpstreamError]:
        async with asyncio.timeout(5):
            await self.all_in.wait()
        return self.got


def never_called(answer: bytes | UpstreamError) -> None:
    raise AssertionError(f"called back with {answer!r}")


def reasons(got: list[bytes | UpstreamError]) -> list[str | bytes]:
    return [answer.reason if isinstance(answer, UpstreamError) else answer for answer in got]


def test_submit_calls_back_once_with_each_answer_and_never_from_within_submit() -> None:
    """A chain of 50 requests, each submitted by the callback of the one before."""
    calls: list[tuple[int, bytes | UpstreamError]] = []
    reentered: list[int] = []

    async def scenario() -> None:
        async with FakePlc() as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1)
            finished = asyncio.Event()
            submitting = False

            def chain(n: int) -> Callable[[bytes | UpstreamError], None]:
                def done(answer: bytes | UpstreamError) -> None:
                    nonlocal submitting
                    if submitting:
                        reentered.append(n)
                    calls.append((n, answer))
                    if n == 49:
                        finished.set()
                        return
                    submitting = True
                    pool.submit(1, numbered(n + 1), chain(n + 1))
                    submitting = False

                return done

            pool.submit(1, numbered(0), chain(0))
            assert calls == []
            async with asyncio.timeout(5):
                await finished.wait()
            await asyncio.sleep(0.05)  # no second call comes
            await pool.close()
        assert calls == [(n, numbered(n)) for n in range(50)] and reentered == []
        assert pool.stats["requests"] == pool.stats["answers"] == 50 and plc.connections == 1

    run(scenario)


def test_submit_to_a_closed_pool_calls_back_in_the_next_loop_turn() -> None:
    async def scenario() -> None:
        pool = UpstreamPool("127.0.0.1", 9)
        await pool.close()
        calls = Calls()
        calls.submit(pool, 1, numbered(1))
        assert calls.got == []
        await asyncio.sleep(0)
        assert reasons(calls.got) == ["closed"] and calls.inside_submit == [False]
        assert "is closed" in str(calls.got[0])

    run(scenario)


def test_a_failed_connection_attempt_fails_every_request_in_line_as_unavailable() -> None:
    async def scenario() -> None:
        async with FakePlc() as probe:
            port = probe.port  # nothing listens there any more
        pool = UpstreamPool("127.0.0.1", port, size=1)
        calls = Calls(expected=3)
        for n in range(3):
            calls.submit(pool, 1, numbered(n))
        assert calls.got == []
        assert reasons(await calls.wait()) == ["unavailable"] * 3
        assert all(f"cannot connect to the PLC at 127.0.0.1:{port}" in str(error) for error in calls.got)
        assert calls.inside_submit == [False] * 3
        await pool.close()
        assert pool.stats["unavailable"] == 3 and pool.stats["connects"] == 1
        assert pool.stats["requests"] == 0

    run(scenario)


def test_a_callback_that_raises_is_logged_and_the_pool_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """Two answers in one segment: the first one's callback raises; the second still gets its
    answer. Two requests time out in one sweep: the first one's callback raises; the second still
    times out. And the connection serves the next request."""
    held: list[Received] = []

    def reply(request: Received) -> Reply:
        if request.pdu in (numbered(9), numbered(10)):
            return []
        if request.pdu in (numbered(1), numbered(2)):
            held.append(request)
            return (
                [(0.0, b"".join(frame(r.transaction_id, r.unit_id, r.pdu) for r in held))]
                if len(held) == 2
                else []
            )
        return echo(request)

    def broken(answer: bytes | UpstreamError) -> None:
        raise RuntimeError(f"a client's bug, called with {answer!r}")

    async def scenario() -> None:
        async with FakePlc(reply) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.2)
            pool.submit(1, numbered(1), broken)
            answered = Calls()
            answered.submit(pool, 1, numbered(2))
            assert await answered.wait() == [numbered(2)]
            pool.submit(1, numbered(9), broken)
            timed_out = Calls()
            timed_out.submit(pool, 1, numbered(10))
            assert reasons(await timed_out.wait()) == ["timeout"]
            assert await pool.request(1, numbered(3)) == numbered(3)
            await pool.close()
        assert pool.stats["answers"] == 3 and pool.stats["timeouts"] == 2 and plc.connections == 1

    with caplog.at_level("ERROR", logger="plantwarden.gateway.upstream"):
        run(scenario)
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert "callback" in record.getMessage() and record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)


def test_requests_in_line_are_sent_and_answered_in_the_order_they_came() -> None:
    """pipeline_depth=1 on one connection: 20 requests wait in line; the one the first answer's
    callback submits goes behind them all."""
    shuffle = random.Random(3)  # noqa: S311 - answer delays, not secrets

    def late(request: Received) -> Reply:
        return [(shuffle.uniform(0, 0.003), frame(request.transaction_id, request.unit_id, request.pdu))]

    async def scenario() -> None:
        async with FakePlc(late) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, pipeline_depth=1)
            order: list[bytes | UpstreamError] = []
            all_in = asyncio.Event()

            def done(answer: bytes | UpstreamError) -> None:
                if not order:
                    pool.submit(1, numbered(100), done)
                order.append(answer)
                if len(order) == 21:
                    all_in.set()

            for n in range(20):
                pool.submit(1, numbered(n), done)
            async with asyncio.timeout(5):
                await all_in.wait()
            await pool.close()
        expected = [numbered(n) for n in range(20)] + [numbered(100)]
        assert order == expected and [r.pdu for r in plc.received] == expected
        assert plc.outstanding_max == 1 and pool.stats["in_flight_max"] == 1

    run(scenario)


def test_a_request_in_line_times_out_while_the_one_ahead_holds_the_connection() -> None:
    """Both submitted before the connection opens: the first is sent on it, its deadline counted
    from then (connecting has its own timeout); the second waits in line from its submit, and its
    deadline passes first, while the first is still in flight."""

    async def scenario() -> None:
        async with FakePlc(lambda request: []) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, request_timeout=0.2, pipeline_depth=1)
            order: list[tuple[str, bytes | UpstreamError]] = []
            both = asyncio.Event()

            def callback(name: str) -> Callable[[bytes | UpstreamError], None]:
                def done(answer: bytes | UpstreamError) -> None:
                    order.append((name, answer))
                    if len(order) == 2:
                        both.set()

                return done

            started = time.monotonic()
            pool.submit(1, numbered(1), callback("first"))
            pool.submit(1, numbered(2), callback("second"))
            async with asyncio.timeout(5):
                await both.wait()
            assert 0.15 < time.monotonic() - started < 0.35
            await pool.close()
        assert [name for name, _ in order] == ["second", "first"]
        [(_, error), (_, late)] = order
        assert isinstance(error, UpstreamError) and error.reason == "timeout"
        assert "had room for another request" in error.message
        assert isinstance(late, UpstreamError) and "did not answer" in late.message
        assert [r.pdu for r in plc.received] == [numbered(1)]
        assert pool.stats["timeouts"] == 2 and pool.stats["requests"] == 1

    run(scenario)


def test_a_request_waiting_for_a_connection_to_open_is_not_timed_out_by_the_backoff() -> None:
    """After three failed attempts the next one waits 0.2 s (the backoff), longer than the request
    timeout: the request waits for it, and its timeout starts when it is sent."""

    async def scenario() -> None:
        async with FakePlc() as probe:
            port = probe.port
        pool = UpstreamPool("127.0.0.1", port, size=1, request_timeout=0.1)
        for _ in range(3):
            await expect_error("unavailable", pool.request(1, numbered(1)))
        server = await asyncio.start_server(
            lambda r, w: FakePlc()._serve(r, w), "127.0.0.1", port, reuse_address=True
        )
        started = time.monotonic()
        calls = Calls()
        calls.submit(pool, 1, numbered(2))
        assert await calls.wait() == [numbered(2)]
        assert time.monotonic() - started >= 0.2
        await pool.close()
        server.close()
        await server.wait_closed()
        assert pool.stats["timeouts"] == 0 and pool.stats["connects"] == 4

    run(scenario)


def test_bad_arguments_are_refused_with_what_to_fix() -> None:
    with pytest.raises(InvalidInput, match="at least one connection"):
        UpstreamPool("127.0.0.1", 502, size=0)
    with pytest.raises(InvalidInput, match="positive"):
        UpstreamPool("127.0.0.1", 502, request_timeout=0)
    with pytest.raises(InvalidInput, match="pipeline_depth"):
        UpstreamPool("127.0.0.1", 502, pipeline_depth=0)

    async def scenario() -> None:
        pool = UpstreamPool("127.0.0.1", 9)
        with pytest.raises(InvalidInput, match="unit id 0-255"):
            await pool.request(256, b"\x03")
        with pytest.raises(InvalidInput, match="1-253 byte PDU"):
            await pool.request(1, b"")
        with pytest.raises(InvalidInput, match="unit id 0-255"):
            pool.submit(-1, b"\x03", never_called)
        with pytest.raises(InvalidInput, match="1-253 byte PDU"):
            pool.submit(1, bytes(254), never_called)
        await pool.close()

    run(scenario)


def test_a_withdrawn_request_in_line_is_never_sent_and_one_in_flight_runs_its_course() -> None:
    """A client whose session ended (revoked, quarantined, gone) withdraws its request: still in
    line, it never reaches the PLC; already sent, it is answered as usual (the PLC may be running
    it, and its connection stays busy until it answers)."""

    async def scenario() -> None:
        async with FakePlc(
            reply=lambda request: [(0.2, frame(request.transaction_id, 1, request.pdu))]
        ) as plc:
            pool = UpstreamPool("127.0.0.1", plc.port, size=1, pipeline_depth=1)
            first, second, third = Calls(), Calls(), Calls()
            sent = pool.submit(1, numbered(1), first)
            in_line = pool.submit(1, numbered(2), never_called)
            pool.submit(1, numbered(3), third)
            await asyncio.sleep(0.05)
            pool.withdraw(in_line)
            pool.withdraw(sent)  # in flight: not withdrawn
            pool.submit(1, numbered(4), second)
            assert reasons(await first.wait()) == [numbered(1)]
            assert reasons(await third.wait()) == [numbered(3)]
            assert reasons(await second.wait()) == [numbered(4)]
            await pool.close()
        assert [request.pdu for request in plc.received] == [numbered(1), numbered(3), numbered(4)]
        assert plc.outstanding_max == 1

    run(scenario)
