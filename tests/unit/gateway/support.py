"""Shared by the gateway tests: a plant model with one PLC and its register map, and helpers."""

from __future__ import annotations

import struct

from plantwarden.gateway.state import GatewayState, build_state
from plantwarden.policy.roles import builtin_model
from plantwarden.zones.plant.load import load_plant_bytes
from plantwarden.zones.plant.model import PlantModel

SITE = "plant-a"
PLANT = """\
version: 1
sites:
  - id: plant-a
    zones:
      - {id: cell-1, purdue_level: 1, subnets: [127.0.0.0/8], security_level: 2}
    assets:
      - id: plc-1
        address: 127.0.0.1
        unit_id: 1
        gateway_only: true
        registers:
          - {address: 0, name: level_setpoint, kind: holding, type: uint16, unit: "%", scale: 10,
             safe_range: [50, 95], writers: [engineer]}
          - {address: 2, name: flow_limit, kind: holding, type: float32, word_order: little,
             safe_range: [0, 12.5], writers: [engineer]}
          - {address: 4, name: offset, kind: holding, type: int16, safe_range: [-100, 100],
             writers: [engineer]}
          - {address: 5, name: speed, kind: holding, type: uint16, writers: [engineer]}
          - {address: 10, name: pump_run, kind: coil, type: bool, writers: [engineer]}
          - {address: 20, name: level, kind: input, type: float32}
    rights:
      - {role: operator, zones: [cell-1], operations: ["modbus.read", "modbus.identify"]}
      - {role: engineer, zones: [cell-1], operations: ["modbus.read", "modbus.identify", "modbus.write"]}
    bindings:
      - {address: 127.0.0.1, role: operator, zone: cell-1, description: the test client}
"""


def plant(text: str = PLANT) -> PlantModel:
    return load_plant_bytes(text.encode(), "plant.yaml")


def state(upstream: tuple[str, int] = ("127.0.0.1", 502), text: str = PLANT) -> GatewayState:
    return build_state(builtin_model([]), plant(text), SITE, {"plc-1": upstream})


def adu(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", transaction_id, 0, len(pdu) + 1, unit_id) + pdu


def read_holding(address: int, quantity: int) -> bytes:
    return struct.pack(">BHH", 3, address, quantity)


def write_register(address: int, value: int) -> bytes:
    return struct.pack(">BHH", 6, address, value)


def write_registers(address: int, values: list[int]) -> bytes:
    return struct.pack(f">BHHB{len(values)}H", 16, address, len(values), 2 * len(values), *values)


def float_words_little(value: float) -> list[int]:
    """A float32 as two registers, low word first (word order little)."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [low, high]
