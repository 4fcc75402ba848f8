"""Modbus/TCP servers for the simulated PLCs (pymodbus 3.16.1), backed by the physics models.

Each PLC listens on its own loopback address (Linux routes all of 127.0.0.0/8 to `lo`), and one
asyncio task steps the shared `PlantSimulation` with the real elapsed time, so a value read over
Modbus is the process value of that moment and a write takes effect on the model at once.

- `_pymodbus`: the only module that imports pymodbus (inside `warnings.catch_warnings()`).
- `datastore`: `PlcDatastore`, the register tables pymodbus reads and writes, on the model.
- `handler`: the per-connection handler; it frames the stream itself and answers every complete
  request in the order received (pymodbus's own loses pipelined requests).
- `plc_server`: `PlcServer`, one PLC: identity, unit id, listen-only mode (see `respond`).
- `plant_servers`: `PlantServers`, every PLC of a simulation and the physics task.
- `ports`, `client`, `answers`: the port chosen, a client for tests, the answers pymodbus gets wrong.

Identity (43/14) and the FC8 diagnostics live in pymodbus's process-wide `ModbusControlBlock`
singleton, so six servers in one process would share one identity and one listen-only flag.
`PlcServer.respond` therefore answers 43/14 (from `behaviour.identity`, as the traffic generator
does), the unit id check and listen-only mode per PLC.

Unit ids: only `plc.unit_id` is served; a request for another unit id gets exception 0x0B
(gateway target device failed to respond), at once, as a Modbus/TCP gateway would answer.

FC8 diagnostics:
- sub-function 4, Force Listen Only Mode: no answer; from then on the PLC answers nothing (and
  runs no request) until sub-function 1 arrives, which it obeys without answering (as the spec
  says). Requests received meanwhile stay unanswered; those received after are answered.
- sub-function 1, Restart Communications, outside listen-only mode: the echo pymodbus gives.
- sub-functions 0 (echo), 2, 3, 10-21: pymodbus's answers, from its process-wide control block
  (counters it never increments, so zeros). Any other sub-function: exception 1.
"""

from plantwarden.sim.modbus_server._pymodbus import AsyncModbusTcpClient, ExcCodes, ModbusException
from plantwarden.sim.modbus_server.client import modbus_client
from plantwarden.sim.modbus_server.datastore import PlcDatastore, WriteObserver
from plantwarden.sim.modbus_server.plant_servers import PlantServers
from plantwarden.sim.modbus_server.plc_server import PlcServer
from plantwarden.sim.modbus_server.ports import FALLBACK_PORT, MODBUS_PORT, resolve_port

__all__ = [
    "FALLBACK_PORT",
    "MODBUS_PORT",
    "AsyncModbusTcpClient",
    "ExcCodes",
    "ModbusException",
    "PlantServers",
    "PlcDatastore",
    "PlcServer",
    "WriteObserver",
    "modbus_client",
    "resolve_port",
]
