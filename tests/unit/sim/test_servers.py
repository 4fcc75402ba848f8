"""The PLCs' Modbus/TCP servers, talked to with a real pymodbus client over loopback sockets.

Every test starts its own servers on ports the system chooses (port 0), so tests run in parallel.
Unless a test is about the physics, the tick is an hour: the register image holds still.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from plantwarden.core.errors import ConfigurationError, Conflict, InvalidInput
from plantwarden.sim.behaviour import identity
from plantwarden.sim.encoding import decode
from plantwarden.sim.modbus_server import (
    FALLBACK_PORT,
    MODBUS_PORT,
    AsyncModbusTcpClient,
    ModbusException,
    PlantServers,
    PlcServer,
    modbus_client,
    resolve_port,
)
from plantwarden.sim.physics import PlantSimulation
from plantwarden.sim.plant import Host, Plant, Plc, Register, Zone, default_plant, tank_registers

T = TypeVar("T")
FROZEN = 3600.0  # seconds between physics steps: none happens during a test
HMI = ("127.10.1.10", 0)  # hmi-1's address, as a client's source address
READS = {"holding": 3, "input": 4, "coil": 1, "discrete": 2}
Written = tuple[str, int, tuple[int, ...], tuple[str, int] | None]


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def simulation(plant: Plant | None = None) -> PlantSimulation:
    return PlantSimulation(plant or default_plant(), seed=3)


def served(sim: PlantSimulation, *plcs: str, **options: Any) -> PlantServers:
    return PlantServers(sim, port=0, tick=options.pop("tick", FROZEN), plcs=plcs or None, **options)


async def read(client: AsyncModbusTcpClient, function_code: int, address: int, count: int) -> Any:
    call = {
        1: client.read_coils,
        2: client.read_discrete_inputs,
        3: client.read_holding_registers,
        4: client.read_input_registers,
    }[function_code]
    return await call(address, count=count, device_id=1)


def block(plc: Plc, kind: str) -> range:
    """The addresses of one kind, which the default maps keep contiguous."""
    addresses = sorted(a for register in plc.registers if register.kind == kind for a in register.addresses)
    assert addresses == list(range(addresses[0], addresses[-1] + 1))
    return range(addresses[0], addresses[-1] + 1)


def test_every_read_function_code_returns_the_models_register_image() -> None:
    sim = simulation()
    sim.step(5.0)  # flows and alarms get values

    async def scenario() -> None:
        async with served(sim) as servers:
            for plc in sim.plant.plcs:
                image = sim.model(plc.name).registers()
                async with modbus_client(*servers.endpoints()[plc.name]) as client:
                    for kind, function_code in READS.items():
                        addresses = block(plc, kind)
                        response = await read(client, function_code, addresses.start, len(addresses))
                        assert not response.isError(), (plc.name, kind, response)
                        got = response.registers if function_code in (3, 4) else response.bits
                        assert [int(v) for v in got[: len(addresses)]] == [image[a] for a in addresses]

    run(scenario)


def test_a_float32_read_over_modbus_decodes_to_the_process_value() -> None:
    sim = simulation()

    async def scenario() -> None:
        async with served(sim, "tank-1", "boiler-1") as servers:
            for plc_name, name in (("tank-1", "level"), ("boiler-1", "steam_pressure")):
                register = sim.plant.plc(plc_name).register(name)
                async with modbus_client(*servers.endpoints()[plc_name]) as client:
                    response = await client.read_input_registers(register.address, count=2, device_id=1)
                value = decode(register, response.registers)
                assert value == pytest.approx(sim.model(plc_name).value(name), rel=1e-6)
                assert value > 1.0

    run(scenario)


@pytest.mark.parametrize(
    ("function_code", "address", "count"),
    [
        (3, 2, 1),  # no register there
        (3, 0, 3),  # runs past the last holding register
        (4, 0, 1),  # a holding register read as an input register
        (3, 100, 2),  # an input register read as a holding register
        (1, 300, 1),  # a discrete input read as a coil
        (2, 200, 1),  # a coil read as a discrete input
        (1, 0, 1),
    ],
)
def test_reading_where_the_table_has_no_register_gives_exception_2(
    function_code: int, address: int, count: int
) -> None:
    sim = simulation()

    async def scenario() -> Any:
        async with served(sim, "tank-1") as servers, modbus_client(*servers.endpoints()["tank-1"]) as client:
            return await read(client, function_code, address, count)

    response = run(scenario)
    assert response.isError()
    assert (response.function_code, response.exception_code) == (function_code | 0x80, 2)


def test_fc6_fc16_fc5_and_fc15_writes_change_the_model_and_are_reported() -> None:
    sim = simulation()
    tank, pump = sim.model("tank-1"), sim.model("pump-skid-1")
    writes: list[Written] = []

    async def scenario() -> None:
        async with served(sim, "tank-1", "pump-skid-1", on_write=lambda *w: writes.append(w)) as servers:
            async with modbus_client(*servers.endpoints()["tank-1"], source_address=HMI) as client:
                assert not (await client.write_register(0, 905, device_id=1)).isError()
                assert tank.value("level_high_setpoint") == pytest.approx(90.5)
                assert not (await client.write_registers(0, [850, 150], device_id=1)).isError()
                assert (tank.value("level_high_setpoint"), tank.value("level_low_setpoint")) == (85.0, 15.0)
                assert not (await client.write_coils(200, [True, False, False], device_id=1)).isError()
                coils = ("inlet_valve_open", "outlet_pump_on", "auto_mode")
                assert [tank.value(name) for name in coils] == [1, 0, 0]
                assert not (await client.write_coil(201, True, device_id=1)).isError()
                assert tank.value("outlet_pump_on") == 1
                read_back = await client.read_holding_registers(0, count=2, device_id=1)
                assert read_back.registers == [850, 150]
            async with modbus_client(*servers.endpoints()["pump-skid-1"]) as client:
                assert not (await client.write_register(0, 720, device_id=1)).isError()
                assert pump.value("speed_setpoint") == pytest.approx(72.0)

    run(scenario)
    assert [(plc, address, words) for plc, address, words, _ in writes] == [
        ("tank-1", 0, (905,)),
        ("tank-1", 0, (850, 150)),
        ("tank-1", 200, (1, 0, 0)),
        ("tank-1", 201, (1,)),
        ("pump-skid-1", 0, (720,)),
    ]
    clients = [client for *_, client in writes]
    assert all(client is not None and client[0] == HMI[0] for client in clients[:4])
    assert clients[4] is not None and clients[4][0] == "127.0.0.1"


def test_a_single_write_is_answered_with_its_echo_even_when_the_process_undoes_it() -> None:
    sim = simulation()
    conveyor = sim.model("conveyor-1")

    async def scenario() -> Any:
        async with (
            served(sim, "conveyor-1") as servers,
            modbus_client(*servers.endpoints()["conveyor-1"]) as client,
        ):
            return await client.write_coil(201, True, device_id=1)  # jam_reset

    response = run(scenario)
    assert (response.address, response.bits[0]) == (201, True)
    assert conveyor.value("jam_reset") == 0


@pytest.mark.parametrize(
    ("function_code", "address", "values"),
    [
        (6, 100, [5]),  # an input register's address
        (6, 5, [5]),  # no register there
        (16, 0, [500, 100, 7]),  # runs past the last holding register
        (5, 300, [True]),  # a discrete input's address
        (15, 201, [True, True, True]),  # runs past the last coil
    ],
)
def test_writing_a_read_only_or_missing_register_gives_exception_2_and_changes_nothing(
    function_code: int, address: int, values: list[Any]
) -> None:
    sim = simulation()
    before = sim.model("tank-1").registers()
    writes: list[Written] = []

    async def scenario() -> Any:
        async with (
            served(sim, "tank-1", on_write=lambda *w: writes.append(w)) as servers,
            modbus_client(*servers.endpoints()["tank-1"]) as client,
        ):
            calls: dict[int, Callable[..., Awaitable[Any]]] = {
                5: client.write_coil,
                6: client.write_register,
                15: client.write_coils,
                16: client.write_registers,
            }
            return await calls[function_code](
                address, values if function_code in (15, 16) else values[0], device_id=1
            )

    response = run(scenario)
    assert (response.function_code, response.exception_code) == (function_code | 0x80, 2)
    assert sim.model("tank-1").registers() == before
    assert writes == []


def tank_with_float_setpoint() -> Plant:
    """A one-PLC plant whose tank has a writable float32 register, `trim`, at 10."""
    zone = Zone("cell", 1, "127.10.9.0/24")
    host = Host("tank-9", "cell", "127.10.9.11", "plc")
    trim = Register(10, "trim", "holding", "float32", writable_by=("engineer",))
    return Plant("test", "test", (zone,), (host,), (Plc(host, "tank", 1, (*tank_registers(), trim)),))


def test_a_value_the_register_cannot_hold_gives_exception_3() -> None:
    sim = simulation(tank_with_float_setpoint())
    model = sim.model("tank-9")
    nan, one_and_a_half = [0x7FC0, 0x0000], list(struct.unpack(">HH", struct.pack(">f", 1.5)))

    async def scenario() -> list[Any]:
        async with served(sim) as servers, modbus_client(*servers.endpoints()["tank-9"]) as client:
            return [
                await client.write_registers(10, nan, device_id=1),
                await client.write_register(10, 0x7F80, device_id=1),  # +infinity
                await client.write_registers(10, one_and_a_half, device_id=1),
            ]

    refused_nan, refused_infinity, accepted = run(scenario)
    assert (refused_nan.function_code, refused_nan.exception_code) == (0x90, 3)
    assert (refused_infinity.function_code, refused_infinity.exception_code) == (0x86, 3)
    assert not accepted.isError()
    assert model.value("trim") == 1.5


def test_another_unit_id_gets_exception_0x0b_and_no_data() -> None:
    sim = simulation()

    async def scenario() -> list[Any]:
        async with served(sim, "tank-1") as servers, modbus_client(*servers.endpoints()["tank-1"]) as client:
            return [
                await client.read_holding_registers(0, count=1, device_id=2),
                await client.write_register(0, 900, device_id=0),
            ]

    for response in run(scenario):
        assert response.isError()
        assert response.exception_code == 0x0B
    assert sim.model("tank-1").value("level_high_setpoint") == 80.0


def test_fc43_14_gives_each_plc_its_own_identity() -> None:
    sim = simulation()

    async def scenario() -> dict[str, list[Any]]:
        answers: dict[str, list[Any]] = {}
        async with served(sim, "tank-2", "pump-skid-1") as servers:
            for name, endpoint in servers.endpoints().items():
                async with modbus_client(*endpoint) as client:
                    answers[name] = [
                        await client.read_device_information(read_code=1, device_id=1),
                        await client.read_device_information(read_code=2, device_id=1),
                        await client.read_device_information(read_code=4, object_id=6, device_id=1),
                        await client.read_device_information(read_code=4, object_id=0x80, device_id=1),
                    ]
        return answers

    answers = run(scenario)
    for name, (basic, regular, specific, missing) in answers.items():
        objects = {oid: text.encode() for oid, text in identity(sim.plant.plc(name))}
        assert regular.information == objects  # what the traffic generator's PLCs answer
        assert basic.information == {oid: objects[oid] for oid in (0, 1, 2)}
        assert specific.information == {6: name.encode()}
        assert (missing.function_code, missing.exception_code) == (0xAB, 2)
        assert regular.conformity == 0x82
    tank, pump = answers["tank-2"][1].information, answers["pump-skid-1"][1].information
    assert (tank[0], tank[1], tank[2]) == (b"Plantwarden Sim", b"PW-TANK", b"1.4.2")
    assert (pump[1], pump[4], pump[6]) == (b"PW-PUMP", b"Simulated pump skid controller", b"pump-skid-1")


def test_force_listen_only_silences_one_plc_until_restart_communications() -> None:
    sim = simulation()

    async def scenario() -> None:
        async with served(sim, "tank-1", "tank-2") as servers:
            endpoints = servers.endpoints()
            async with (
                modbus_client(*endpoints["tank-1"], timeout=0.3) as tank_1,
                modbus_client(*endpoints["tank-2"], timeout=0.3) as tank_2,
            ):
                await tank_1.diag_force_listen_only(device_id=1)
                with pytest.raises(ModbusException):
                    await tank_1.write_register(0, 900, device_id=1)
                assert servers.server("tank-1").listen_only
                assert (await tank_2.read_holding_registers(0, count=1, device_id=1)).registers == [800]
                await tank_1.diag_restart_communication(False, device_id=1, no_response_expected=True)
                assert (await tank_1.read_holding_registers(0, count=1, device_id=1)).registers == [800]
                echo = await tank_1.diag_restart_communication(False, device_id=1)
                assert not echo.isError()

    run(scenario)


def test_an_unknown_fc8_sub_function_gives_exception_1() -> None:
    sim = simulation()
    request = frame(7, 1, bytes([8, 0x00, 0x30, 0x00, 0x00]))

    async def scenario() -> bytes:
        async with served(sim, "mixer-1") as servers:
            return await exchange(servers.endpoints()["mixer-1"], request, 9)

    assert run(scenario) == frame(7, 1, bytes([0x88, 0x01]))


def frame(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """A Modbus/TCP frame: the MBAP header and the PDU."""
    return struct.pack(">HHHB", transaction_id, 0, len(pdu) + 1, unit_id) + pdu


async def exchange(endpoint: tuple[str, int], request: bytes, answer_size: int) -> bytes:
    reader, writer = await asyncio.open_connection(*endpoint)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(answer_size), timeout=2)
    finally:
        writer.close()
        await writer.wait_closed()


def test_requests_sent_together_are_all_answered_in_order() -> None:
    sim = simulation()
    requests = (
        frame(1, 1, bytes([0x5A, 0x00, 0x02]))  # UMAS, which these PLCs do not speak
        + frame(2, 1, bytes([6, 0, 0, 0x03, 0x84]))  # level_high_setpoint = 90.0 %
        + frame(3, 1, bytes([3, 0, 0, 0, 1]))
    )

    async def scenario() -> bytes:
        async with served(sim, "tank-1") as servers:
            return await exchange(servers.endpoints()["tank-1"], requests, 9 + 12 + 11)

    assert run(scenario) == (
        frame(1, 1, bytes([0xDA, 0x01]))
        + frame(2, 1, bytes([6, 0, 0, 0x03, 0x84]))
        + frame(3, 1, bytes([3, 2, 0x03, 0x84]))
    )


READ_LEVEL_HIGH = bytes([3, 0, 0, 0, 1])  # tank-1's level_high_setpoint: 800 (80.0 %)
FORCE_LISTEN_ONLY = bytes([8, 0x00, 0x04, 0x00, 0x00])
RESTART_COMMUNICATIONS = bytes([8, 0x00, 0x01, 0x00, 0x00])


def level_high_answer(transaction_id: int) -> bytes:
    return frame(transaction_id, 1, bytes([3, 2, 0x03, 0x20]))


@contextlib.asynccontextmanager
async def connection(
    endpoint: tuple[str, int],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*endpoint)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def silent(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether nothing (not even the end of the stream) arrives in `seconds`."""
    try:
        await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return True
    return False


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(1):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_request_ignored_in_listen_only_mode_leaves_nothing_behind_on_its_connection() -> None:
    """A client asking one request at a time, each after the last went unanswered for 2 s (the
    live HMI's answer timeout), is answered at once when another client restarts communications."""
    sim = simulation()

    async def scenario() -> None:
        async with served(sim, "tank-1") as servers:
            server, endpoint = servers.server("tank-1"), servers.endpoints()["tank-1"]
            async with (
                connection(endpoint) as (hmi, hmi_out),
                connection(endpoint) as (attacker, attacker_out),
            ):
                await send(attacker_out, frame(1, 1, FORCE_LISTEN_ONLY))
                await until(lambda: server.listen_only)
                for transaction_id in (10, 11):
                    await send(hmi_out, frame(transaction_id, 1, READ_LEVEL_HIGH))
                    assert await silent(hmi, 2.0)
                await send(attacker_out, frame(2, 1, RESTART_COMMUNICATIONS))
                await until(lambda: not server.listen_only)
                await send(hmi_out, frame(12, 1, READ_LEVEL_HIGH))
                answer = await asyncio.wait_for(hmi.readexactly(11), 0.5)
                assert answer == level_high_answer(12)
                assert await silent(attacker, 0.1)

    run(scenario)


