"""What a baseline fact is about, named as an engineer reads it (`alerting` writes alerts with it).

Addresses become the plant model's asset ids ("plc-1 (10.2.0.10)"), protocol and transport
numbers their names, Modbus function codes their names, and a written register its entry of the
asset's register map with its engineering value: the raw word divided by the register's scale, as
`rules.setpoints` judges a write against `Register.safe_range` (engineering units) and
`monitoring.register_map` decodes telemetry. Only 16-bit holding registers get an engineering
value: a write's first word of a 32-bit register is half of it, and coil writes have no scale
(a setpoint or written-range fact's `table` says which was written; `alerting` names only holding
registers from the register map). A polled address is named from the map of the space its Modbus
read function reads (`read_kind`): coils, discrete inputs, holding or input registers.

Without a plant model (or for a site it does not declare) everything is named by its number.
An address that two assets of a site declare (the same subnet behind NAT on two segments) keeps
its bare address: a fact does not say which segment it was seen on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantwarden.core.records.schema import Protocol
from plantwarden.monitoring.register_map import FUNCTIONS, READ_TABLE
from plantwarden.monitoring.register_map import TABLES as REGISTER_KINDS
from plantwarden.zones.plant.model import Asset, Register, SiteModel

PROTOCOL_NAMES: dict[int, str] = {
    Protocol.UNKNOWN: "unrecognised protocol",
    Protocol.MODBUS: "Modbus",
    Protocol.S7COMM: "S7comm",
    Protocol.DNP3: "DNP3",
    Protocol.ENIP: "EtherNet/IP",
    Protocol.IEC104: "IEC 60870-5-104",
    Protocol.OPCUA: "OPC UA",
    Protocol.MQTT: "MQTT",
    Protocol.BACNET: "BACnet",
    Protocol.PROFINET_DCP: "PROFINET DCP",
}
TRANSPORT_NAMES: dict[int, str] = {0: "layer 2", 6: "TCP", 17: "UDP"}
"""IP protocol numbers (the records plane's `transport`)."""
MODBUS_FUNCTIONS: dict[int, str] = {
    1: "read coils",
    2: "read discrete inputs",
    3: "read holding registers",
    4: "read input registers",
    5: "write single coil",
    6: "write single register",
    7: "read exception status",
    8: "diagnostics",
    11: "get comm event counter",
    12: "get comm event log",
    15: "write multiple coils",
    16: "write multiple registers",
    17: "report server id",
    20: "read file record",
    21: "write file record",
    22: "mask write register",
    23: "read/write multiple registers",
    24: "read FIFO queue",
    43: "encapsulated interface, read device identification",
    90: "Schneider UMAS, programming",
}
"""Modbus Application Protocol V1.1b3 (and Schneider's UMAS, 90)."""
NAMES_PER_RANGE = 4
REGISTER_WORDS: dict[str, str] = {
    "coil": "coil",
    "discrete": "discrete input",
    "holding": "holding register",
    "input": "input register",
}
"""The register map's kinds (`Register.kind`), as an alert names one of their addresses."""


def protocol_name(code: int) -> str:
    return PROTOCOL_NAMES.get(code, f"protocol {code}")


def transport_name(code: int) -> str:
    return TRANSPORT_NAMES.get(code, f"IP protocol {code}")


def function_name(protocol: int, code: int) -> str:
    """`function 3 (read holding registers)` for Modbus, `function N` otherwise."""
    name = MODBUS_FUNCTIONS.get(code) if protocol == Protocol.MODBUS else None
    return f"function {code}" + (f" ({name})" if name else "")


def read_kind(protocol: int, code: int) -> str | None:
    """The register map kind (`Register.kind`) a Modbus read function reads, as the sensor's
    register telemetry decodes it (`monitoring.register_map.READ_TABLE`): 1 coils, 2 discrete
    inputs, 3 and 23 (its read part) holding registers, 4 input registers; None for another
    function or protocol."""
    if protocol != Protocol.MODBUS or not 0 <= code < FUNCTIONS or READ_TABLE[code] < 0:
        return None
    return REGISTER_KINDS[int(READ_TABLE[code])]


def number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A written value of a known register, in engineering units when the register's type says
    how to decode its word (None otherwise)."""

    register: Register
    asset: str

    def value(self, raw: float) -> float | None:
        """The engineering value of a raw word written at the register's first address."""
        if self.register.kind != "holding" or not self.register.scale:
            return None
        if self.register.type == "uint16" and 0 <= raw <= 0xFFFF:
            return raw / self.register.scale
        if self.register.type == "int16" and 0 <= raw <= 0xFFFF:
            return (raw - 0x10000 if raw >= 0x8000 else raw) / self.register.scale
        return None

    def span(self, low: float, high: float) -> str | None:
        """`12 to 14 bar` for raw words from `low` to `high`; None when not decodable, or when
        the raw span crosses the sign of an int16 (its ends are then not the least and greatest)."""
        first, last = self.value(low), self.value(high)
        if first is None or last is None:
            return None
        if self.register.type == "int16" and low < 0x8000 <= high:
            return None
        return f"{range_text(first, last)}{self.unit}"

    @property
    def unit(self) -> str:
        return f" {self.register.unit}" if self.register.unit else ""

    @property
    def label(self) -> str:
        return f"{self.asset} {self.register.name}"


def range_text(low: float, high: float) -> str:
    low, high = min(low, high), max(low, high)
    return number(low) if low == high else f"{number(low)} to {number(high)}"


class PlantNames:
    """Asset ids by address and register maps, per site of a plant model."""

    def __init__(self, sites: Sequence[SiteModel] = ()) -> None:
        self.assets: dict[tuple[str, str], list[Asset]] = {}
        for site in sites:
            for asset in site.assets:
                for host in asset.addresses:
                    self.assets.setdefault((site.id, str(host)), []).append(asset)

    def asset_id(self, site: str, address: str) -> str | None:
        """The id of the one asset declaring `address` at `site`, else None."""
        found = {asset.id for asset in self.assets.get((site, address), [])}
        return found.pop() if len(found) == 1 else None

    def host(self, site: str, address: str) -> str:
        """`plc-1 (10.2.0.10)`, or the bare address."""
        found = self.asset_id(site, address)
        return f"{found} ({address})" if found is not None else address

    def asset(self, site: str, address: str) -> str:
        """What the alert's `assets` holds: the asset id, else the address."""
        return self.asset_id(site, address) or address

    def _owner(self, site: str, address: str, unit: int) -> Asset | None:
        """The asset that answers at `address` for `unit`: the one naming that unit id, else the
        one naming none, else the only one there."""
        found = self.assets.get((site, address), [])
        for wanted in (unit, None):
            for asset in found:
                if asset.unit_id == wanted:
                    return asset
        return found[0] if len({a.id for a in found}) == 1 else None

    def registers(self, kind: str, site: str, address: str, unit: int, low: int, high: int) -> list[Register]:
        """The registers of `kind` (`Register.kind`: holding, input, coil, discrete) of the asset at
        `address` and `unit` that `[low, high]` touches."""
        owner = self._owner(site, address, unit)
        if owner is None:
            return []
        touched = [r for r in owner.registers if r.kind == kind and r.address <= high and low <= r.last]
        return sorted(touched, key=lambda r: r.address)

    def setpoint(self, site: str, address: str, unit: int, register: int) -> Setpoint | None:
        """The holding register that starts at `register` (a setpoint fact's write), if declared."""
        owner = self._owner(site, address, unit)
        if owner is None:
            return None
        for known in owner.registers:
            if known.kind == "holding" and known.address == register:
                return Setpoint(known, owner.id)
        return None

    def covered(self, site: str, address: str, unit: int, ranges: Sequence[Sequence[int]]) -> str:
        """`100-104 (speed, mode), 300`: register ranges with the names of the holding registers in
        them."""
        shown = []
        for low, high in ranges[:10]:
            text = f"{low}-{high}" if low != high else f"{low}"
            names = [r.name for r in self.registers("holding", site, address, unit, int(low), int(high))]
            if names:
                more = ", ..." if len(names) > NAMES_PER_RANGE else ""
                text += f" ({', '.join(names[:NAMES_PER_RANGE])}{more})"
            shown.append(text)
        return ", ".join(shown) + (", ..." if len(ranges) > 10 else "")
