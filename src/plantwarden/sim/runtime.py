"""The running plant: its PLCs as Modbus/TCP servers, and the hosts that talk to them.

The HMI polls every PLC each `poll_period` (now and then pipelining a cycle's requests in one
segment), the historian reads measurements every five poll periods, the engineering workstation
changes a setpoint inside its safe range now and then, and every PLC publishes its measurements
to an MQTT broker. Each client connects from its host's own loopback address, and everything the
clients send and receive goes to the software tap when there is one. A client whose peer is down
retries; a broker that cannot be reached only turns telemetry off, with a warning (one while it
stays away, whichever PLC finds it first).

Attacks (`run_attack`) run inside the plant process when asked through its control socket, so
that the tap shows them too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from plantwarden.core.errors import PlantwardenError
from plantwarden.sim import mqtt
from plantwarden.sim.behaviour import (
    ENGINEERING_MEAN_GAP,
    device_key,
    engineering_change,
    historian_poll,
    hmi_poll,
    mqtt_client_id,
    telemetry_payload,
    telemetry_topic,
    telemetry_values,
)
from plantwarden.sim.live_net import LiveConnection, LiveModbusClient, mqtt_session
from plantwarden.sim.modbus_server import PlantServers
from plantwarden.sim.physics import PlantSimulation
from plantwarden.sim.plant import Plant, Plc
from plantwarden.sim.tap import Tap

log = logging.getLogger(__name__)
PIPELINE_RATE = 0.3
RETRY_SECONDS = 2.0
BROKER_RETRY_SECONDS = 5.0
BROKER_GRACE_SECONDS = 30.0
"""How long after the plant starts a broker that does not answer yet is waited for, said at INFO
(the demo starts the broker beside the plant), before it is a warning."""
STOP_GRACE = 2.0
"""Seconds a client has to end after it is cancelled before it is cancelled again."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """How the plant runs: Modbus port (None: 502 if allowed, else 5020), pace, broker, engineering."""

    seed: int = 1
    port: int | None = None
    speed: float = 1.0
    poll_period: float = 1.0
    telemetry_period: float = 10.0
    broker: tuple[str, int] | None = ("127.0.0.1", 1883)
    engineering_gap: float = ENGINEERING_MEAN_GAP


class LivePlant:
    """The plant's servers and clients as asyncio tasks; `start()`, then `stop()`."""

    def __init__(self, plant: Plant, options: LiveOptions, tap: Tap | None = None) -> None:
        self.plant = plant
        self.options = options
        self.tap = tap
        self.simulation = PlantSimulation(plant, options.seed)
        self.writes: list[dict[str, Any]] = []
        self.servers = PlantServers(
            self.simulation, port=options.port, speed=options.speed, on_write=self._written
        )
        self.counters = {"polls": 0, "unanswered": 0, "setpoint_changes": 0, "telemetry": 0}
        self._tasks: list[asyncio.Task[None]] = []
        self._broker = "unknown"
        """Telemetry's view of the broker: "unknown" (not tried), "up", "waiting" (never reached,
        the plant just started: the demo starts the broker beside it) or "down". One line for the
        plant while the broker is away, not one per PLC and retry."""
        self._broker_reached = False
        self._started = time.monotonic()

    def _written(self, plc: str, address: int, values: tuple[int, ...], client: Any) -> None:
        self.writes.append({"plc": plc, "address": address, "values": list(values), "client": str(client)})

    def rng(self, name: str) -> random.Random:
        """The random stream of one client of the plant."""
        return random.Random(f"{self.options.seed}:live:{name}")  # noqa: S311 - behaviour, not secrets

    def endpoint(self, plc: str) -> tuple[str, int]:
        """Where a PLC's Modbus server listens."""
        return self.servers.endpoints()[plc]

    async def start(self) -> None:
        """Start the servers, then every client."""
        await self.servers.start()
        for plc in self.plant.plcs:
            self._spawn(f"hmi {plc.name}", self._poll("hmi-1", plc, hmi_poll(plc), 1, PIPELINE_RATE))
            self._spawn(f"historian {plc.name}", self._poll("historian-1", plc, historian_poll(plc), 5, 0))
            if self.options.broker is not None:
                self._spawn(f"telemetry {plc.name}", self._telemetry(plc))
        self._spawn("engineering", self._engineering())

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the plant's %s client failed", name)

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop(self) -> None:
        """Stop every client, then the servers."""
        pending, self._tasks = set(self._tasks), []
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in pending:  # a cancellation that was swallowed: ask again
                log.warning("the plant's %s client runs on after a stop; cancelling again", task.get_name())
        await self.servers.stop()

    async def _connect(self, source: str, plc: Plc) -> LiveConnection:
        address, port = self.endpoint(plc.name)
        while True:
            try:
                return await LiveConnection.open(self.plant.host(source).address, address, port, self.tap)
            except PlantwardenError as error:
                log.warning("%s cannot reach %s: %s; retrying", source, plc.name, error.message)
                await asyncio.sleep(RETRY_SECONDS)

    async def _poll(
        self, source: str, plc: Plc, requests: list[Any], periods: int, pipeline_rate: float
    ) -> None:
        rng = self.rng(f"{source}:{plc.name}")
        period = self.options.poll_period * periods
        while True:
            connection = await self._connect(source, plc)
            client = LiveModbusClient(connection, plc.unit_id, rng.randrange(0x10000))
            try:
                while True:
                    await self._poll_once(client, requests, rng.random() < pipeline_rate)
                    await asyncio.sleep(period)
            except (ConnectionError, asyncio.IncompleteReadError, PlantwardenError) as error:
                log.warning("%s lost %s: %s; reconnecting", source, plc.name, error)
            finally:
                await connection.close()

    async def _poll_once(self, client: LiveModbusClient, requests: list[Any], pipelined: bool) -> None:
        if pipelined:
            answers = await client.pipeline(requests)
        else:
            answers = [await client.call(request) for request in requests]
        self.counters["polls"] += 1
        self.counters["unanswered"] += sum(answer is None for answer in answers)

    async def _engineering(self) -> None:
        rng = self.rng("eng-ws-1")
        candidates = [
            plc for plc in self.plant.plcs if any("engineer" in r.writable_by for r in plc.registers)
        ]
        while True:
            await asyncio.sleep(rng.expovariate(1 / self.options.engineering_gap))
            plc = rng.choice(candidates)
            change = engineering_change(plc, rng)
            async with await self._connect("eng-ws-1", plc) as connection:
                client = LiveModbusClient(connection, plc.unit_id, rng.randrange(0x10000))
                for request in change.requests:
                    await client.call(request)
            self.counters["setpoint_changes"] += 1
            log.info("engineer set %s %s to %s", plc.name, change.register.name, change.value)

    async def _telemetry(self, plc: Plc) -> None:
        assert self.options.broker is not None
        host, port = self.options.broker
        key, topic = device_key(self.options.seed, plc.name), telemetry_topic(self.plant, plc)
        sequence = 0
        while True:
            try:
                async with await LiveConnection.open(plc.host.address, host, port, self.tap) as connection:
                    await mqtt_session(connection, mqtt_client_id(self.plant, plc))
                    if self._broker in ("waiting", "down"):
                        log.info("telemetry reaches the MQTT broker at %s:%d", host, port)
                    self._broker, self._broker_reached = "up", True
                    while True:
                        sequence += 1
                        values = telemetry_values(plc, self.simulation.model(plc.name).values())
                        payload = telemetry_payload(plc.name, sequence, time.time(), values, key)
                        await connection.send(mqtt.publish(topic, payload))
                        self.counters["telemetry"] += 1
                        await asyncio.sleep(self.options.telemetry_period)
            except (PlantwardenError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as error:
                self._broker_off(plc, host, port, error)
                await asyncio.sleep(BROKER_RETRY_SECONDS)

    def _broker_off(self, plc: Plc, host: str, port: int, error: Exception) -> None:
        """Say once that telemetry is off: at INFO while a broker never reached may still be
        starting (for `BROKER_GRACE_SECONDS`), as a warning after that or once one was reached;
        every other failed try at DEBUG."""
        starting = not self._broker_reached and time.monotonic() - self._started < BROKER_GRACE_SECONDS
        if starting and self._broker != "waiting":
            self._broker = "waiting"
            log.info(
                "telemetry waits for the MQTT broker at %s:%d (%s); retrying every %.0f s",
                host,
                port,
                error,
                BROKER_RETRY_SECONDS,
            )
        elif starting or self._broker == "down":
            log.debug("telemetry of %s is off: %s", plc.name, error)
        else:
            self._broker = "down"
            log.warning(
                "telemetry of %s is off: %s; retrying every %.0f s", plc.name, error, BROKER_RETRY_SECONDS
            )