def test_requests_sent_together_in_listen_only_mode_stay_unanswered_and_later_ones_are_not() -> None:
    sim = simulation()

    async def scenario() -> None:
        async with served(sim, "tank-1") as servers:
            server, endpoint = servers.server("tank-1"), servers.endpoints()["tank-1"]
            async with connection(endpoint) as (hmi, hmi_out), connection(endpoint) as (_, attacker_out):
                await send(attacker_out, frame(1, 1, FORCE_LISTEN_ONLY))
                await until(lambda: server.listen_only)
                await send(hmi_out, frame(10, 1, READ_LEVEL_HIGH) + frame(11, 1, READ_LEVEL_HIGH))
                assert await silent(hmi, 0.5)
                await send(attacker_out, frame(2, 1, RESTART_COMMUNICATIONS))
                await until(lambda: not server.listen_only)
                await send(hmi_out, frame(12, 1, READ_LEVEL_HIGH))
                assert await asyncio.wait_for(hmi.readexactly(11), 0.5) == level_high_answer(12)
                assert await silent(hmi, 0.1)

    run(scenario)


def test_thirty_requests_sent_together_are_all_answered() -> None:
    """360 bytes in one write: more than the 264 bytes pymodbus's own handler keeps."""
    sim = simulation()
    transactions = range(100, 130)

    async def scenario() -> bytes:
        async with served(sim, "tank-1") as servers:
            requests = b"".join(frame(t, 1, READ_LEVEL_HIGH) for t in transactions)
            return await exchange(servers.endpoints()["tank-1"], requests, 11 * len(transactions))

    assert run(scenario) == b"".join(level_high_answer(t) for t in transactions)


