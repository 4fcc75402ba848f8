"""The state one generation shares: the plant, its physics, the network and the output.

The PLCs answer from their register image, refreshed every simulated second and after every
write; writes change the process (the physics model), and diagnostics 0x0004 puts a PLC in
listen-only mode until a restart (0x0001), as the Modbus specification describes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from plantwarden.core.errors import InvalidInput
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.behaviour import identity, image_tables
from plantwarden.sim.physics import PlantSimulation
from plantwarden.sim.plant import Plant
from plantwarden.sim.traffic.network import Network
from plantwarden.sim.traffic.output import Output

PHYSICS_STEP = 1.0
PLC_DELAY = (0.002, 0.012)
"""Seconds a PLC takes to answer (its scan cycle), uniformly drawn."""


class Run:
    """Everything the talkers of one generation share."""

    def __init__(self, plant: Plant, seed: int, out: Output, start: float) -> None:
        self.plant = plant
        self.seed = seed
        self.out = out
        self.start = start
        self.simulation = PlantSimulation(plant, seed)
        self.network = Network(plant, self.rng("network"))
        self.listen_only: set[str] = set()
        self.tables = {plc.name: self._tables(plc.name) for plc in plant.plcs}
        self.identities = {plc.name: identity(plc) for plc in plant.plcs}

    def rng(self, name: str) -> random.Random:
        """The random stream of one part of the run: the same seed and name give the same stream."""
        return random.Random(f"{self.seed}:traffic:{name}")  # noqa: S311 - reproducible traffic, not secrets

    def _tables(self, plc: str) -> dict[str, dict[int, int]]:
        return image_tables(self.plant.plc(plc), self.simulation.model(plc).registers())

    def step_physics(self) -> None:
        """Advance the process one step and refresh every PLC's register image."""
        self.simulation.step(PHYSICS_STEP)
        for name in self.tables:
            self.tables[name] = self._tables(name)

    def rtt(self, source: str, destination: str) -> float:
        """The round-trip time between two hosts at the first one's span port."""
        hops = self.network.route(source, destination).hops_back
        return 0.0002 if hops == 0 else 0.0006 if hops == 1 else 0.02

    def plc_delay(self, rng: random.Random) -> float:
        """How long a PLC takes to answer."""
        return rng.uniform(*PLC_DELAY)

    def answer(self, plc: str, request: modbus.Request) -> bytes | None:
        """The PDU PLC `plc` answers `request` with (None: no answer), changing the process for writes."""
        if request.function_code == modbus.DIAGNOSTICS:
            return self._diagnostics(plc, request)
        if plc in self.listen_only:
            return None
        pdu = modbus.response_pdu(request, self.tables[plc], self.identities[plc])
        if request.is_write and not pdu[0] & 0x80:
            pdu = self._write(plc, request, pdu)
        return pdu

    def _diagnostics(self, plc: str, request: modbus.Request) -> bytes | None:
        was_listening_only = plc in self.listen_only
        if request.sub_function == modbus.FORCE_LISTEN_ONLY_MODE:
            self.listen_only.add(plc)
            return None
        if request.sub_function == modbus.RESTART_COMMUNICATIONS:
            self.listen_only.discard(plc)
        if was_listening_only:
            return None
        return modbus.response_pdu(request, self.tables[plc], self.identities[plc])

    def _write(self, plc: str, request: modbus.Request, echo: bytes) -> bytes:
        model = self.simulation.model(plc)
        try:
            for address, value in _written(request):
                model.write(address, value)
        except InvalidInput:
            return modbus.exception_pdu(request.function_code, modbus.ILLEGAL_DATA_ADDRESS)
        finally:
            self.tables[plc] = self._tables(plc)
        return echo


def _written(request: modbus.Request) -> Iterable[tuple[int, int]]:
    return ((request.address + offset, value) for offset, value in enumerate(request.values))
