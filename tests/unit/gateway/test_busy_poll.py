"""The busy-polling selector: what it returns, how long it waits, and that it polls before it
sleeps; the event loop made with it serves sockets like the default one."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from plantwarden.gateway.busy_poll import MAX_SPIN, BusyPollSelector, loop_factory


class Counting(BusyPollSelector):
    """Counts the polls that do not wait (timeout 0) and those that do."""

    def __init__(self, spin: float) -> None:
        super().__init__(spin)
        self.quick = self.waiting = 0

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            self.quick += 1
        else:
            self.waiting += 1
        return super()._poll(timeout)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_what_is_ready_comes_back_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    selector = Counting(0.005)
    selector.register(left, selectors.EVENT_READ, "left")
    right.send(b"x")
    ready = selector.select(5.0)
    assert [(key.data, events) for key, events in ready] == [("left", selectors.EVENT_READ)]
    assert (selector.quick, selector.waiting) == (1, 0)
    selector.close()


def test_it_polls_for_the_spin_then_sleeps_until_the_timeout(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, _ = pair
    selector = Counting(0.005)
    selector.register(left, selectors.EVENT_READ)
    started = time.monotonic()
    assert selector.select(0.05) == []
    assert time.monotonic() - started >= 0.05
    assert selector.quick > 1  # it polled without sleeping first
    assert selector.waiting == 1  # then slept once, for the rest of the timeout
    selector.close()


def test_a_timeout_shorter_than_the_spin_ends_the_spin(pair: tuple[socket.socket, socket.socket]) -> None:
    left, _ = pair
    selector = BusyPollSelector(MAX_SPIN)
    selector.register(left, selectors.EVENT_READ)
    started = time.monotonic()
    assert selector.select(0.002) == []
    assert 0.002 <= time.monotonic() - started < MAX_SPIN
    selector.close()


def test_bytes_that_arrive_during_the_spin_are_found(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    selector = Counting(MAX_SPIN)
    selector.register(left, selectors.EVENT_READ)
    timer = threading.Timer(0.002, right.send, (b"x",))
    timer.start()
    ready = selector.select(None)
    timer.join()
    assert len(ready) == 1
    selector.close()


def test_no_spin_and_zero_timeouts_poll_once(pair: tuple[socket.socket, socket.socket]) -> None:
    left, _ = pair
    off, quick = Counting(0.0), Counting(0.005)
    for selector in (off, quick):
        selector.register(left, selectors.EVENT_READ)
    assert off.select(0.001) == [] and (off.quick, off.waiting) == (0, 1)
    assert quick.select(0) == [] and (quick.quick, quick.waiting) == (1, 0)
    off.close()
    quick.close()


@pytest.mark.parametrize("spin", [-0.001, MAX_SPIN * 2])
def test_a_spin_out_of_range_is_refused(spin: float) -> None:
    with pytest.raises(ValueError, match="spin must be"):
        BusyPollSelector(spin)


@pytest.mark.parametrize("spin", [0.0, 0.0002])
def test_the_loop_serves_a_connection(spin: float) -> None:
    async def echo_round_trips() -> int:
        served = asyncio.Event()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                writer.write(data)
            writer.close()
            await writer.wait_closed()
            served.set()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answered = 0
        for index in range(50):
            writer.write(b"%d;" % index)
            answered += await reader.readuntil(b";") == b"%d;" % index
        writer.close()
        await writer.wait_closed()
        await served.wait()
        server.close()
        await server.wait_closed()
        return answered

    with asyncio.Runner(loop_factory=loop_factory(spin)) as runner:
        assert runner.run(echo_round_trips()) == 50
        selector = getattr(runner.get_loop(), "_selector", None)
        assert isinstance(selector, BusyPollSelector) == (spin > 0)
