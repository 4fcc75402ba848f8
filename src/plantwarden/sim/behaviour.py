"""What the plant's hosts do on the network, as data that the traffic generator and the live plant
both act on: the HMI's poll, the historian's, the engineer's setpoint changes, the devices'
telemetry, and each PLC's identity.

Periods and ports are those of the default plant. Telemetry is a JSON document with an HMAC-SHA256
tag under a per-device key derived from the seed (a stand-in until devices carry certificates),
so a receiver can tell a device's own message from a tampered one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass

from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.encoding import encode
from plantwarden.sim.plant import Plant, Plc, Register

MODBUS_PORT = 502
MQTT_PORT = 1883
CONSOLE_PORT = 8000
DNS_PORT = 53
NTP_PORT = 123
HMI_POLL_PERIOD = 1.0
HISTORIAN_PERIOD = 5.0
TELEMETRY_PERIOD = 10.0
ENGINEERING_MEAN_GAP = 900.0
"""Seconds between the engineer's setpoint changes, on average."""

READ_FUNCTION = {
    "coil": modbus.READ_COILS,
    "discrete": modbus.READ_DISCRETE_INPUTS,
    "holding": modbus.READ_HOLDING_REGISTERS,
    "input": modbus.READ_INPUT_REGISTERS,
}
PRODUCT = {
    "tank": ("PW-TANK", "Simulated tank controller"),
    "conveyor": ("PW-CONV", "Simulated conveyor controller"),
    "pump_skid": ("PW-PUMP", "Simulated pump skid controller"),
    "mixer": ("PW-MIX", "Simulated batch mixer controller"),
    "boiler": ("PW-BOIL", "Simulated boiler controller"),
}
VENDOR = "Plantwarden Sim"
REVISION = "1.4.2"


@dataclass(frozen=True, slots=True)
class Block:
    """A run of consecutive addresses of one register table, read with one request."""

    kind: str
    address: int
    count: int

    def request(self) -> modbus.Request:
        """The read request for the whole run."""
        return modbus.read(READ_FUNCTION[self.kind], self.address, self.count)


def register_blocks(
    plc: Plc, kinds: tuple[str, ...] = ("holding", "input", "coil", "discrete")
) -> list[Block]:
    """The PLC's register map as runs of consecutive addresses, table by table, in address order."""
    blocks: list[Block] = []
    for kind in kinds:
        addresses = sorted(
            a for register in plc.registers if register.kind == kind for a in register.addresses
        )
        start = previous = None
        for address in addresses:
            if start is None or previous is None or address != previous + 1:
                if start is not None and previous is not None:
                    blocks.append(Block(kind, start, previous - start + 1))
                start = address
            previous = address
        if start is not None and previous is not None:
            blocks.append(Block(kind, start, previous - start + 1))
    return blocks


def hmi_poll(plc: Plc) -> list[modbus.Request]:
    """One HMI poll cycle of a PLC: every table read, one request per run of addresses."""
    return [block.request() for block in register_blocks(plc)]


def historian_poll(plc: Plc) -> list[modbus.Request]:
    """One historian poll of a PLC: its measurements (input registers)."""
    return [block.request() for block in register_blocks(plc, ("input",))]


def image_tables(plc: Plc, image: dict[int, int]) -> dict[str, dict[int, int]]:
    """A PLC's raw register image split into its tables (holding, input, coil, discrete)."""
    tables: dict[str, dict[int, int]] = {kind: {} for kind in READ_FUNCTION}
    for register in plc.registers:
        table = tables[register.kind]
        for address in register.addresses:
            table[address] = image[address]
    return tables


def identity(plc: Plc) -> list[tuple[int, str]]:
    """The objects a PLC answers read device identification (43/14) with, basic and regular."""
    code, name = PRODUCT[plc.process]
    return [
        (0x00, VENDOR),
        (0x01, code),
        (0x02, REVISION),
        (0x03, "https://plantwarden.invalid/sim"),
        (0x04, name),
        (0x05, f"{code}-{plc.unit_id:03d}"),
        (0x06, plc.name),
    ]


def write_requests(register: Register, value: float) -> list[modbus.Request]:
    """The requests that write `value` into `register`: one coil, one word, or two words at once."""
    words = encode(register, value)
    if register.kind == "coil":
        return [modbus.write_single(modbus.WRITE_SINGLE_COIL, register.address, words[0])]
    if len(words) == 1:
        return [modbus.write_single(modbus.WRITE_SINGLE_REGISTER, register.address, words[0])]
    return [modbus.write_multiple(modbus.WRITE_MULTIPLE_REGISTERS, register.address, words)]


@dataclass(frozen=True, slots=True)
class SetpointChange:
    """An engineer's change: the register, its new value, and the requests (writes, then read-back)."""

    plc: str
    register: Register
    value: float
    requests: tuple[modbus.Request, ...]


def engineering_change(plc: Plc, rng: random.Random) -> SetpointChange:
    """A setpoint change inside the safe range of a holding register the engineer may write."""
    candidates = [r for r in plc.registers if r.kind == "holding" and "engineer" in r.writable_by]
    register = rng.choice(candidates)
    low = register.safe_min if register.safe_min is not None else 0.0
    high = register.safe_max if register.safe_max is not None else low + 100.0
    value = round(rng.uniform(low + (high - low) * 0.1, high - (high - low) * 0.1), 1)
    read_back = modbus.read(modbus.READ_HOLDING_REGISTERS, register.address, register.width)
    return SetpointChange(plc.name, register, value, (*write_requests(register, value), read_back))


def telemetry_topic(plant: Plant, plc: Plc) -> str:
    """The MQTT topic a PLC publishes its telemetry on: site/zone/device/telemetry."""
    return f"{plant.site}/{plc.host.zone}/{plc.name}/telemetry"


def mqtt_client_id(plant: Plant, plc: Plc) -> str:
    """The MQTT client id a PLC connects with: its site and name (a broker serves one per id)."""
    return f"{plant.site}.{plc.name}"


def device_key(seed: int, device: str) -> bytes:
    """The telemetry key of one device in a plant run with `seed`."""
    return hashlib.sha256(f"plantwarden-sim:{seed}:{device}".encode()).digest()


def telemetry_payload(device: str, sequence: int, time: float, values: dict[str, float], key: bytes) -> bytes:
    """A telemetry message: device, sequence number, time, values, and the HMAC of all of them."""
    body = {"device": device, "seq": sequence, "ts": round(time, 3), "values": values}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["mac"] = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def verify_telemetry(payload: bytes, key: bytes) -> bool:
    """Whether a telemetry message carries the right tag for its contents under `key`."""
    try:
        body = json.loads(payload)
        tag = body.pop("mac")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return isinstance(tag, str) and hmac.compare_digest(
        tag, hmac.new(key, canonical, hashlib.sha256).hexdigest()
    )


def telemetry_values(plc: Plc, values: dict[str, float]) -> dict[str, float]:
    """The measurements a device reports: its input registers, rounded to what the sensor resolves."""
    return {r.name: round(values[r.name], 3) for r in plc.registers if r.kind == "input"}
