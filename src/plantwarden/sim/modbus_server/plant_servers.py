"""All the PLCs' Modbus/TCP servers of a simulation, and the task that steps its physics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from types import TracebackType

from plantwarden.core.errors import Conflict, InvalidInput, NotFound
from plantwarden.sim.modbus_server.datastore import WriteObserver
from plantwarden.sim.modbus_server.plc_server import PlcServer
from plantwarden.sim.modbus_server.ports import resolve_port
from plantwarden.sim.physics import PlantSimulation

log = logging.getLogger(__name__)


class PlantServers:
    """One `PlcServer` per PLC of the simulation, and the task stepping the physics.

    `port` None means 502 when it can be bound, else 5020 (logged); 0 lets the system choose a
    port per PLC (`server(name).port` says which). Every `tick` real seconds the simulation
    advances by the real time elapsed times `speed`.
    """

    def __init__(
        self,
        simulation: PlantSimulation,
        *,
        port: int | None = None,
        tick: float = 0.1,
        speed: float = 1.0,
        on_write: WriteObserver | None = None,
        plcs: Iterable[str] | None = None,
    ) -> None:
        _check_positive("tick", tick)
        _check_positive("speed", speed)
        self.simulation = simulation
        self.tick = tick
        self.speed = speed
        chosen = [simulation.plant.plc(name) for name in plcs] if plcs is not None else simulation.plant.plcs
        self.port = resolve_port(port, chosen[0].host.address) if chosen else 0
        self.servers = {
            plc.name: PlcServer(plc, simulation.model(plc.name), port=self.port, on_write=on_write)
            for plc in chosen
        }
        self._physics: asyncio.Task[None] | None = None

    def server(self, plc_name: str) -> PlcServer:
        """The server of the PLC called `plc_name`; NotFound if it is not served."""
        if plc_name not in self.servers:
            raise NotFound(f"PLC {plc_name!r} is not served")
        return self.servers[plc_name]

    def endpoints(self) -> dict[str, tuple[str, int]]:
        """Each served PLC's (address, port)."""
        return {name: (server.address, server.port) for name, server in self.servers.items()}

    async def start(self) -> None:
        """Start every server, then the physics; on a failure, stop what started and raise."""
        if self._physics is not None:
            raise Conflict("the plant's Modbus servers are already running")
        try:
            for server in self.servers.values():
                await server.start()
        except BaseException:
            await self.stop()
            raise
        self._physics = asyncio.create_task(self._run_physics(), name="plant physics")

    async def stop(self) -> None:
        """Stop the physics and every server."""
        physics, self._physics = self._physics, None
        if physics is not None:
            physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await physics
        for server in self.servers.values():
            await server.stop()

    async def __aenter__(self) -> PlantServers:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def _run_physics(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self._step((now - last) * self.speed)
            last = now

    def _step(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            self.simulation.step(seconds)
        except Exception:
            log.exception("the physics failed: the PLCs keep their last values until stopped")
            raise


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name} must be a positive number, not {value!r}")
