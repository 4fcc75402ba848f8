"""The running plant stops when asked, however its clients' reads and the stop coincide.

Python 3.11's `asyncio.wait_for` drops a cancellation that arrives in the loop turn in which the
awaited read completes (the read's result is returned instead), and a plant client looping on
such reads then never stops: `sim run --duration` ran on for minutes while its tap's reader
waited. The plant's reads use `asyncio.timeout`, which keeps the cancellation, and `LivePlant.stop`
cancels again whatever still runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from plantwarden.sim import runtime
from plantwarden.sim.live_net import LiveConnection
from plantwarden.sim.plant import default_plant
from plantwarden.sim.runtime import LiveOptions, LivePlant


@asynccontextmanager
async def connection() -> AsyncIterator[LiveConnection]:
    """A LiveConnection to a server on loopback that sends nothing of its own."""
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _reader, writer: accepted.append(writer), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    live = await LiveConnection.open("127.0.0.1", "127.0.0.1", port)
    try:
        yield live
    finally:
        await live.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


def test_a_read_cancelled_as_its_data_arrives_is_cancelled() -> None:
    async def scenario() -> None:
        async with connection() as live:
            reads: list[Callable[[], Coroutine[Any, Any, bytes]]] = [
                lambda: live.receive_exactly(4),
                lambda: live.receive_until(b"\n"),
            ]
            for read in reads:
                reading = asyncio.create_task(read())
                await asyncio.sleep(0.01)  # the read waits for data
                live.reader.feed_data(b"abc\n")  # in one loop turn: the data, then the stop
                reading.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reading
                assert reading.cancelled()
                await live.reader.readexactly(4)  # what came stays in the buffer

    asyncio.run(scenario())


def test_stop_cancels_again_a_client_that_swallowed_its_cancellation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "STOP_GRACE", 0.05)
    cancellations: list[int] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancellations.append(1)
                if len(cancellations) == 1:
                    continue  # as a dropped cancellation does: the loop goes on
                raise

    async def scenario() -> None:
        live = LivePlant(default_plant(), LiveOptions(port=0, broker=None))
        live._spawn("stubborn", stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(live.stop(), 5)

    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        asyncio.run(scenario())
    assert len(cancellations) == 2
    assert "the plant's stubborn client runs on after a stop; cancelling again" in caplog.text
