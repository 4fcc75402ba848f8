"""The upstream pool against real pymodbus servers on loopback sockets.

Two peers: pymodbus's own Modbus/TCP server (3.16.1), which answers one request at a time and
loses pipelined ones, so the pool talks to it with `pipeline_depth=1`; and the simulated PLC's
server (pymodbus with the project's own framing handler, `sim.modbus_server`), which answers
pipelined requests, so the pool pipelines to it.
"""

from __future__ import annotations

import asyncio
import struct
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from plantwarden.gateway.upstream import UpstreamPool
from plantwarden.sim.modbus_server import PlcServer
from plantwarden.sim.modbus_server._pymodbus import ModbusTcpServer, untyped
from plantwarden.sim.physics import PlantSimulation
from plantwarden.sim.plant import default_plant

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

T = TypeVar("T")
HOLDING = [(7 * address + 11) % 65536 for address in range(200)]
"""The holding registers 0-199 of the plain pymodbus server: each address has its own value."""


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def read_holding(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 3, address, count)


def registers(answer: bytes) -> list[int]:
    assert answer[0] == 3 and answer[1] == len(answer) - 2, answer
    return list(struct.unpack(f">{answer[1] // 2}H", answer[2:]))


@asynccontextmanager
async def pymodbus_server() -> AsyncIterator[int]:
    """pymodbus's own server with `HOLDING`, on a port the system chooses; yields the port."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        # pymodbus 3.16.1's sequential block starts at address - 1: address 1 serves register 0
        device = ModbusDeviceContext(hr=untyped(ModbusSequentialDataBlock)(1, list(HOLDING)))
        context = ModbusServerContext(devices=device, single=True)
    server = ModbusTcpServer(context, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        assert isinstance(server.transport, asyncio.Server)
        yield int(server.transport.sockets[0].getsockname()[1])
    finally:
        await untyped(server).shutdown()


def test_pymodbus_server_answers_every_one_of_200_requests_from_16_tasks_without_pipelining() -> None:
    async def scenario() -> None:
        async with pymodbus_server() as port:
            pool = UpstreamPool("127.0.0.1", port, size=2, pipeline_depth=1)

            async def client(task: int) -> list[tuple[int, int, list[int]]]:
                asked = [((task * 13 + n) % 190, 1 + (task + n) % 10) for n in range(13 if task < 8 else 12)]
                return [(a, c, registers(await pool.request(1, read_holding(a, c)))) for a, c in asked]

            results = await asyncio.gather(*(client(task) for task in range(16)))
            await pool.close()
        answered = [item for result in results for item in result]
        assert len(answered) == 200
        for address, count, values in answered:
            assert values == HOLDING[address : address + count]
        assert pool.stats["answers"] == 200 and pool.stats["timeouts"] == 0
        assert pool.stats["connects"] == 2

    run(scenario)


def test_pymodbus_server_writes_through_the_pool_are_read_back() -> None:
    async def scenario() -> None:
        async with pymodbus_server() as port:
            pool = UpstreamPool("127.0.0.1", port, pipeline_depth=1)
            write = struct.pack(">BHHB3H", 16, 20, 3, 6, 1, 2, 3)
            assert await pool.request(1, write) == struct.pack(">BHH", 16, 20, 3)
            assert registers(await pool.request(1, read_holding(19, 5))) == [
                HOLDING[19],
                1,
                2,
                3,
                HOLDING[23],
            ]
            assert await pool.request(1, read_holding(199, 2)) == b"\x83\x02"  # past the end
            await pool.close()

    run(scenario)


def test_the_simulated_plc_answers_200_pipelined_requests_from_16_tasks_over_two_connections() -> None:
    sim = PlantSimulation(default_plant(), seed=3)
    plc = sim.plant.plc("tank-1")
    image = sim.model("tank-1").registers()
    holding = sorted(
        a for register in plc.registers if register.kind == "holding" for a in register.addresses
    )

    async def scenario() -> None:
        async with PlcServer(plc, sim.model("tank-1"), port=0, address="127.0.0.1") as server:
            pool = UpstreamPool("127.0.0.1", server.port, size=2)

            async def client(task: int) -> list[tuple[int, list[int]]]:
                asked = [holding[(task + n) % len(holding)] for n in range(13 if task < 8 else 12)]
                return [(a, registers(await pool.request(plc.unit_id, read_holding(a, 1)))) for a in asked]

            results = await asyncio.gather(*(client(task) for task in range(16)))
            await pool.close()
        answered = [item for result in results for item in result]
        assert len(answered) == 200
        assert all(values == [image[address]] for address, values in answered)
        assert pool.stats["connects"] == 2 and pool.stats["in_flight_max"] == 16

    run(scenario)
