"""The plant model as values: what plant.yaml declares, checked and resolved (`zones.plant.load`).

Everything here is immutable. A `PlantModel` holds sites; a `SiteModel` holds its zones, conduits
with their channels, maintenance windows, assets known in advance (with register maps), role
rights per zone and bindings of legacy clients to roles. Names refer to each other by id; the
loader has already checked that every reference resolves, that subnets do not overlap and that
levels are in range, so code reading a model can trust it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FOUNDATIONAL_REQUIREMENTS: tuple[str, ...] = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
"""IEC 62443-3-3's seven foundational requirements, in the order of a security level vector:
identification and authentication control, use control, system integrity, data confidentiality,
restricted data flow, timely response to events, resource availability."""

OPERATIONS: tuple[str, ...] = ("read", "write", "program", "control", "diagnostic", "identify", "other")
"""The operation categories a channel may allow (`core.records.schema.Operation`, without
`malformed`, which no channel allows)."""

WINDOWED_OPERATIONS: frozenset[str] = frozenset({"program", "control"})
"""Operations that a channel's maintenance windows restrict (outside them they are violations)."""

Criticality = Literal["low", "medium", "high", "critical"]
CRITICALITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
Transport = Literal["tcp", "udp"]
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PURDUE_LEVELS: tuple[float, ...] = (0, 1, 2, 3, 3.5, 4, 5)
"""Purdue levels: 0 process, 1 basic control, 2 supervisory, 3 operations, 3.5 the industrial DMZ,
4 business logistics, 5 enterprise."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SecurityLevel:
    """A target security level: one value 0-4 per foundational requirement (IAC .. RA)."""

    values: tuple[int, int, int, int, int, int, int]

    @classmethod
    def uniform(cls, level: int) -> SecurityLevel:
        """The vector with `level` for every foundational requirement (the shorthand of plant.yaml)."""
        return cls((level, level, level, level, level, level, level))

    def as_mapping(self) -> dict[str, int]:
        return dict(zip(FOUNDATIONAL_REQUIREMENTS, self.values, strict=True))

    def __str__(self) -> str:
        if len(set(self.values)) == 1:
            return f"SL {self.values[0]}"
        return "SL-T (" + ", ".join(f"{fr} {v}" for fr, v in self.as_mapping().items()) + ")"


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly time window in the site's time zone: on `days` (0 Monday .. 6 Sunday), from
    `start` to `end` minutes after midnight; `end <= start` runs past midnight into the next day."""

    name: str
    days: tuple[int, ...]
    start: int
    end: int

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether a local time (weekday 0-6, minute of the day 0-1439) lies inside the window."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        if weekday in self.days and minute >= self.start:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end

    def minutes_of_week(self) -> tuple[tuple[int, int], ...]:
        """The window as half-open ranges of minutes since Monday 00:00 (for vectorised checks)."""
        spans: list[tuple[int, int]] = []
        week = 7 * 1440
        for day in self.days:
            begin = day * 1440 + self.start
            length = (self.end - self.start) % 1440 or 1440
            end = begin + length
            if end <= week:
                spans.append((begin, end))
            else:
                spans.extend(((begin, week), (0, end - week)))
        return tuple(sorted(spans))


@dataclass(frozen=True, slots=True)
class Channel:
    """What may cross a conduit: `protocol` over `transport` to `ports` of a responder, opened by
    initiators in `initiators` towards responders in `responders` (zone ids), with these operation
    categories. `maintenance` names the windows outside which program and control operations are
    violations; `schedule`, when set, names the only windows in which the channel is open at all
    (compiled into the firewall). `clients` / `servers`, when set, narrow the channel to those
    assets (by id). `encrypted`: the traffic must be encrypted, so any cleartext industrial
    protocol seen on it is a violation."""

    id: str
    protocol: str
    transport: Transport
    ports: tuple[int, ...]
    initiators: tuple[str, ...]
    responders: tuple[str, ...]
    operations: frozenset[str]
    maintenance: tuple[str, ...] = ()
    schedule: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    encrypted: bool = False