def test_a_frame_of_another_protocol_is_dropped_and_the_next_frame_is_answered() -> None:
    sim = simulation()
    not_modbus = struct.pack(">HHHB", 5, 7, 6, 1) + READ_LEVEL_HIGH  # protocol id 7

    async def scenario() -> bytes:
        async with served(sim, "tank-1") as servers:
            return await exchange(
                servers.endpoints()["tank-1"], not_modbus + frame(6, 1, READ_LEVEL_HIGH), 11
            )

    assert run(scenario) == level_high_answer(6)


def test_a_one_byte_request_and_the_first_byte_of_the_next_are_framed_apart() -> None:
    sim = simulation()
    status, read = frame(1, 1, bytes([7])), frame(2, 1, READ_LEVEL_HIGH)  # 7: Read Exception Status

    async def scenario() -> bytes:
        async with (
            served(sim, "tank-1") as servers,
            connection(servers.endpoints()["tank-1"]) as (reader, writer),
        ):
            await send(writer, status + read[:1])
            await asyncio.sleep(0.1)
            await send(writer, read[1:])
            return await asyncio.wait_for(reader.readexactly(9 + 11), 2)

    assert run(scenario) == frame(1, 1, bytes([7, 0])) + level_high_answer(2)


def test_a_length_no_modbus_frame_has_closes_the_connection_and_others_are_served() -> None:
    sim = simulation()

    async def scenario() -> tuple[bytes, bytes]:
        async with served(sim, "tank-1") as servers:
            endpoint = servers.endpoints()["tank-1"]
            async with connection(endpoint) as (reader, writer):
                await send(writer, struct.pack(">HHHB", 1, 0, 0x1000, 1) + READ_LEVEL_HIGH)
                closed = await asyncio.wait_for(reader.read(), 2)
            return closed, await exchange(endpoint, frame(2, 1, READ_LEVEL_HIGH), 11)

    assert run(scenario) == (b"", level_high_answer(2))


