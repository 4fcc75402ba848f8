"""The policy in force at the gateway: fail closed without one, new versions swapped in under live
connections, the last good one kept while the store is unreachable, quarantine closing sessions."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time

import pytest

from plantwarden.gateway.server import Gateway, GatewayConfig
from plantwarden.gateway.state import GatewayState
from plantwarden.policy.model import Subject
from tests.unit.gateway.peers import RecordingPlc
from tests.unit.gateway.support import PLANT, adu, read_holding, state, write_register

# the bound client (127.0.0.1) becomes an engineer
ENGINEER_PLANT = PLANT.replace("{address: 127.0.0.1, role: operator", "{address: 127.0.0.1, role: engineer")


class Source:
    """A loader whose answer the test changes: a state, or a failure (the store unreachable)."""

    def __init__(self) -> None:
        self.current: GatewayState | None = None
        self.loads = 0

    def __call__(self) -> GatewayState:
        self.loads += 1
        if self.current is None:
            raise ConnectionError("the store is unreachable")
        return self.current


class Client:
    """A plain Modbus/TCP client on one connection that stays open through the test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.transaction = reader, writer, 0

    async def ask(self, pdu: bytes) -> bytes:
        self.transaction += 1
        self.writer.write(adu(self.transaction, 1, pdu))
        header = await asyncio.wait_for(self.reader.readexactly(7), 3)
        transaction, _, length, _ = struct.unpack(">HHHB", header)
        assert transaction == self.transaction
        return await self.reader.readexactly(length - 1)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def _wait(condition: object, timeout: float = 3.0) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def plc() -> RecordingPlc:
    return RecordingPlc()


def test_fail_closed_then_swapped_in_without_dropping_the_connection(plc: RecordingPlc) -> None:
    async def scenario() -> None:
        await plc.start()
        source = Source()
        gateway = Gateway(
            GatewayConfig(site="plant-a", listen=("127.0.0.1", 0), tick=0.05, refresh_seconds=0.1), source
        )
        await gateway.start()  # the store is unreachable: no policy at all
        try:
            client = Client(*await asyncio.open_connection("127.0.0.1", gateway.addresses["modbus"][1]))
            assert await client.ask(read_holding(0, 1)) == bytes([0x83, 1])  # fail closed
            source.current = state(("127.0.0.1", plc.port))
            await _wait(lambda: gateway.state is not None)
            assert await client.ask(read_holding(0, 1)) == bytes([3, 2, 0, 0])  # same connection
            assert await client.ask(write_register(0, 800)) == bytes([0x86, 1])  # operator
            first = gateway.decider.version
            source.current = None  # the store goes away: the last good policy stays
            loads = source.loads
            await _wait(lambda: source.loads > loads + 2)
            assert gateway.decider.version == first
            assert await client.ask(read_holding(0, 1)) == bytes([3, 2, 0, 0])
            source.current = state(("127.0.0.1", plc.port), ENGINEER_PLANT)  # a new version
            await _wait(lambda: gateway.decider.version != first)
            assert await client.ask(write_register(0, 800)) == write_register(0, 800)  # now an engineer
            assert await client.ask(write_register(0, 990)) == bytes([0x86, 1])  # the envelope still holds
            assert [m.function_code for m in plc.messages()] == [3, 3, 6]
            await client.close()
        finally:
            await gateway.stop()
            await plc.stop()

    asyncio.run(scenario())


def test_quarantining_the_subject_closes_its_live_session(plc: RecordingPlc) -> None:
    async def scenario() -> None:
        await plc.start()
        source = Source()
        source.current = state(("127.0.0.1", plc.port))
        gateway = Gateway(GatewayConfig(site="plant-a", listen=("127.0.0.1", 0)), source)
        await gateway.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.addresses["modbus"][1])
            client = Client(reader, writer)
            assert await client.ask(read_holding(0, 1)) == bytes([3, 2, 0, 0])
            gateway.overlay.quarantine_subject(Subject("address", "127.0.0.1"), "incident 42")
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(100), 2) == b""
            assert time.monotonic() - started < 1.0
            await client.close()
        finally:
            await gateway.stop()
            await plc.stop()

    asyncio.run(scenario())
