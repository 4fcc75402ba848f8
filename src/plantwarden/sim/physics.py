"""The physics of the simulated processes: one model per process kind, deterministic for a seed.

A model keeps one engineering value per register of its PLC (by name), advances them with
`step(dt_seconds)` and shows them as raw 16-bit words (`registers()`), the way a PLC's register
image would. Noise comes only from the `random.Random` passed in. `write(address, raw_value)`
changes a writable register word by word, as a Modbus write would, and the process follows.
A measurement can be reported off the process by a bias (`set_bias`: a tampered or failing
transmitter): `registers()`, `value()` and `values()` show what the PLC reports, `true_value()`
the process itself, which the bias does not touch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import ClassVar

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.sim.encoding import decode, encode
from plantwarden.sim.plant import (
    Plant,
    Plc,
    ProcessKind,
    Register,
    boiler_registers,
    conveyor_registers,
    mixer_registers,
    pump_skid_registers,
    tank_registers,
)

MAX_SUBSTEP = 0.5
"""Seconds: a longer step is integrated in equal sub-steps no longer than this."""


def lag(value: float, target: float, tau: float, dt: float) -> float:
    """First-order lag: `value` moved towards `target` with time constant `tau` over `dt` (exact)."""
    return target + (value - target) * math.exp(-dt / tau)


def clamp(value: float, low: float, high: float) -> float:
    """`value` limited to `low`..`high`."""
    return min(max(value, low), high)


def _names(template: Callable[[], tuple[Register, ...]]) -> frozenset[str]:
    return frozenset(register.name for register in template())


class ProcessModel:
    """The common part of every process model: values by register name, encoding and writes."""

    process: ClassVar[ProcessKind]
    signals: ClassVar[frozenset[str]]

    def __init__(self, plc: Plc, rng: random.Random) -> None:
        if plc.process != self.process:
            raise InvalidInput(f"PLC {plc.name} drives a {plc.process}, not a {self.process}")
        missing = self.signals - {register.name for register in plc.registers}
        if missing:
            raise InvalidInput(f"PLC {plc.name} ({plc.process}) lacks registers {sorted(missing)}")
        self.plc = plc
        self.rng = rng
        self.elapsed = 0.0
        self._values = {register.name: 0.0 for register in plc.registers}
        self._bias: dict[str, float] = {}
        self._start()

    def step(self, dt_seconds: float) -> None:
        """Advance the process by `dt_seconds` of simulated time."""
        if not math.isfinite(dt_seconds) or dt_seconds <= 0:
            raise InvalidInput(f"a simulation step must be a positive number of seconds, not {dt_seconds!r}")
        count = max(1, math.ceil(dt_seconds / MAX_SUBSTEP - 1e-9))
        for _ in range(count):
            self._advance(dt_seconds / count)
        self.elapsed += dt_seconds

    def registers(self) -> dict[int, int]:
        """The raw register image: one 16-bit word (or 0/1 bit) per address."""
        image: dict[int, int] = {}
        for register in self.plc.registers:
            words = encode(register, self._values[register.name] + self._bias.get(register.name, 0.0))
            image.update(zip(register.addresses, words, strict=True))
        return image

    def value(self, name: str) -> float:
        """The engineering value the PLC reports for register `name` (bools as 0.0/1.0)."""
        return self.true_value(name) + self._bias.get(name, 0.0)

    def true_value(self, name: str) -> float:
        """The process's own value of register `name`, whatever bias its report carries."""
        if name not in self._values:
            raise NotFound(f"PLC {self.plc.name} has no register {name!r}")
        return self._values[name]

    def values(self) -> dict[str, float]:
        """Every engineering value the PLC reports, by register name."""
        return {name: value + self._bias.get(name, 0.0) for name, value in self._values.items()}

    def bias(self, name: str) -> float:
        """How far the report of register `name` is off the process (0.0: it is true)."""
        return self._bias.get(name, 0.0)

    def set_bias(self, name: str, offset: float) -> None:
        """Report measurement `name` off the process by `offset` (0 reports it true again).

        Only a measurement (an input register) can be biased: a setpoint or a coil is what was
        written, not what a transmitter sees. The process keeps running on its true value.
        """
        register = self.plc.register(name)
        if register.kind != "input":
            raise InvalidInput(f"register {name!r} of PLC {self.plc.name} is not a measurement (input)")
        if not math.isfinite(offset):
            raise InvalidInput(f"a reporting bias must be a finite number, not {offset!r}")
        if offset:
            self._bias[name] = float(offset)
        else:
            self._bias.pop(name, None)

    def write(self, address: int, raw_value: int) -> None:
        """Write one raw word (or 0/1 bit) at `address`; InvalidInput for a read-only register.

        A float32 is written word by word: each write replaces one word of its current value.
        """
        register = self.plc.register_at(address)
        if not register.writable:
            raise InvalidInput(f"register {register.name!r} of PLC {self.plc.name} at {address} is read-only")
        words = list(encode(register, self._values[register.name]))
        words[address - register.address] = raw_value
        value = decode(register, words)
        if not math.isfinite(value):
            raise InvalidInput(f"register {register.name!r} of PLC {self.plc.name}: {value} is not a number")
        self._values[register.name] = value
        self._on_write(register.name, value)

    def write_value(self, name: str, value: float) -> None:
        """Write the engineering `value` of register `name`, encoded as its words."""
        register = self.plc.register(name)
        for address, word in zip(register.addresses, encode(register, value), strict=True):
            self.write(address, word)

    def _start(self) -> None:
        """Set the initial state (subclasses; may draw from `rng`)."""

    def _advance(self, dt: float) -> None:
        """Advance by one sub-step of `dt` seconds (subclasses)."""
        raise NotImplementedError

    def _on_write(self, name: str, value: float) -> None:
        """React to a write of `value` to register `name` (subclasses, when a write is an action)."""

    def _get(self, name: str) -> float:
        return self._values[name]

    def _set(self, name: str, value: float) -> None:
        self._values[name] = float(value)

    def _flag(self, name: str) -> bool:
        return self._values[name] != 0

    def _noise(self, sigma: float) -> float:
        return self.rng.gauss(0.0, sigma)


