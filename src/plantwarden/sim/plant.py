"""The simulated plant as data: zones, hosts, PLCs and their register maps, validated at construction.

Every host has its own loopback address (127.x) inside its zone's subnet, so that zone checks mean
something on one machine. Register addresses form one space per PLC (a float32 takes two), so
`(plc, address)` names one register. `Plant.to_dict` gives plain data for a later plant.yaml.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from plantwarden.core.errors import InvalidInput, NotFound

HostRole = Literal["plc", "hmi", "engineering", "historian", "it", "device", "iot"]
"""`device` is network equipment (a switch); `iot` a sensor or gateway that publishes telemetry."""
RegisterKind = Literal["holding", "input", "coil", "discrete"]
RegisterType = Literal["uint16", "int16", "float32", "bool"]
ProcessKind = Literal["tank", "conveyor", "pump_skid", "mixer", "boiler"]

HOST_ROLES: tuple[str, ...] = get_args(HostRole)
REGISTER_KINDS: tuple[str, ...] = get_args(RegisterKind)
REGISTER_TYPES: tuple[str, ...] = get_args(RegisterType)
PROCESS_KINDS: tuple[str, ...] = get_args(ProcessKind)
WRITER_ROLES = ("operator", "engineer")
"""The roles that may write the plant (see `policy.roles`); a register lists those allowed to."""

RAW_RANGES = {"uint16": (0, 0xFFFF), "int16": (-0x8000, 0x7FFF), "bool": (0, 1)}
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
REGISTER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def _check_slug(kind: str, value: str) -> None:
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        raise InvalidInput(
            f"{kind} name {value!r} is not valid: use 1-63 lower-case letters, digits, hyphens"
        )


def _check_choice(kind: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInput(f"{kind} {value!r} is not one of {', '.join(choices)}")


@dataclass(frozen=True)
class Zone:
    """A network zone: one loopback subnet at one Purdue level."""

    name: str
    purdue_level: int
    subnet: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_slug("zone", self.name)
        if not isinstance(self.purdue_level, int) or not 0 <= self.purdue_level <= 5:
            raise InvalidInput(f"zone {self.name}: Purdue level {self.purdue_level!r} is not 0-5")
        try:
            network = ipaddress.IPv4Network(self.subnet)
        except ValueError as error:
            raise InvalidInput(f"zone {self.name}: subnet {self.subnet!r} is not valid ({error})") from error
        if not network.subnet_of(LOOPBACK):
            raise InvalidInput(f"zone {self.name}: subnet {self.subnet} is not inside 127.0.0.0/8")

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The zone's subnet, parsed."""
        return ipaddress.IPv4Network(self.subnet)


@dataclass(frozen=True)
class Host:
    """A machine of the plant with its own address in its zone's subnet."""

    name: str
    zone: str
    address: str
    role: HostRole

    def __post_init__(self) -> None:
        _check_slug("host", self.name)
        _check_choice(f"host {self.name}: role", self.role, HOST_ROLES)
        try:
            ipaddress.IPv4Address(self.address)
        except ValueError as error:
            raise InvalidInput(
                f"host {self.name}: address {self.address!r} is not an IPv4 address"
            ) from error

    @property
    def ip(self) -> ipaddress.IPv4Address:
        """The host's address, parsed."""
        return ipaddress.IPv4Address(self.address)


@dataclass(frozen=True)
class Register:
    """One entry of a PLC's register map; integer types hold `round(value * scale)`."""

    address: int
    name: str
    kind: RegisterKind
    type: RegisterType
    unit: str = ""
    safe_min: float | None = None
    safe_max: float | None = None
    writable_by: tuple[str, ...] = ()
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_register_shape(self)
        _check_writers(self)
        _check_safe_range(self)

    @property
    def width(self) -> int:
        """How many 16-bit registers (or bits) the value takes."""
        return 2 if self.type == "float32" else 1

    @property
    def addresses(self) -> range:
        """Every address the register occupies."""
        return range(self.address, self.address + self.width)

    @property
    def writable(self) -> bool:
        """Whether any role may write it."""
        return bool(self.writable_by)


