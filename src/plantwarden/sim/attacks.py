"""Attack scenarios as code: each is a list of steps, the same for the traffic generator (which
draws them into a capture with labels) and the live plant (`plantwarden sim attack NAME`, which
carries them out over real sockets from the attacker's own address).

Techniques are MITRE ATT&CK for ICS ids (T0xxx), or Enterprise where the ICS matrix has none
(T1110, brute force against the console).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.behaviour import write_requests
from plantwarden.sim.plant import Plant

SCAN_PORTS = (502, 102, 44818, 80)
"""Modbus/TCP, S7comm (ISO-TSAP), EtherNet/IP and HTTP: what an OT scan looks for first."""
COMMON_PASSWORDS = (
    "admin", "password", "123456", "admin123", "plant", "letmein", "Welcome1", "scada", "operator",
    "P@ssw0rd", "qwerty", "changeme", "root", "factory", "siemens", "schneider", "12345678", "master",
    "riverside", "Summer2026!", "Winter2026!", "hmi", "engineer", "default", "secret",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Probe:
    """A TCP connection attempt (SYN) to one port; an answer is reset at once."""

    source: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class ModbusSession:
    """A Modbus/TCP connection to a PLC carrying these requests, one after another."""

    source: str
    plc: str
    requests: tuple[modbus.Request, ...]


@dataclass(frozen=True, slots=True)
class LoginAttempts:
    """Password guesses against the console's login form, on one keep-alive connection."""

    source: str
    target: str
    username: str
    passwords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TelemetryForgery:
    """A telemetry message on a device's topic, sent by someone else, with some values changed."""

    source: str
    plc: str
    changes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SensorDrift:
    """Measurement `variable` of `plc` reported off the process by an offset growing at
    `rate_per_second` (engineering units) for `seconds` of simulated time, then reported true
    again: a tampered or failing transmitter. The process itself is unchanged; what drifts is the
    register the PLC serves and the telemetry it publishes."""

    plc: str
    variable: str
    rate_per_second: float
    seconds: float

    def offset(self, elapsed: float) -> float:
        """The bias `elapsed` seconds after the drift began (it stops growing at `seconds`)."""
        return self.rate_per_second * min(max(elapsed, 0.0), self.seconds)


@dataclass(frozen=True, slots=True)
class Pause:
    """Time between steps."""

    seconds: float


Step = Probe | ModbusSession | LoginAttempts | TelemetryForgery | SensorDrift | Pause


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named attack: its technique, what it does, and how to build its steps for a plant."""

    name: str
    technique: str
    description: str
    build: Callable[[Plant, random.Random], list[Step]]


def _scan(plant: Plant, rng: random.Random) -> list[Step]:
    cells = [zone for zone in plant.zones if zone.purdue_level <= 1]
    targets = [str(zone.network.network_address + index) for zone in cells for index in range(1, 21)]
    probes: list[Step] = [Probe("office-ws-1", address, port) for address in targets for port in SCAN_PORTS]
    rng.shuffle(probes)
    steps: list[Step] = []
    for probe in probes:
        steps += [probe, Pause(0.004)]
    for plc in plant.plcs:
        identify = (modbus.read_device_identification(1), modbus.read(modbus.READ_HOLDING_REGISTERS, 0, 1))
        steps += [ModbusSession("office-ws-1", plc.name, identify), Pause(0.2)]
    return steps


def _unauthorized_write(plant: Plant, rng: random.Random) -> list[Step]:
    plc = plant.plc("tank-1")
    requests = (
        *write_requests(plc.register("level_high_setpoint"), 92.0),
        *write_requests(plc.register("outlet_pump_on"), 0.0),
    )
    return [ModbusSession("office-ws-1", plc.name, requests)]


def _out_of_range_setpoint(plant: Plant, rng: random.Random) -> list[Step]:
    register = plant.plc("boiler-1").register("pressure_setpoint")
    requests = (
        *write_requests(register, 14.0),
        modbus.read(modbus.READ_HOLDING_REGISTERS, register.address, 1),
    )
    return [ModbusSession("eng-ws-1", "boiler-1", requests)]


def _plc_stop(plant: Plant, rng: random.Random) -> list[Step]:
    stop = modbus.diagnostics(modbus.FORCE_LISTEN_ONLY_MODE)
    restart = modbus.diagnostics(modbus.RESTART_COMMUNICATIONS)
    return [
        ModbusSession("eng-ws-1", "mixer-1", (stop,)),
        Pause(30.0),
        ModbusSession("eng-ws-1", "mixer-1", (restart,)),
    ]


def _console_brute_force(plant: Plant, rng: random.Random) -> list[Step]:
    passwords = list(COMMON_PASSWORDS)
    rng.shuffle(passwords)
    return [LoginAttempts("office-ws-1", "console-1", "admin", tuple(passwords))]


def _tampered_telemetry(plant: Plant, rng: random.Random) -> list[Step]:
    return [TelemetryForgery("office-ws-1", "tank-1", {"level": 50.0}), Pause(10.0)] * 3


DRIFT_SHARE_PER_MINUTE = 0.005
"""How fast the drifting sensor's report moves: 0.5 % of the register's safe range a minute."""
DRIFT_SECONDS = 1800.0


def _drifting_sensor(plant: Plant, rng: random.Random) -> list[Step]:
    # Pressure follows the square of the pump's speed and flow its speed: a drifting pressure
    # breaks both relations long before it leaves its 0-10 bar safe range.
    register = plant.plc("pump-skid-1").register("discharge_pressure")
    if register.safe_min is None or register.safe_max is None:
        raise InvalidInput("pump-skid-1's discharge_pressure needs a safe range for the drift's rate")
    rate = (register.safe_max - register.safe_min) * DRIFT_SHARE_PER_MINUTE / 60
    return [SensorDrift("pump-skid-1", register.name, rate, DRIFT_SECONDS)]


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "scan",
            "T0846",
            "SYN scan of the control cells for OT ports, then Modbus identification of each PLC found",
            _scan,
        ),
        Scenario(
            "unauthorized-write",
            "T0855",
            "An office workstation (enterprise IT) writes tank-1's high-level setpoint and stops its pump",
            _unauthorized_write,
        ),
        Scenario(
            "out-of-range-setpoint",
            "T0836",
            "boiler-1's pressure setpoint written to 14 bar, above its safe range of 2-10 bar",
            _out_of_range_setpoint,
        ),
        Scenario(
            "plc-stop",
            "T0858",
            "mixer-1 forced into listen-only mode (Modbus diagnostics 0x0004) for 30 s, then restarted",
            _plc_stop,
        ),
        Scenario(
            "console-brute-force",
            "T1110",
            "25 password guesses for 'admin' against the console's login form",
            _console_brute_force,
        ),
        Scenario(
            "tampered-telemetry",
            "T0856",
            "Telemetry on tank-1's topic from an office workstation, the tank level replaced by 50 %",
            _tampered_telemetry,
        ),
        Scenario(
            "drifting-sensor",
            "T0832",
            "pump-skid-1 reports its discharge pressure rising 0.05 bar/min above the true pressure"
            " for 30 min (to +1.5 bar, inside its 0-10 bar safe range), then true again",
            _drifting_sensor,
        ),
    )
}
"""Every scenario by name."""


def scenario(name: str) -> Scenario:
    """The scenario called `name`; NotFound (listing the known ones) otherwise."""
    if name not in SCENARIOS:
        raise NotFound(f"no attack scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