class TankModel(ProcessModel):
    """A tank filled through an inlet valve and emptied by an outlet pump.

    In auto mode a two-point controller opens the inlet below the low setpoint and closes it above
    the high one; out of auto mode the valve stays as written.
    """

    process = "tank"
    signals = _names(tank_registers)
    capacity_litres = 2000.0
    inlet_rate = 400.0  # litres per minute through the open valve
    outlet_rate = 250.0  # litres per minute through the running pump

    def _start(self) -> None:
        self._set("level_high_setpoint", 80.0)
        self._set("level_low_setpoint", 20.0)
        self._set("level", self.rng.uniform(35.0, 65.0))
        self._set("outlet_pump_on", 1)
        self._set("auto_mode", 1)
        self._set("inlet_valve_open", self.rng.random() < 0.5)

    def _advance(self, dt: float) -> None:
        self._control()
        level = self._get("level")
        inflow = self.inlet_rate * (1 + self._noise(0.02)) if self._flag("inlet_valve_open") else 0.0
        outflow = (
            self.outlet_rate * (1 + self._noise(0.02)) if self._flag("outlet_pump_on") and level > 0 else 0.0
        )
        level += (inflow - outflow) * dt / 60 / self.capacity_litres * 100
        self._set("level", clamp(level, 0.0, 100.0))
        self._set("inlet_flow", inflow)
        self._set("outlet_flow", outflow)
        self._set_alarms()

    def _control(self) -> None:
        if not self._flag("auto_mode"):
            return
        level = self._get("level")
        if level < self._get("level_low_setpoint"):
            self._set("inlet_valve_open", 1)
        elif level > self._get("level_high_setpoint"):
            self._set("inlet_valve_open", 0)

    def _set_alarms(self) -> None:
        register = self.plc.register("level")
        level = self._get("level")
        self._set("level_high_alarm", register.safe_max is not None and level > register.safe_max)
        self._set("level_low_alarm", register.safe_min is not None and level < register.safe_min)


class ConveyorModel(ProcessModel):
    """A belt counting items at its speed; it jams with a small seeded probability and then stops
    (count and belt) until `jam_reset` is written, drawing stall current meanwhile."""

    process = "conveyor"
    signals = _names(conveyor_registers)
    items_per_metre = 2.0

    def __init__(self, plc: Plc, rng: random.Random, *, jam_rate_per_hour: float = 2.0) -> None:
        self.jam_rate_per_hour = jam_rate_per_hour
        self._fraction = 0.0
        super().__init__(plc, rng)

    def _start(self) -> None:
        self._set("speed_setpoint", 30.0)
        self._set("motor_on", 1)
        self._set("belt_speed", 30.0)
        self._set("item_count", self.rng.randrange(1000))

    def _advance(self, dt: float) -> None:
        moving = self._get("belt_speed") > 0.5
        if moving and self.rng.random() < self.jam_rate_per_hour / 3600 * dt:
            self._set("jammed", 1)
        jammed, motor_on = self._flag("jammed"), self._flag("motor_on")
        target = self._get("speed_setpoint") if motor_on else 0.0
        speed = 0.0 if jammed else lag(self._get("belt_speed"), clamp(target, 0.0, 80.0), 1.5, dt)
        self._set("belt_speed", speed)
        self._count(speed, dt)
        current = 18.0 if jammed else 4.0 + 0.15 * speed + self._noise(0.1)
        self._set("motor_current", current if motor_on else 0.0)

    def _count(self, speed: float, dt: float) -> None:
        self._fraction += speed * self.items_per_metre * dt / 60
        whole = math.floor(self._fraction)
        self._fraction -= whole
        self._set("item_count", (int(self._get("item_count")) + whole) % 0x10000)

    def _on_write(self, name: str, value: float) -> None:
        if name == "jam_reset" and value:
            self._set("jammed", 0)
            self._set("jam_reset", 0)


