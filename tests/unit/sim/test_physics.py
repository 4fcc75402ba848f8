"""The simulated processes: encoding, determinism for a seed, and physics that follows writes."""

from __future__ import annotations

import random
import struct

import pytest

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.sim.encoding import decode, encode
from plantwarden.sim.physics import (
    MODELS,
    ConveyorModel,
    PlantSimulation,
    ProcessModel,
    TankModel,
    build_model,
)
from plantwarden.sim.plant import PROCESS_KINDS, Plc, Register, default_plant, tank_registers

FLOAT = Register(10, "value", "input", "float32")
SIGNED = Register(11, "temperature", "input", "int16", "degC", scale=10)
UNSIGNED = Register(12, "flow", "input", "uint16", "l/min", scale=10)


def stream(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 (the simulation's noise, not a secret)


def model(plc_name: str, seed: int = 1) -> ProcessModel:
    return build_model(default_plant().plc(plc_name), stream(seed))


def run(process: ProcessModel, seconds: int, dt: float = 1.0) -> None:
    for _ in range(round(seconds / dt)):
        process.step(dt)


@pytest.mark.parametrize("value", [0.0, 1.0, -2.5, 47.125, 1e-7, -3.4e38, 123456.78])
def test_float32_round_trips_through_two_big_endian_words(value: float) -> None:
    words = encode(FLOAT, value)
    assert len(words) == 2 and all(0 <= word <= 0xFFFF for word in words)
    assert decode(FLOAT, words) == struct.unpack(">f", struct.pack(">f", value))[0]


def test_float32_puts_the_high_word_first() -> None:
    assert encode(FLOAT, 1.0) == (0x3F80, 0x0000)
    assert decode(FLOAT, (0xC020, 0x0000)) == -2.5


def test_integers_are_scaled_saturated_and_signed_in_twos_complement() -> None:
    assert encode(SIGNED, -12.3) == (0x10000 - 123,)
    assert decode(SIGNED, encode(SIGNED, -12.3)) == -12.3
    assert encode(UNSIGNED, 412.34) == (4123,)
    assert encode(UNSIGNED, -5.0) == (0,) and encode(UNSIGNED, 1e9) == (0xFFFF,)
    with pytest.raises(InvalidInput):
        decode(UNSIGNED, (0x10000,))


def test_there_is_a_model_for_every_process_kind() -> None:
    assert set(MODELS) == set(PROCESS_KINDS)


def test_every_register_of_every_plc_shows_one_raw_word_per_address() -> None:
    simulation = PlantSimulation(default_plant(), seed=3)
    simulation.step(1.0)
    for plc in simulation.plant.plcs:
        image = simulation.registers()[plc.name]
        assert set(image) == {address for register in plc.registers for address in register.addresses}
        assert all(0 <= word <= 0xFFFF for word in image.values())


def history(seed: int, steps: int = 600) -> list[dict[str, dict[int, int]]]:
    simulation = PlantSimulation(default_plant(), seed)
    frames = []
    for _ in range(steps):
        simulation.step(1.0)
        frames.append(simulation.registers())
    return frames


def test_the_same_seed_gives_the_same_register_history() -> None:
    first = history(seed=7)
    assert first == history(seed=7)
    assert first != history(seed=8)
    assert first[0] != first[-1]


def test_a_tank_fills_when_its_inlet_opens_and_its_outlet_stops() -> None:
    tank = model("tank-1")
    plc = tank.plc
    tank.write(plc.register("auto_mode").address, 0)
    tank.write(plc.register("outlet_pump_on").address, 0)
    tank.write(plc.register("inlet_valve_open").address, 1)
    before = tank.value("level")
    run(tank, 30)
    # 400 l/min into 2000 l: 10 % in 30 s, give or take the noise.
    assert 9.0 < tank.value("level") - before < 11.0
    assert tank.value("outlet_flow") == 0 and tank.value("inlet_flow") > 350


def test_a_tank_in_auto_mode_keeps_its_level_between_the_setpoints() -> None:
    tank = model("tank-2", seed=5)
    levels = []
    for _ in range(1200):
        tank.step(1.0)
        levels.append(tank.value("level"))
    assert 18.0 < min(levels) < 21.0 and 79.0 < max(levels) < 82.0


def test_a_tank_empties_and_raises_its_low_alarm_when_the_inlet_stays_shut() -> None:
    tank = model("tank-1")
    tank.write_value("auto_mode", 0)
    tank.write_value("inlet_valve_open", 0)
    run(tank, 600)
    assert tank.value("level") == 0 and tank.value("level_low_alarm") == 1
    assert tank.value("outlet_flow") == 0


def test_a_pump_speed_setpoint_write_raises_flow_and_pressure_within_seconds() -> None:
    pump = model("pump-skid-1")
    flow, pressure = pump.value("flow"), pump.value("discharge_pressure")
    pump.write(0, 900)  # speed_setpoint, scale 10: 90 %
    run(pump, 20, dt=0.5)
    assert pump.value("pump_speed") == pytest.approx(90.0, abs=0.5)
    assert pump.value("flow") == pytest.approx(90.0, rel=0.05) and pump.value("flow") > flow + 20
    assert pump.value("discharge_pressure") == pytest.approx(8.0 * 0.81, rel=0.05)
    assert pump.value("discharge_pressure") > pressure + 2


def test_a_pump_driven_past_its_safe_speed_trips_on_temperature() -> None:
    pump = model("pump-skid-1")
    pump.write_value("speed_setpoint", 120.0)
    run(pump, 600, dt=5.0)
    assert pump.value("overtemperature_trip") == 1
    assert pump.value("pump_speed") < 1.0


def test_a_conveyor_jam_stops_the_count_until_it_is_reset() -> None:
    plc = default_plant().plc("conveyor-1")
    conveyor = ConveyorModel(plc, stream(1), jam_rate_per_hour=3600.0)
    for _ in range(300):
        conveyor.step(1.0)
        if conveyor.value("jammed"):
            break
    assert conveyor.value("jammed") == 1
    count = conveyor.registers()[100]
    run(conveyor, 30)
    assert conveyor.registers()[100] == count
    assert conveyor.value("belt_speed") == 0 and conveyor.value("motor_current") == 18.0
    conveyor.jam_rate_per_hour = 0.0
    conveyor.write(plc.register("jam_reset").address, 1)
    run(conveyor, 30)
    assert conveyor.value("jammed") == 0 and conveyor.value("jam_reset") == 0
    assert conveyor.registers()[100] > count + 10


def test_a_running_conveyor_counts_items_at_its_speed() -> None:
    conveyor = ConveyorModel(default_plant().plc("conveyor-1"), stream(1), jam_rate_per_hour=0.0)
    count = conveyor.value("item_count")
    run(conveyor, 60)
    assert conveyor.value("item_count") - count == 60  # 30 m/min at 2 items a metre


def test_a_mixer_completes_batches_in_auto_cycle() -> None:
    mixer = model("mixer-1")
    count = mixer.value("batch_count")
    mixer.write_value("batch_time_setpoint", 60.0)
    run(mixer, 400)
    assert mixer.value("batch_count") - count >= 3


def test_a_boiler_overpressure_setpoint_lifts_the_safety_valve() -> None:
    boiler = model("boiler-1")
    assert boiler.value("steam_pressure") == pytest.approx(8.0, abs=1.0)
    boiler.write_value("pressure_setpoint", 15.0)
    lifted = False
    for _ in range(600):
        boiler.step(1.0)
        lifted = lifted or boiler.value("safety_valve_open") == 1
    assert lifted and boiler.value("steam_pressure") < 11.0


def test_writes_to_read_only_or_missing_registers_or_of_bad_values_are_refused() -> None:
    tank = model("tank-1")
    with pytest.raises(InvalidInput, match="read-only"):
        tank.write(100, 0)
    with pytest.raises(InvalidInput, match="read-only"):
        tank.write(300, 1)
    with pytest.raises(NotFound):
        tank.write(999, 0)
    with pytest.raises(InvalidInput, match="0 or 1"):
        tank.write(200, 2)
    with pytest.raises(InvalidInput):
        tank.write(0, 70000)


def test_a_float32_register_is_written_word_by_word() -> None:
    extra = Register(400, "trim", "holding", "float32", "%", writable_by=("engineer",))
    plc = default_plant().plc("tank-1")
    tank = TankModel(Plc(plc.host, "tank", 1, (*tank_registers(), extra)), stream(1))
    high, low = encode(extra, 12.345)
    tank.write(400, high)
    tank.write(401, low)
    assert tank.value("trim") == decode(extra, (high, low))
    assert tank.registers()[400] == high and tank.registers()[401] == low


def test_a_model_refuses_a_plc_of_another_process_or_without_its_registers() -> None:
    plc = default_plant().plc("tank-1")
    with pytest.raises(InvalidInput, match="not a conveyor"):
        ConveyorModel(plc, stream(1))
    with pytest.raises(InvalidInput, match="lacks registers"):
        TankModel(Plc(plc.host, "tank", 1, tank_registers()[:3]), stream(1))


def test_a_step_must_be_a_positive_time() -> None:
    with pytest.raises(InvalidInput):
        model("tank-1").step(0.0)
    simulation = PlantSimulation(default_plant(), seed=1)
    with pytest.raises(NotFound):
        simulation.model("tank-9")