def _check_register_shape(register: Register) -> None:
    where = f"register {register.name!r}"
    if not isinstance(register.name, str) or not REGISTER_NAME.fullmatch(register.name):
        raise InvalidInput(f"{where}: use lower-case letters, digits and underscores")
    _check_choice(f"{where}: kind", register.kind, REGISTER_KINDS)
    _check_choice(f"{where}: type", register.type, REGISTER_TYPES)
    if not isinstance(register.address, int) or not 0 <= register.address <= 0x10000 - register.width:
        raise InvalidInput(f"{where}: address {register.address!r} is outside 0-65535")
    if (register.type == "bool") != (register.kind in ("coil", "discrete")):
        raise InvalidInput(f"{where}: coils and discrete inputs are bool, and only they are")
    if not math.isfinite(register.scale) or register.scale <= 0:
        raise InvalidInput(f"{where}: scale {register.scale!r} must be a positive number")
    if register.type in ("float32", "bool") and register.scale != 1:
        raise InvalidInput(f"{where}: a {register.type} register takes no scale")


def _check_writers(register: Register) -> None:
    where = f"register {register.name!r}"
    if register.writable_by and register.kind not in ("holding", "coil"):
        raise InvalidInput(f"{where}: only holding registers and coils can be writable")
    for role in register.writable_by:
        _check_choice(f"{where}: writer role", role, WRITER_ROLES)
    if len(set(register.writable_by)) != len(register.writable_by):
        raise InvalidInput(f"{where}: a writer role is listed twice")


def _check_safe_range(register: Register) -> None:
    where = f"register {register.name!r}"
    bounds = [bound for bound in (register.safe_min, register.safe_max) if bound is not None]
    if any(not math.isfinite(bound) for bound in bounds):
        raise InvalidInput(f"{where}: safe range bounds must be finite numbers")
    if len(bounds) == 2 and bounds[0] > bounds[1]:
        raise InvalidInput(f"{where}: safe_min {bounds[0]} is above safe_max {bounds[1]}")
    raw_range = RAW_RANGES.get(register.type)
    if raw_range is None:
        return
    low, high = raw_range
    for bound in bounds:
        if not low <= round(bound * register.scale) <= high:
            raise InvalidInput(
                f"{where}: safe bound {bound} does not fit a {register.type} at scale {register.scale}"
            )


@dataclass(frozen=True)
class Plc:
    """A PLC: the host it runs on, the process it drives, its Modbus unit id and register map."""

    host: Host
    process: ProcessKind
    unit_id: int
    registers: tuple[Register, ...]

    def __post_init__(self) -> None:
        where = f"PLC {self.host.name}"
        if self.host.role != "plc":
            raise InvalidInput(f"{where}: its host has role {self.host.role!r}, not 'plc'")
        _check_choice(f"{where}: process", self.process, PROCESS_KINDS)
        if not isinstance(self.unit_id, int) or not 1 <= self.unit_id <= 247:
            raise InvalidInput(f"{where}: unit id {self.unit_id!r} is not 1-247")
        if not self.registers:
            raise InvalidInput(f"{where}: the register map is empty")
        _check_register_map(where, self.registers)

    @property
    def name(self) -> str:
        """The PLC's name, which is its host's."""
        return self.host.name

    def register(self, name: str) -> Register:
        """The register called `name`; NotFound if the map has none."""
        for register in self.registers:
            if register.name == name:
                return register
        raise NotFound(f"PLC {self.name} has no register {name!r}")

    def register_at(self, address: int) -> Register:
        """The register occupying `address` (either word of a float32); NotFound if none does."""
        for register in self.registers:
            if address in register.addresses:
                return register
        raise NotFound(f"PLC {self.name} has no register at address {address}")


def _check_register_map(where: str, registers: Iterable[Register]) -> None:
    names: set[str] = set()
    taken: dict[int, str] = {}
    for register in registers:
        if register.name in names:
            raise InvalidInput(f"{where}: register name {register.name!r} is used twice")
        names.add(register.name)
        for address in register.addresses:
            if address in taken:
                raise InvalidInput(
                    f"{where}: register {register.name!r} overlaps {taken[address]!r} at address {address}"
                )
            taken[address] = register.name