class PumpSkidModel(ProcessModel):
    """A centrifugal pump: speed follows the setpoint, pressure (with the square of speed) and flow
    follow the speed with first-order lags, and the motor warms with speed; above 95 degC it trips
    and stays stopped until `run` is written again once it has cooled below 60 degC."""

    process = "pump_skid"
    signals = _names(pump_skid_registers)
    rated_pressure = 8.0  # bar at 100 % speed
    rated_flow = 100.0  # m3/h at 100 % speed
    trip_temperature = 95.0
    reset_temperature = 60.0

    def _start(self) -> None:
        speed = 55.0 + self.rng.uniform(-5.0, 5.0)
        self._set("speed_setpoint", speed)
        self._set("run", 1)
        self._set("pump_speed", speed)
        self._set("discharge_pressure", self.rated_pressure * (speed / 100) ** 2)
        self._set("flow", self.rated_flow * speed / 100)
        self._set("motor_temperature", self._equilibrium_temperature(speed))

    def _advance(self, dt: float) -> None:
        running = self._flag("run") and not self._flag("overtemperature_trip")
        target = clamp(self._get("speed_setpoint"), 0.0, 120.0) if running else 0.0
        speed = lag(self._get("pump_speed"), target, 2.0, dt)
        fraction = speed / 100
        pressure = self.rated_pressure * fraction**2 * (1 + self._noise(0.01))
        flow = self.rated_flow * fraction * (1 + self._noise(0.01))
        self._set("pump_speed", speed)
        self._set("discharge_pressure", max(0.0, lag(self._get("discharge_pressure"), pressure, 3.0, dt)))
        self._set("flow", max(0.0, lag(self._get("flow"), flow, 4.0, dt)))
        temperature = lag(self._get("motor_temperature"), self._equilibrium_temperature(speed), 90.0, dt)
        self._set("motor_temperature", temperature)
        if temperature > self.trip_temperature:
            self._set("overtemperature_trip", 1)

    def _equilibrium_temperature(self, speed: float) -> float:
        return 25.0 + 55.0 * (speed / 100) ** 2 + self._noise(0.2)

    def _on_write(self, name: str, value: float) -> None:
        if name == "run" and value and self._get("motor_temperature") < self.reset_temperature:
            self._set("overtemperature_trip", 0)


class MixerModel(ProcessModel):
    """A batch mixer: a batch agitates for the batch time, discharges for 30 s, and in auto cycle
    the next batch starts; agitation warms the mix."""

    process = "mixer"
    signals = _names(mixer_registers)
    discharge_seconds = 30.0

    def _start(self) -> None:
        self._set("agitator_speed_setpoint", 120.0)
        self._set("batch_time_setpoint", 300.0)
        self._set("auto_cycle", 1)
        self._set("batch_running", 1)
        self._set("batch_elapsed", self.rng.uniform(0.0, 300.0))
        self._set("batch_count", self.rng.randrange(100))
        self._set("agitator_speed", 120.0)
        self._set("mix_temperature", 30.0 + self._noise(0.5))
        self._pause = 0.0

    def _advance(self, dt: float) -> None:
        self._run_batch(dt)
        running = self._flag("batch_running")
        target = clamp(self._get("agitator_speed_setpoint"), 0.0, 400.0) if running else 0.0
        speed = lag(self._get("agitator_speed"), target, 3.0, dt)
        self._set("agitator_speed", speed)
        warmth = 18.0 + 0.1 * speed + self._noise(0.3)
        self._set("mix_temperature", lag(self._get("mix_temperature"), warmth, 60.0, dt))

    def _run_batch(self, dt: float) -> None:
        if self._flag("batch_running"):
            self._set("batch_elapsed", self._get("batch_elapsed") + dt)
            if self._get("batch_elapsed") >= self._get("batch_time_setpoint"):
                self._set("batch_running", 0)
                self._set("batch_count", (int(self._get("batch_count")) + 1) % 0x10000)
                self._pause = self.discharge_seconds
            return
        self._pause = max(0.0, self._pause - dt)
        if self._pause == 0 and self._flag("auto_cycle"):
            self._set("batch_running", 1)
            self._set("batch_elapsed", 0.0)


