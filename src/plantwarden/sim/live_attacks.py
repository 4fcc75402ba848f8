"""Attack scenarios carried out against the running plant, over real sockets, with a record.

Each step connects from the attacker's own loopback address: probes are real connection
attempts, Modbus sessions real requests to the PLC servers, login attempts real HTTP against the
console, forged telemetry a real MQTT publish to the broker. A drifting sensor sends nothing: it
sets the bias of the measurement in the plant's own simulation (its register image and telemetry)
every `DRIFT_TICK` real seconds, following the simulation's clock (so `--speed` shortens it), and
removes it at the end; outside the plant (`--standalone`) it cannot be carried out, and says so.
The record says what was sent, when, and what came back; it goes to the caller (and
`plantwarden sim attack` prints it as JSON).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from plantwarden.core.errors import PlantwardenError
from plantwarden.sim import mqtt
from plantwarden.sim.attacks import (
    LoginAttempts,
    ModbusSession,
    Pause,
    Probe,
    Scenario,
    SensorDrift,
    TelemetryForgery,
)
from plantwarden.sim.behaviour import (
    MODBUS_PORT,
    mqtt_client_id,
    telemetry_payload,
    telemetry_topic,
    telemetry_values,
)
from plantwarden.sim.live_net import (
    LiveConnection,
    LiveModbusClient,
    PeerClosed,
    Unreachable,
    http_exchange,
    mqtt_session,
)
from plantwarden.sim.physics import PlantSimulation
from plantwarden.sim.plant import Plant
from plantwarden.sim.tap import Tap
from plantwarden.sim.traffic.payloads import http_request

PROBE_TIMEOUT = 2.0
"""Seconds a probe waits for its connection. A closed port answers at once (a reset), so only a
port that drops the probe waits this long; generous, because the attack shares its event loop
with the simulated plant, and a busy host must not turn an open port into "no answer"."""
ANSWER_TIMEOUT = 2.0
"""Seconds a Modbus request of an attack waits for its answer (the plant's HMI waits as long)."""
DRIFT_TICK = 0.1
"""Real seconds between two settings of a drifting sensor's bias (the live physics' own tick)."""


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the plant's services are: each PLC's Modbus port, the console, the MQTT broker."""

    modbus_ports: dict[str, int]
    console: tuple[str, int] = ("127.0.0.1", 8000)
    broker: tuple[str, int] = ("127.0.0.1", 1883)
    gateway: tuple[str, int] | None = None
    """A Modbus/TCP security gateway in front of the PLCs: Modbus sessions go to it (each request
    to its PLC's unit id, which the gateway routes by) instead of to the PLCs."""

    @classmethod
    def on_port(
        cls,
        plant: Plant,
        port: int,
        console: tuple[str, int],
        broker: tuple[str, int],
        gateway: tuple[str, int] | None = None,
    ) -> Targets:
        """Every PLC of `plant` on the same Modbus `port` (as `plantwarden sim run` serves them)."""
        return cls({plc.name: port for plc in plant.plcs}, console, broker, gateway)

    def port_at(self, plant: Plant, address: str, port: int) -> int:
        """The port a probe of `port` at `address` reaches: a PLC's Modbus port where it serves."""
        if port != MODBUS_PORT:
            return port
        for plc in plant.plcs:
            if plc.host.address == address and plc.name in self.modbus_ports:
                return self.modbus_ports[plc.name]
        return port


class LiveAttack:
    """One run of a scenario against the live plant."""

    def __init__(
        self,
        plant: Plant,
        scenario: Scenario,
        targets: Targets,
        *,
        tap: Tap | None = None,
        simulation: PlantSimulation | None = None,
        seed: int = 1,
        pause_scale: float = 1.0,
    ) -> None:
        self.plant = plant
        self.pause_scale = pause_scale
        self.scenario = scenario
        self.targets = targets
        self.tap = tap
        self.simulation = simulation
        self.rng = random.Random(f"{seed}:live-attack:{scenario.name}")  # noqa: S311 - not secrets
        self.actions: list[dict[str, Any]] = []

    async def run(self) -> dict[str, Any]:
        """Carry out every step; the record of what was done."""
        started = time.time()
        for step in self.scenario.build(self.plant, self.rng):
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds * self.pause_scale)
            elif isinstance(step, Probe):
                await self._probe(step)
            elif isinstance(step, ModbusSession):
                await self._modbus(step)
            elif isinstance(step, LoginAttempts):
                await self._logins(step)
            elif isinstance(step, SensorDrift):
                await self._drift(step)
            else:
                await self._forge(step)
        return {
            "attack": self.scenario.name,
            "technique": self.scenario.technique,
            "description": self.scenario.description,
            "start": round(started, 6),
            "end": round(time.time(), 6),
            "actions": self.actions,
        }

    def _note(self, source: str, target: str, action: str, result: str) -> None:
        self.actions.append(
            {
                "time": round(time.time(), 6),
                "source": source,
                "target": target,
                "action": action,
                "result": result,
            }
        )

    def _source(self, host: str) -> str:
        return self.plant.host(host).address

    async def _probe(self, step: Probe) -> None:
        port = self.targets.port_at(self.plant, step.address, step.port)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                _, writer = await asyncio.open_connection(
                    step.address, port, local_addr=(self._source(step.source), 0)
                )
        except TimeoutError:
            result = "no answer"
        except OSError:
            result = "closed"
        else:
            result = "open"
            local = writer.get_extra_info("sockname")
            if self.tap is not None:
                self.tap.opened((local[0], local[1]), (step.address, port))
                self.tap.closed((local[0], local[1]), (step.address, port))
            writer.close()
        if self.tap is not None and result != "open":
            self.tap.refused((self._source(step.source), 40000 + len(self.actions)), (step.address, port))
        self._note(step.source, f"{step.address}:{port}", "probe", result)

    async def _modbus(self, step: ModbusSession) -> None:
        plc = self.plant.plc(step.plc)
        host, port = self.targets.gateway or (plc.host.address, self.targets.modbus_ports[plc.name])
        target = (
            f"{host}:{port}" if self.targets.gateway is None else f"gateway {host}:{port} unit {plc.unit_id}"
        )
        try:
            connection = await LiveConnection.open(self._source(step.source), host, port, self.tap)
        except Unreachable as error:
            self._note(step.source, target, "connect", error.message)
            return
        async with connection:
            client = LiveModbusClient(connection, plc.unit_id, self.rng.randrange(0x10000))
            for request in step.requests:
                action = f"{request.name} at {request.address} {list(request.values)}"
                try:
                    answer = await client.call(request, timeout=ANSWER_TIMEOUT)
                except (PeerClosed, ConnectionError):  # the peer closed the session (a security
                    # gateway refuses a client it knows no role for at connect): the attack's record
                    # says so; the session's other requests cannot be sent
                    peer = "PLC" if self.targets.gateway is None else "gateway"
                    closed = f"connection closed by the {peer}"
                    self._note(step.source, f"{plc.name} ({target})", action, closed)
                    return
                result = "no answer" if answer is None else _answer_text(answer)
                self._note(step.source, f"{plc.name} ({target})", action, result)

    async def _logins(self, step: LoginAttempts) -> None:
        host, port = self.targets.console
        where = f"{host}:{port}"
        try:
            connection = await LiveConnection.open(self._source(step.source), host, port, self.tap)
        except Unreachable as error:
            self._note(step.source, where, "connect", error.message)
            return
        async with connection:
            status, headers, _ = await http_exchange(connection, http_request("GET", "/login", where))
            csrf = _cookie(headers.get("set-cookie", ""), "pw_login_csrf")
            for password in step.passwords:
                body = (
                    f"username={quote(step.username)}&password={quote(password)}&csrf_token={csrf}&next=%2F"
                )
                headers_out = (
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Cookie", f"pw_login_csrf={csrf}"),
                )
                request = http_request("POST", "/login", where, headers_out, body.encode())
                status, _, _ = await http_exchange(connection, request)
                self._note(step.source, where, f"login as {step.username!r}", str(status))

    async def _forge(self, step: TelemetryForgery) -> None:
        plc = self.plant.plc(step.plc)
        host, port = self.targets.broker
        values = {r.name: 0.0 for r in plc.registers if r.kind == "input"}
        if self.simulation is not None:
            values = telemetry_values(plc, self.simulation.model(plc.name).values())
        values.update(step.changes)
        payload = telemetry_payload(plc.name, 1, time.time(), values, self.rng.randbytes(32))
        try:
            async with await LiveConnection.open(
                self._source(step.source), host, port, self.tap
            ) as connection:
                await mqtt_session(connection, mqtt_client_id(self.plant, plc))
                await connection.send(mqtt.publish(telemetry_topic(self.plant, plc), payload))
                await connection.send(mqtt.disconnect())
        except (PlantwardenError, ConnectionError, TimeoutError) as error:
            self._note(step.source, f"{host}:{port}", "publish", f"failed: {error}")
            return
        self._note(step.source, f"{host}:{port}", f"publish as {plc.name}", f"sent {step.changes}")

    async def _drift(self, step: SensorDrift) -> None:
        action = f"report {step.variable} drifting by {step.rate_per_second:g}/s for {step.seconds:g} s"
        if self.simulation is None:
            self._note(step.plc, step.plc, action, "not carried out: only the running plant can do it")
            return
        model = self.simulation.model(step.plc)
        model.set_bias(step.variable, 0.0)  # refuses what is no measurement
        begun = model.elapsed
        self._note(step.plc, step.plc, action, "started")
        final = 0.0
        try:
            while model.elapsed - begun < step.seconds:
                final = step.offset(model.elapsed - begun)
                model.set_bias(step.variable, final)
                await asyncio.sleep(DRIFT_TICK)
        finally:
            model.set_bias(step.variable, 0.0)
        self._note(step.plc, step.plc, f"report {step.variable} true again", f"was {final:+.6g} off")


def _answer_text(answer: Any) -> str:
    if answer.exception_code is not None:
        return f"exception {answer.exception_code}"
    return f"answered {list(answer.values)}" if answer.values else "answered"


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""