@dataclass(frozen=True, slots=True)
class Conduit:
    """A conduit joining two or more zones, with its channels and its own target security level."""

    id: str
    name: str
    zones: tuple[str, ...]
    channels: tuple[Channel, ...]
    security_level: SecurityLevel
    description: str = ""


@dataclass(frozen=True, slots=True)
class Zone:
    """A security zone: a Purdue level, subnets and assets, essential functions, a target level."""

    id: str
    name: str
    purdue_level: float
    subnets: tuple[Network, ...]
    assets: tuple[str, ...]
    security_level: SecurityLevel
    essential_functions: tuple[str, ...] = ()
    segment: str = "default"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Register:
    """One entry of an asset's register map (Modbus addressing: one 16-bit register per address)."""

    address: int
    name: str
    kind: Literal["holding", "input", "coil", "discrete"]
    type: Literal["bool", "uint16", "int16", "uint32", "int32", "float32"]
    unit: str = ""
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    safe_range: tuple[float, float] | None = None
    writers: tuple[str, ...] = ()
    max_change: float | None = None
    """The most the value may change in a second through the gateway (engineering units)."""
    counter: bool | None = None
    """True: a count (items made, batches run, a meter's total) that rises and is reset or wraps
    around, which the process models leave out; False: a measurement, modelled even when it only
    rises while they learn; None: the process models judge it by its learning values."""

    @property
    def width(self) -> int:
        """How many addresses the value takes."""
        return 2 if self.type in ("uint32", "int32", "float32") else 1

    @property
    def last(self) -> int:
        return self.address + self.width - 1


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset known in advance: its addresses, its zone (declared or by subnet), how critical it
    is, whether only the gateway may reach its industrial ports, and its register map."""

    id: str
    name: str
    addresses: tuple[Address, ...]
    zone: str
    criticality: Criticality = "medium"
    gateway_only: bool = False
    registers: tuple[Register, ...] = ()
    unit_id: int | None = None
    description: str = ""
    rate_limits: tuple[tuple[str, float], ...] = ()
    """(role, requests a second): what each client of the role may send it through the gateway."""

    @property
    def crown_jewel(self) -> bool:
        """Critical assets are the crown jewels that reachability reports paths to."""
        return self.criticality == "critical"


@dataclass(frozen=True, slots=True)
class Right:
    """What a role may do in zones: plant operations (`modbus.write`, `*.read`), optionally only on
    some assets and register ranges, and under conditions."""

    role: str
    zones: tuple[str, ...]
    operations: tuple[str, ...]
    assets: tuple[str, ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()
    requires_training: bool = False
    requires_approval: bool = False


@dataclass(frozen=True, slots=True)
class Binding:
    """A legacy client that cannot log in, known by its address, acting in a role (in one zone or
    the whole site)."""

    address: Address
    role: str
    zone: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class SiteModel:
    """One site of the plant model."""

    id: str
    name: str
    timezone: str
    zones: tuple[Zone, ...]
    conduits: tuple[Conduit, ...]
    assets: tuple[Asset, ...] = ()
    windows: Mapping[str, Window] = field(default_factory=lambda: MappingProxyType({}))
    rights: tuple[Right, ...] = ()
    bindings: tuple[Binding, ...] = ()
    gateways: tuple[Address, ...] = ()

    def zone(self, zone_id: str) -> Zone:
        for zone in self.zones:
            if zone.id == zone_id:
                return zone
        raise KeyError(zone_id)

    def asset(self, asset_id: str) -> Asset:
        for asset in self.assets:
            if asset.id == asset_id:
                return asset
        raise KeyError(asset_id)

    def conduit(self, conduit_id: str) -> Conduit:
        for conduit in self.conduits:
            if conduit.id == conduit_id:
                return conduit
        raise KeyError(conduit_id)


@dataclass(frozen=True, slots=True)
class PlantModel:
    """The whole plant model; `version` is the SHA-256 of the file it was read from."""

    sites: tuple[SiteModel, ...]
    version: str
    source: str = "plant.yaml"

    def site(self, site_id: str) -> SiteModel:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise KeyError(site_id)