class BoilerModel(ProcessModel):
    """A steam boiler: a proportional controller fires the burner towards the pressure setpoint,
    a randomly wandering steam demand draws heat, and the safety valve lifts above 10.5 bar
    (closing below 9.5). Pressure is the saturation pressure of the water temperature."""

    process = "boiler"
    signals = _names(boiler_registers)
    heat_rate = 2.0  # degC per second at full firing
    demand_rate = 1.0  # degC per second at full steam demand
    valve_rate = 3.0  # degC per second through the open safety valve

    def _start(self) -> None:
        self._set("pressure_setpoint", 8.0)
        self._set("burner_enable", 1)
        self._set("water_temperature", self._saturation_temperature(8.0) + self.rng.uniform(-2.0, 2.0))
        self._set("steam_demand", self.rng.uniform(30.0, 60.0))
        self._set("firing_rate", 40.0)
        self._set("steam_pressure", self._pressure(self._get("water_temperature")))

    def _advance(self, dt: float) -> None:
        demand = clamp(self._get("steam_demand") + self._noise(0.5) * math.sqrt(dt), 10.0, 90.0)
        pressure = self._get("steam_pressure")
        wanted = (
            50.0 + 50.0 * (self._get("pressure_setpoint") - pressure) if self._flag("burner_enable") else 0.0
        )
        firing = lag(self._get("firing_rate"), clamp(wanted, 0.0, 100.0), 5.0, dt)
        self._set_safety_valve(pressure)
        temperature = self._get("water_temperature")
        heat = firing / 100 * self.heat_rate - 0.002 * (temperature - 20.0)
        heat -= demand / 100 * self.demand_rate if pressure > 0 else 0.0
        heat -= self.valve_rate if self._flag("safety_valve_open") else 0.0
        temperature = clamp(temperature + heat * dt, 10.0, 250.0)
        self._set("steam_demand", demand)
        self._set("firing_rate", firing)
        self._set("water_temperature", temperature)
        self._set("steam_pressure", self._pressure(temperature))

    def _set_safety_valve(self, pressure: float) -> None:
        if pressure > 10.5:
            self._set("safety_valve_open", 1)
        elif pressure < 9.5:
            self._set("safety_valve_open", 0)

    @staticmethod
    def _pressure(temperature: float) -> float:
        """Gauge pressure (bar) of saturated steam, a fit good enough for 100-190 degC."""
        return 10.0 * ((temperature - 100.0) / 80.0) ** 2 if temperature > 100.0 else 0.0

    @staticmethod
    def _saturation_temperature(pressure: float) -> float:
        return 100.0 + 80.0 * math.sqrt(pressure / 10.0)


MODELS: dict[str, type[ProcessModel]] = {
    model.process: model for model in (TankModel, ConveyorModel, PumpSkidModel, MixerModel, BoilerModel)
}
"""The model of each process kind."""


def build_model(plc: Plc, rng: random.Random) -> ProcessModel:
    """The process model that `plc` drives, drawing its noise from `rng`."""
    return MODELS[plc.process](plc, rng)


def _stream(seed: int, name: str) -> random.Random:
    # Process noise, not a secret: a reproducible generator is the point.
    return random.Random(f"{seed}:{name}")  # noqa: S311


class PlantSimulation:
    """Every PLC's process model, stepped together; the same plant and seed give the same history.

    Each PLC draws from its own stream (seeded by the seed and its name), so adding a PLC does not
    change the others' histories.
    """

    def __init__(self, plant: Plant, seed: int) -> None:
        self.plant = plant
        self.seed = seed
        self.elapsed = 0.0
        self.models = {plc.name: build_model(plc, _stream(seed, plc.name)) for plc in plant.plcs}

    def step(self, dt_seconds: float) -> None:
        """Advance every process by `dt_seconds` of simulated time."""
        for model in self.models.values():
            model.step(dt_seconds)
        self.elapsed += dt_seconds

    def model(self, plc_name: str) -> ProcessModel:
        """The process model of the PLC called `plc_name`; NotFound if there is none."""
        if plc_name not in self.models:
            raise NotFound(f"the simulation has no PLC {plc_name!r}")
        return self.models[plc_name]

    def registers(self) -> dict[str, dict[int, int]]:
        """The raw register image of every PLC, by PLC name."""
        return {name: model.registers() for name, model in self.models.items()}