def test_a_port_in_use_gives_a_conflict_naming_the_plc_and_address() -> None:
    sim = simulation()

    async def scenario() -> None:
        async with served(sim, "tank-1") as first:
            address, port = first.endpoints()["tank-1"]
            second = PlantServers(sim, port=port, tick=FROZEN, plcs=["pump-skid-1", "tank-1"])
            with pytest.raises(Conflict, match=f"PLC tank-1 .*{address}:{port}.* in use"):
                await second.start()
            assert not second.server("pump-skid-1").running  # started first, stopped again
            async with modbus_client(address, port) as client:
                assert not (await client.read_coils(200, count=1, device_id=1)).isError()

    run(scenario)


def test_an_address_not_on_this_machine_gives_a_configuration_error() -> None:
    sim = simulation()
    plc = sim.plant.plc("tank-1")

    async def scenario() -> None:
        server = PlcServer(plc, sim.model("tank-1"), port=0, address="192.0.2.1")
        with pytest.raises(ConfigurationError, match=r"PLC tank-1 cannot listen on 192\.0\.2\.1:0"):
            await server.start()
        assert not server.running

    run(scenario)


def may_bind(address: str, port: int) -> bool:
    """Whether this process has the privilege to bind `port`."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except PermissionError:
            return False
    return True


def test_the_automatic_port_is_502_with_the_privilege_to_bind_it_else_5020() -> None:
    address = "127.77.0.1"  # no plant host's address: nothing else listens there
    expected = MODBUS_PORT if may_bind(address, MODBUS_PORT) else FALLBACK_PORT
    assert resolve_port(None, address) == expected
    assert resolve_port(0, address) == 0
    assert resolve_port(1502, address) == 1502
    with pytest.raises(InvalidInput):
        resolve_port(70000, address)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_without_cap_net_bind_service_the_automatic_port_is_5020() -> None:
    code = "from plantwarden.sim.modbus_server import resolve_port; print(resolve_port(None, '127.77.0.2'))"
    drop = ["setpriv", "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service"]
    result = subprocess.run(
        [*drop, sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, str(FALLBACK_PORT)), result.stderr


@pytest.mark.parametrize(("tick", "speed"), [(0.0, 1.0), (0.1, -1.0), (0.1, float("nan")), (math.inf, 1.0)])
def test_a_tick_or_speed_that_is_not_a_positive_number_is_refused(tick: float, speed: float) -> None:
    with pytest.raises(InvalidInput):
        PlantServers(simulation(), port=0, tick=tick, speed=speed)


def test_the_physics_advance_by_real_time_times_speed() -> None:
    sim = simulation()

    async def scenario() -> float:
        async with served(sim, "boiler-1", tick=0.02, speed=50.0):
            loop = asyncio.get_running_loop()
            start = loop.time()
            await asyncio.sleep(0.4)
            return loop.time() - start

    wall = run(scenario)
    assert 50.0 * (wall - 0.1) <= sim.elapsed <= 50.0 * (wall + 0.1)
    assert sim.model("boiler-1").elapsed == sim.elapsed


def test_stopping_closes_every_socket_without_a_warning_and_servers_start_again() -> None:
    sim = simulation()

    async def scenario() -> tuple[str, int]:
        servers = served(sim, "tank-1", "conveyor-1", tick=0.01)
        await servers.start()
        address, port = servers.endpoints()["tank-1"]
        async with modbus_client(address, port, timeout=0.3) as client:
            assert not (await client.read_coils(200, count=3, device_id=1)).isError()
            await servers.stop()  # with the client still connected
            with pytest.raises(ModbusException):
                await client.read_coils(200, count=3, device_id=1)
        await servers.stop()
        await servers.start()
        async with modbus_client(*servers.endpoints()["tank-1"]) as client:
            assert not (await client.read_coils(200, count=3, device_id=1)).isError()
        await servers.stop()
        return address, port

    address, port = run(scenario)
    gc.collect()  # an unclosed socket or transport would warn (an error here) when collected
    with socket.socket() as probe:
        probe.bind((address, port))  # the port is free again


def test_a_failing_write_observer_does_not_refuse_the_write(caplog: pytest.LogCaptureFixture) -> None:
    sim = simulation()

    def observer(*_: object) -> None:
        raise RuntimeError("the write log is down")

    async def scenario() -> Any:
        async with (
            served(sim, "mixer-1", on_write=observer) as servers,
            modbus_client(*servers.endpoints()["mixer-1"]) as client,
        ):
            return await client.write_register(0, 150, device_id=1)

    assert not run(scenario).isError()
    assert sim.model("mixer-1").value("agitator_speed_setpoint") == 150
    assert "the write observer failed on a write to PLC mixer-1" in caplog.text
