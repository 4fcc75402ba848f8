"""Assets: what the inventory knows about one device, and the strong identities that merge two.

`Asset` is the read-only view the asset book hands out; `AssetState` is the book's mutable record
behind it. An asset belongs to one site and has a home segment (where it was first seen), but its
addresses carry their segment: a multi-homed workstation merged from two interfaces has one
address in each segment, and the same IP text means different hosts in different segments.

Identity: two assets that report the same strong identity are one device with two interfaces.
Strong identities (`identity_keys`) are the LLDP chassis id, the pair (vendor, serial), and the
PROFINET pair (device_id, station_name). A DHCP hostname with client id is deliberately not one:
hostnames are reused and left at defaults (many HMIs ship as "WIN-..." or the vendor's name), and
the client id is usually the interface's MAC, so it says nothing the MAC does not. Placeholder
values that devices report when they lack the real one (all zeros, "unknown", "n/a", ...) never
count as an identity, or every unconfigured device of a plant would merge into one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from plantwarden.inventory.facts import Fact, FactTable

IdentityKey = tuple[str, ...]
"""(site, kind, value, ...): a strong identity; equal keys mean one device."""

_PLACEHOLDERS = frozenset({"unknown", "n/a", "na", "none", "null", "not available", "default", "serial"})


class SegmentAddress(NamedTuple):
    """An IP or MAC address and the network segment it was seen in (the site is the asset's)."""

    segment: str
    address: str


class RouterMac(NamedTuple):
    """A MAC found to forward for many IPs of one segment: a router or gateway."""

    site: str
    segment: str
    mac: str


@dataclass(frozen=True)
class Asset:
    """One device as the inventory knows it (a snapshot; the book does not change it later).

    `id` is stable: it survives IP changes and merges (an absorbed asset's id is kept in
    `merged_ids`). `ips` are the current addresses, `past_ips` those it held before (a DHCP move,
    an address taken over by another device). `facts` holds the current fact of each attribute,
    `history` the other values reported. Times are nanoseconds since 1970. `carried_ips` are
    other devices' addresses whose frames came from one of its MACs once that MAC was known to
    be its own (ARP, DHCP, LLDP, DCP): it forwards for them (a router, a gateway), or they are
    addresses of its own it never stated.
    """

    id: uuid.UUID
    site: str
    segment: str
    ips: frozenset[SegmentAddress]
    past_ips: frozenset[SegmentAddress]
    macs: frozenset[SegmentAddress]
    facts: Mapping[str, Fact] = field(hash=False)
    history: Mapping[str, tuple[Fact, ...]] = field(hash=False)
    first_seen_ns: int
    last_seen_ns: int
    sources: frozenset[str]
    merged_ids: tuple[uuid.UUID, ...]
    carried_ips: frozenset[SegmentAddress] = frozenset()


@dataclass(eq=False)
class AssetState:
    """The asset book's mutable record of one asset."""

    id: uuid.UUID
    sequence: int
    site: str
    segment: str
    first_ns: int
    last_ns: int
    ips: set[SegmentAddress] = field(default_factory=set)
    past_ips: set[SegmentAddress] = field(default_factory=set)
    macs: set[SegmentAddress] = field(default_factory=set)
    carried: set[SegmentAddress] = field(default_factory=set)  # see Asset.carried_ips
    sources: set[str] = field(default_factory=set)
    facts: FactTable = field(default_factory=FactTable)
    merged_ids: list[uuid.UUID] = field(default_factory=list)
    identities: frozenset[IdentityKey] = frozenset()

    def seen(self, ts_ns: int, source: str) -> None:
        self.first_ns = min(self.first_ns, ts_ns)
        self.last_ns = max(self.last_ns, ts_ns)
        self.sources.add(source)

    def take_ip(self, address: SegmentAddress) -> None:
        self.ips.add(address)
        self.past_ips.discard(address)

    def give_up_ip(self, address: SegmentAddress) -> None:
        self.ips.discard(address)
        self.past_ips.add(address)

    def older_than(self, other: AssetState) -> bool:
        """Whether this asset was first seen before `other` (ties: created first in the book)."""
        return (self.first_ns, self.sequence) < (other.first_ns, other.sequence)

    def absorb(self, other: AssetState) -> None:
        """Take in everything `other` knows; the caller re-points the book's indexes."""
        self.ips |= other.ips
        self.past_ips = (self.past_ips | other.past_ips) - self.ips
        self.macs |= other.macs
        self.carried |= other.carried
        self.sources |= other.sources
        self.facts.absorb(other.facts)
        self.first_ns = min(self.first_ns, other.first_ns)
        self.last_ns = max(self.last_ns, other.last_ns)
        self.merged_ids.extend([other.id, *other.merged_ids])

    def identity_keys(self) -> frozenset[IdentityKey]:
        """The strong identities the current facts give (see the module docstring)."""
        value = self.facts.current_value
        keys: set[IdentityKey] = set()
        if _meaningful(value("chassis_id")):
            keys.add((self.site, "chassis_id", value("chassis_id")))
        if value("vendor") and _meaningful(value("serial")):
            keys.add((self.site, "vendor_serial", value("vendor"), value("serial")))
        if _meaningful(value("device_id")) and _meaningful(value("station_name")):
            keys.add((self.site, "dcp", value("device_id"), value("station_name")))
        return frozenset(keys)

    def snapshot(self) -> Asset:
        return Asset(
            id=self.id,
            site=self.site,
            segment=self.segment,
            ips=frozenset(self.ips),
            past_ips=frozenset(self.past_ips),
            macs=frozenset(self.macs),
            facts=MappingProxyType(self.facts.current()),
            history=MappingProxyType(self.facts.history()),
            first_seen_ns=self.first_ns,
            last_seen_ns=self.last_ns,
            sources=frozenset(self.sources),
            merged_ids=tuple(self.merged_ids),
            carried_ips=frozenset(self.carried - self.ips - self.past_ips),
        )


def _meaningful(value: str) -> bool:
    """Whether an identity value names one device, rather than standing in for a missing one."""
    bare = value.strip().lower()
    digits = bare.translate(str.maketrans("", "", ":-. "))
    return bool(digits) and bare not in _PLACEHOLDERS and set(digits) != {"0"} and set(digits) != {"f"}
