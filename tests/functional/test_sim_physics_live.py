"""The simulated plant, live: a minute of process time through real Modbus/TCP servers and client.

The physics run 20 times faster than real time (about 3 s of wall time per simulated minute).
Values are decoded with the plant's own registers, never by hand.
"""

from __future__ import annotations

import asyncio

import pytest

from plantwarden.sim.encoding import decode, encode
from plantwarden.sim.modbus_server import AsyncModbusTcpClient, PlantServers, modbus_client
from plantwarden.sim.physics import PlantSimulation, TankModel
from plantwarden.sim.plant import Plc, default_plant

SPEED = 20.0
MINUTE = 60.0
ENGINEERING_WS = ("127.10.1.20", 0)  # eng-ws-1, as the client's source address


async def read_value(client: AsyncModbusTcpClient, plc: Plc, name: str) -> float:
    """The engineering value of register `name`, read with the function code of its kind."""
    register = plc.register(name)
    reader = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }[register.kind]
    response = await reader(register.address, count=register.width, device_id=1)
    assert not response.isError(), response
    if register.kind in ("coil", "discrete"):
        return float(response.bits[0])
    return decode(register, response.registers)


async def write_value(client: AsyncModbusTcpClient, plc: Plc, name: str, value: float) -> None:
    """Write `value` to register `name`: FC5 for a coil, FC6 for a one-word holding register."""
    register = plc.register(name)
    (word,) = encode(register, value)
    if register.kind == "coil":
        response = await client.write_coil(register.address, bool(word), device_id=1)
    else:
        response = await client.write_register(register.address, word, device_id=1)
    assert not response.isError(), response


async def run_until(sim: PlantSimulation, elapsed: float) -> None:
    """Wait until the simulation has run `elapsed` simulated seconds."""
    while sim.elapsed < elapsed:
        await asyncio.sleep(0.02)


@pytest.mark.timeout(30)
def test_a_minute_of_process_time_follows_writes_made_over_modbus() -> None:
    sim = PlantSimulation(default_plant(), seed=11)
    tank, pump = sim.plant.plc("tank-1"), sim.plant.plc("pump-skid-1")
    rise_per_second = TankModel.inlet_rate / 60 / TankModel.capacity_litres * 100  # % of the tank

    async def scenario() -> None:
        async with PlantServers(
            sim, port=0, tick=0.02, speed=SPEED, plcs=["tank-1", "pump-skid-1"]
        ) as servers:
            endpoints = servers.endpoints()
            async with (
                modbus_client(*endpoints["tank-1"], source_address=ENGINEERING_WS) as tank_client,
                modbus_client(*endpoints["pump-skid-1"], source_address=ENGINEERING_WS) as pump_client,
            ):
                for name, value in (("auto_mode", 0), ("outlet_pump_on", 0), ("inlet_valve_open", 1)):
                    await write_value(tank_client, tank, name, value)
                await write_value(pump_client, pump, "speed_setpoint", 90.0)
                start_speed = await read_value(pump_client, pump, "pump_speed")
                start, level_0 = sim.elapsed, await read_value(tank_client, tank, "level")
                assert level_0 < 70.0  # room to rise for a minute

                await run_until(sim, start + MINUTE / 2)
                half, level_1 = sim.elapsed, await read_value(tank_client, tank, "level")
                assert await read_value(tank_client, tank, "inlet_flow") == pytest.approx(400, rel=0.1)
                assert await read_value(tank_client, tank, "outlet_flow") == 0

                await run_until(sim, start + MINUTE)
                end, level_2 = sim.elapsed, await read_value(tank_client, tank, "level")
                assert level_0 < level_1 < level_2
                assert level_2 - level_0 == pytest.approx(rise_per_second * (end - start), rel=0.08)
                assert level_1 - level_0 == pytest.approx(rise_per_second * (half - start), rel=0.08)
                assert await read_value(tank_client, tank, "inlet_valve_open") == 1  # not in auto mode

                assert start_speed < 70.0
                assert await read_value(pump_client, pump, "speed_setpoint") == 90.0
                assert await read_value(pump_client, pump, "pump_speed") == pytest.approx(90.0, abs=0.5)
                assert await read_value(pump_client, pump, "flow") == pytest.approx(90.0, rel=0.04)
                assert await read_value(pump_client, pump, "discharge_pressure") == pytest.approx(
                    8.0 * 0.9**2, rel=0.04
                )
                assert await read_value(pump_client, pump, "overtemperature_trip") == 0

    asyncio.run(scenario())
    assert MINUTE <= sim.elapsed < 2 * MINUTE