@dataclass(frozen=True)
class Plant:
    """The whole simulated plant of one site."""

    name: str
    site: str
    zones: tuple[Zone, ...]
    hosts: tuple[Host, ...]
    plcs: tuple[Plc, ...]

    def __post_init__(self) -> None:
        _check_slug("site", self.site)
        _check_zones(self.zones)
        _check_hosts(self.hosts, {zone.name: zone for zone in self.zones})
        _check_plcs(self.plcs, self.hosts)

    def zone(self, name: str) -> Zone:
        """The zone called `name`; NotFound if there is none."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise NotFound(f"plant {self.name} has no zone {name!r}")

    def host(self, name: str) -> Host:
        """The host called `name`; NotFound if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise NotFound(f"plant {self.name} has no host {name!r}")

    def plc(self, name: str) -> Plc:
        """The PLC called `name` (its host's name); NotFound if there is none."""
        for plc in self.plcs:
            if plc.name == name:
                return plc
        raise NotFound(f"plant {self.name} has no PLC {name!r}")

    def with_unit_ids(self, unit_ids: Mapping[str, int]) -> Plant:
        """The same plant with the PLCs named in `unit_ids` answering those Modbus unit ids (for a
        gateway in front of them all, which routes by unit id); NotFound names an unknown PLC,
        InvalidInput a unit id outside 1-247."""
        for name in unit_ids:
            self.plc(name)
        plcs = tuple(
            replace(plc, unit_id=unit_ids[plc.name]) if plc.name in unit_ids else plc for plc in self.plcs
        )
        return replace(self, plcs=plcs)

    def register_map(self, plc_name: str) -> tuple[Register, ...]:
        """The register map of one PLC, in address order."""
        return tuple(sorted(self.plc(plc_name).registers, key=lambda register: register.address))

    def to_dict(self) -> dict[str, Any]:
        """The plant as plain data (dicts, lists, strings and numbers), read back by `from_dict`."""
        return {
            "name": self.name,
            "site": self.site,
            "zones": [_zone_dict(zone) for zone in self.zones],
            "hosts": [_host_dict(host) for host in self.hosts],
            "plcs": [_plc_dict(plc) for plc in self.plcs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plant:
        """A plant from the plain data `to_dict` gives; InvalidInput if it is malformed."""
        try:
            hosts = tuple(Host(**host) for host in data["hosts"])
            by_name = {host.name: host for host in hosts}
            return cls(
                name=data["name"],
                site=data["site"],
                zones=tuple(Zone(**zone) for zone in data["zones"]),
                hosts=hosts,
                plcs=tuple(_plc_from_dict(plc, by_name) for plc in data["plcs"]),
            )
        except (KeyError, TypeError) as error:
            raise InvalidInput(f"plant data is malformed: {error!r}") from error


def _check_zones(zones: tuple[Zone, ...]) -> None:
    for index, zone in enumerate(zones):
        for other in zones[:index]:
            if zone.name == other.name:
                raise InvalidInput(f"zone name {zone.name!r} is used twice")
            if zone.network.overlaps(other.network):
                raise InvalidInput(f"zone {zone.name} ({zone.subnet}) overlaps {other.name} ({other.subnet})")


def _check_hosts(hosts: tuple[Host, ...], zones: Mapping[str, Zone]) -> None:
    names: set[str] = set()
    addresses: dict[str, str] = {}
    for host in hosts:
        if host.name in names:
            raise InvalidInput(f"host name {host.name!r} is used twice")
        names.add(host.name)
        if host.address in addresses:
            raise InvalidInput(
                f"hosts {addresses[host.address]} and {host.name} share address {host.address}"
            )
        addresses[host.address] = host.name
        _check_host_in_zone(host, zones)


def _check_host_in_zone(host: Host, zones: Mapping[str, Zone]) -> None:
    zone = zones.get(host.zone)
    if zone is None:
        raise InvalidInput(f"host {host.name}: zone {host.zone!r} does not exist")
    network = zone.network
    if host.ip not in network or host.ip in (network.network_address, network.broadcast_address):
        raise InvalidInput(
            f"host {host.name}: address {host.address} is not a host of zone {zone.name} ({zone.subnet})"
        )


def _check_plcs(plcs: tuple[Plc, ...], hosts: tuple[Host, ...]) -> None:
    seen: set[str] = set()
    for plc in plcs:
        if plc.host not in hosts:
            raise InvalidInput(f"PLC {plc.name}: its host is not one of the plant's hosts")
        if plc.name in seen:
            raise InvalidInput(f"host {plc.name} has two PLC definitions")
        seen.add(plc.name)
    for host in hosts:
        if host.role == "plc" and host.name not in seen:
            raise InvalidInput(f"host {host.name} has role 'plc' but no PLC definition")


def _zone_dict(zone: Zone) -> dict[str, Any]:
    return {
        "name": zone.name,
        "purdue_level": zone.purdue_level,
        "subnet": zone.subnet,
        "description": zone.description,
    }


def _host_dict(host: Host) -> dict[str, Any]:
    return {"name": host.name, "zone": host.zone, "address": host.address, "role": host.role}


def _plc_dict(plc: Plc) -> dict[str, Any]:
    return {
        "host": plc.name,
        "process": plc.process,
        "unit_id": plc.unit_id,
        "registers": [_register_dict(register) for register in plc.registers],
    }


def _register_dict(register: Register) -> dict[str, Any]:
    return {
        "address": register.address,
        "name": register.name,
        "kind": register.kind,
        "type": register.type,
        "unit": register.unit,
        "safe_min": None if register.safe_min is None else float(register.safe_min),
        "safe_max": None if register.safe_max is None else float(register.safe_max),
        "writable_by": list(register.writable_by),
        "scale": float(register.scale),
    }


def _plc_from_dict(data: Mapping[str, Any], hosts: Mapping[str, Host]) -> Plc:
    host = hosts.get(data["host"])
    if host is None:
        raise InvalidInput(f"PLC {data['host']!r}: no host of that name")
    registers = tuple(
        Register(**{**register, "writable_by": tuple(register.get("writable_by", ()))})
        for register in data["registers"]
    )
    return Plc(host=host, process=data["process"], unit_id=data["unit_id"], registers=registers)


# The default plant ------------------------------------------------------------------------------

OPS = ("operator", "engineer")
ENGINEERS = ("engineer",)


def tank_registers() -> tuple[Register, ...]:
    """The register map of a tank PLC: level, inlet valve, outlet pump, high/low level setpoints."""
    return (
        Register(0, "level_high_setpoint", "holding", "uint16", "%", 50, 95, OPS, 10),
        Register(1, "level_low_setpoint", "holding", "uint16", "%", 5, 50, OPS, 10),
        Register(100, "level", "input", "float32", "%", 5, 95),
        Register(102, "inlet_flow", "input", "uint16", "l/min", 0, 500, scale=10),
        Register(103, "outlet_flow", "input", "uint16", "l/min", 0, 400, scale=10),
        Register(200, "inlet_valve_open", "coil", "bool", writable_by=OPS),
        Register(201, "outlet_pump_on", "coil", "bool", writable_by=OPS),
        Register(202, "auto_mode", "coil", "bool", writable_by=OPS),
        Register(300, "level_high_alarm", "discrete", "bool"),
        Register(301, "level_low_alarm", "discrete", "bool"),
    )


def conveyor_registers() -> tuple[Register, ...]:
    """The register map of a conveyor PLC: speed setpoint, item count, jam flag, motor on."""
    return (
        Register(0, "speed_setpoint", "holding", "uint16", "m/min", 0, 60, OPS, 10),
        Register(100, "item_count", "input", "uint16", "items"),
        Register(101, "belt_speed", "input", "uint16", "m/min", 0, 60, scale=10),
        Register(102, "motor_current", "input", "uint16", "A", 0, 20, scale=10),
        Register(200, "motor_on", "coil", "bool", writable_by=OPS),
        Register(201, "jam_reset", "coil", "bool", writable_by=OPS),
        Register(300, "jammed", "discrete", "bool"),
    )


def pump_skid_registers() -> tuple[Register, ...]:
    """The register map of a pump skid PLC: speed setpoint, pressure, flow and motor temperature."""
    return (
        Register(0, "speed_setpoint", "holding", "uint16", "%", 0, 100, OPS, 10),
        Register(100, "discharge_pressure", "input", "float32", "bar", 0, 10),
        Register(102, "flow", "input", "float32", "m3/h", 0, 120),
        Register(104, "motor_temperature", "input", "int16", "degC", -20, 90, scale=10),
        Register(105, "pump_speed", "input", "uint16", "%", 0, 100, scale=10),
        Register(200, "run", "coil", "bool", writable_by=OPS),
        Register(300, "overtemperature_trip", "discrete", "bool"),
    )


def mixer_registers() -> tuple[Register, ...]:
    """The register map of a batch mixer PLC: agitator speed, batch time, temperature, batch count."""
    return (
        Register(0, "agitator_speed_setpoint", "holding", "uint16", "rpm", 0, 300, OPS),
        Register(1, "batch_time_setpoint", "holding", "uint16", "s", 60, 3600, ENGINEERS),
        Register(100, "agitator_speed", "input", "uint16", "rpm", 0, 300),
        Register(101, "mix_temperature", "input", "int16", "degC", 5, 60, scale=10),
        Register(102, "batch_elapsed", "input", "uint16", "s"),
        Register(103, "batch_count", "input", "uint16", "batches"),
        Register(200, "auto_cycle", "coil", "bool", writable_by=OPS),
        Register(300, "batch_running", "discrete", "bool"),
    )


def boiler_registers() -> tuple[Register, ...]:
    """The register map of a boiler PLC: pressure setpoint, steam pressure, water temperature, burner."""
    return (
        Register(0, "pressure_setpoint", "holding", "uint16", "bar", 2, 10, ENGINEERS, 100),
        Register(100, "steam_pressure", "input", "float32", "bar", 0, 10.5),
        Register(102, "water_temperature", "input", "float32", "degC", 10, 185),
        Register(104, "firing_rate", "input", "uint16", "%", 0, 100, scale=10),
        Register(105, "steam_demand", "input", "uint16", "%", 0, 100, scale=10),
        Register(200, "burner_enable", "coil", "bool", writable_by=OPS),
        Register(300, "safety_valve_open", "discrete", "bool"),
    )


REGISTER_TEMPLATES = {
    "tank": tank_registers,
    "conveyor": conveyor_registers,
    "pump_skid": pump_skid_registers,
    "mixer": mixer_registers,
    "boiler": boiler_registers,
}
"""The register map of each process kind in the default plant."""


def _default_zones() -> tuple[Zone, ...]:
    return (
        Zone("enterprise", 4, "127.10.0.0/24", "Enterprise IT: office workstations and the ERP server"),
        Zone("supervisory", 2, "127.10.1.0/24", "Supervisory: HMI, engineering workstation, historian"),
        Zone("cell-a", 1, "127.10.2.0/24", "Control cell A: two tanks and the pump skid"),
        Zone("cell-b", 1, "127.10.3.0/24", "Control cell B: conveyor, mixer and boiler"),
    )


def _default_hosts() -> tuple[Host, ...]:
    return (
        Host("dc-1", "enterprise", "127.10.0.5", "it"),
        Host("office-ws-1", "enterprise", "127.10.0.10", "it"),
        Host("erp-server", "enterprise", "127.10.0.20", "it"),
        Host("hmi-1", "supervisory", "127.10.1.10", "hmi"),
        Host("eng-ws-1", "supervisory", "127.10.1.20", "engineering"),
        Host("historian-1", "supervisory", "127.10.1.30", "historian"),
        Host("broker-1", "supervisory", "127.10.1.40", "it"),
        Host("console-1", "supervisory", "127.10.1.50", "it"),
        Host("cell-a-switch", "cell-a", "127.10.2.2", "device"),
        Host("tank-1", "cell-a", "127.10.2.11", "plc"),
        Host("tank-2", "cell-a", "127.10.2.12", "plc"),
        Host("pump-skid-1", "cell-a", "127.10.2.13", "plc"),
        Host("conveyor-1", "cell-b", "127.10.3.11", "plc"),
        Host("mixer-1", "cell-b", "127.10.3.12", "plc"),
        Host("boiler-1", "cell-b", "127.10.3.13", "plc"),
    )


DEFAULT_PROCESSES: dict[str, ProcessKind] = {
    "tank-1": "tank",
    "tank-2": "tank",
    "pump-skid-1": "pump_skid",
    "conveyor-1": "conveyor",
    "mixer-1": "mixer",
    "boiler-1": "boiler",
}


def default_plant() -> Plant:
    """The plant the simulator runs by default: four zones, fifteen hosts, six PLCs.

    Beside the PLCs: the enterprise's domain controller (DNS, NTP) `dc-1`, an office workstation and
    the ERP server; the HMI, engineering workstation, historian, MQTT broker `broker-1` (telemetry)
    and the Plantwarden console `console-1` in the supervisory zone; a managed switch in cell A.
    """
    hosts = _default_hosts()
    by_name = {host.name: host for host in hosts}
    plcs = tuple(
        Plc(by_name[name], process, unit_id=1, registers=REGISTER_TEMPLATES[process]())
        for name, process in DEFAULT_PROCESSES.items()
    )
    return Plant("Riverside bottling plant", "riverside", _default_zones(), hosts, plcs)
