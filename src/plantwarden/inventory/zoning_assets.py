"""The assets of a suggested plant.yaml, and the channels narrowed to them.

An asset is declared for every host whose role was inferred with at least the minimum
confidence, for every address outside the plant (the external zone lists them), and for every
client a channel names. Ids come from the role and the first address (`plc-10-1-2-11`); the name
is what the device calls itself, if it said. PLCs are of high criticality, the rest medium.
plant.yaml gives an address to one asset only: an address reused in two segments goes to the
first asset that holds it, and the draft says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from plantwarden.inventory.zoning_draft import (
    DraftAsset,
    DraftConduit,
    DraftZone,
    IdRegistry,
    address_words,
    plant_id,
    printable,
    span,
)
from plantwarden.inventory.zoning_inputs import ObservedHost, ZoneMap, is_unicast, parse_address
from plantwarden.zones.plant.model import Address

ROLE_WORDS = {
    "plc": ("plc", "PLC"),
    "hmi": ("hmi", "HMI"),
    "engineering_workstation": ("eng-ws", "engineering workstation"),
    "historian": ("historian", "historian"),
    "it_host": ("it-host", "IT host"),
    "iot_device": ("iot", "IoT device"),
    "network_device": ("network-device", "network device"),
}
"""Each role's word in an asset id and in its name; other roles (unknown) are a plain `host`."""
UNKNOWN_ROLE = ("host", "host")
CRITICALITY = {"plc": "high"}
"""Criticality by role; every other asset is of medium criticality."""
EVIDENCE_SHOWN = 4
OUTSIDE = "an address outside the plant"

Place = tuple[str, Address]
"""(segment, address): where an address was seen."""


@dataclass(frozen=True)
class _Candidate:
    """A host to declare (or a bare address no stored asset holds), and why, when its role
    alone would not make it an asset."""

    host: ObservedHost | None
    places: tuple[Place, ...]
    reason: str = ""


@dataclass
class _Declared:
    """The assets declared so far, the owner of each address, and the notes."""

    assets: list[DraftAsset] = field(default_factory=list)
    owners: dict[Address, str] = field(default_factory=dict)
    by_place: dict[Place, DraftAsset] = field(default_factory=dict)
    ids: IdRegistry = field(default_factory=IdRegistry)
    notes: list[str] = field(default_factory=list)

    def declare(self, zone_map: ZoneMap, candidate: _Candidate) -> None:
        asset = _asset(zone_map, candidate, self.owners, self.ids)
        if asset is None:
            first = candidate.places[0][1]
            self.notes.append(f"Not declared: the host at {first}, whose addresses other assets hold.")
            return
        self.assets.append(asset)
        for place in candidate.places:
            if place[1] in asset.addresses:
                self.by_place.setdefault(place, asset)


def draft_assets(
    zone_map: ZoneMap, hosts: Sequence[ObservedHost], conduits: list[DraftConduit], zones: list[DraftZone]
) -> tuple[list[DraftAsset], list[str]]:
    """The assets to declare, in zone order then by address, and notes on what was left out.
    Channels whose observed clients all became assets of their initiator zone are narrowed to them."""
    order = {zone.id: index for index, zone in enumerate(zones)}
    declared = _Declared()
    for candidate in sorted(_candidates(zone_map, hosts, conduits), key=lambda c: _order(zone_map, c, order)):
        declared.declare(zone_map, candidate)
    for segment, address in _sorted_places(zone_map.seen):
        if zone_map.key(segment, address)[1] is None and address not in declared.owners:
            reason = "an address outside the plant (the host's other addresses are in another zone)"
            declared.declare(
                zone_map, _Candidate(zone_map.hosts.get((segment, address)), ((segment, address),), reason)
            )
    _outside_hosts(zone_map, declared)
    _place_in_zones(declared.assets, zones)
    _narrow(conduits, declared.by_place)
    return declared.assets, declared.notes


def _outside_hosts(zone_map: ZoneMap, declared: _Declared) -> None:
    """An outside address seen in two segments is one asset's, in one segment's external zone;
    the external zone of the other segment holds it as a one-host subnet."""
    zone_of_asset = {asset.id: asset.zone for asset in declared.assets}
    for segment, address in _sorted_places(zone_map.seen):
        key = zone_map.key(segment, address)
        zone = zone_map.zones[key]
        owner = declared.owners.get(address, "")
        if key[1] is None and zone_of_asset.get(owner) != zone.id and address not in zone.outside_hosts:
            zone.outside_hosts.append(address)
            zone.comments.append(f"{address} is asset {owner} of another segment: a one-host subnet here")


def _sorted_places(places: Iterable[tuple[str, Address]]) -> list[tuple[str, Address]]:
    return sorted(places, key=lambda place: (place[0], place[1].version, int(place[1])))


def _places(host: ObservedHost) -> tuple[Place, ...]:
    """Where a host was seen: its unicast addresses with their segments."""
    places = ((segment, parse_address(text)) for segment, text in host.placed())
    return tuple(place for place in places if is_unicast(place[1]))


def _candidates(
    zone_map: ZoneMap, hosts: Sequence[ObservedHost], conduits: list[DraftConduit]
) -> list[_Candidate]:
    wanted: dict[object, _Candidate] = {}
    for host in hosts:
        if host.role in ROLE_WORDS and host.confidence >= zone_map.options.min_confidence and _places(host):
            wanted[host] = _Candidate(host, _places(host))

    def want(segment: str, address: Address, reason: str) -> None:
        host = zone_map.hosts.get((segment, address))
        key: object = host if host is not None else (segment, address)
        if key not in wanted:
            places = _places(host) if host is not None else ((segment, address),)
            wanted[key] = _Candidate(host, places, reason)

    for segment, address in _sorted_places(zone_map.seen):
        if zone_map.key(segment, address)[1] is None:
            want(segment, address, OUTSIDE)
    for conduit in conduits:
        for channel in conduit.channels:
            for segment, address in channel.client_addresses:
                want(segment, address, f"a client of channel {conduit.id}/{channel.id}")
    return list(wanted.values())


def _order(zone_map: ZoneMap, candidate: _Candidate, zones: dict[str, int]) -> tuple[int, int, int]:
    segment, address = candidate.places[0]
    return (zones[zone_map.zone_of(segment, address).id], address.version, int(address))


def _asset(
    zone_map: ZoneMap, candidate: _Candidate, owners: dict[Address, str], ids: IdRegistry
) -> DraftAsset | None:
    """The asset of a candidate, holding its addresses of one zone that no asset holds yet (an
    address in another zone stays that zone's, so every address has one zone)."""
    free = [place for place in dict.fromkeys(candidate.places) if place[1] not in owners]
    if not free:
        return None
    segment, first = free[0]
    zone = zone_map.zone_of(segment, first)
    addresses = tuple(dict.fromkeys(a for s, a in free if zone_map.zone_of(s, a) is zone))
    role = candidate.host.role if candidate.host is not None else None
    word, label = ROLE_WORDS.get(role or "", UNKNOWN_ROLE)
    wanted = plant_id(word, address_words(first))
    asset_id = ids.claim(wanted, plant_id(wanted, segment))
    comments = _comments(candidate, label) + _left_out(zone_map, candidate, owners, addresses)
    for address in addresses:
        owners[address] = asset_id
    named = candidate.host.name if candidate.host is not None else ""
    return DraftAsset(
        id=asset_id,
        name=f"{printable(named, 80)} ({label})" if named else f"{label} at {first}",
        addresses=addresses,
        zone=zone.id,
        criticality=CRITICALITY.get(role or "", "medium"),
        comments=comments,
    )


def _left_out(
    zone_map: ZoneMap, candidate: _Candidate, owners: dict[Address, str], kept: tuple[Address, ...]
) -> list[str]:
    lines = []
    for segment, address in dict.fromkeys(candidate.places):
        if address in owners:
            lines.append(f"{address} left out: it is also the address of {owners[address]} (another segment)")
        elif address not in kept:
            zone = zone_map.zone_of(segment, address).id
            lines.append(f"also at {address}, left to zone {zone} (an address belongs to one zone)")
    return lines


def _comments(candidate: _Candidate, label: str) -> list[str]:
    host = candidate.host
    reason = f"; declared as {candidate.reason}" if candidate.reason else ""
    if host is None:
        return [f"no stored asset holds it{reason}"]
    said = f"{label}, role confidence {host.confidence:.2f}" if host.role else "role not inferred"
    lines = [f"{said}{reason}; seen {span(host.first_seen, host.last_seen)}"]
    lines += [f"- {printable(evidence)}" for evidence in host.evidence[:EVIDENCE_SHOWN]]
    return lines


def _place_in_zones(assets: list[DraftAsset], zones: list[DraftZone]) -> None:
    """The external zone lists its assets; an asset whose addresses do not name exactly its own
    zone by subnet (a multi-homed host, a subnet reused in two segments) says its zone."""
    by_id = {zone.id: zone for zone in zones}
    for asset in assets:
        zone = by_id[asset.zone]
        if zone.subnet is None:
            zone.assets.append(asset.id)
            continue
        holding = {
            z.id for z in zones if z.subnet is not None and any(a in z.subnet for a in asset.addresses)
        }
        asset.explicit_zone = holding != {asset.zone}


def _narrow(conduits: list[DraftConduit], by_place: dict[Place, DraftAsset]) -> None:
    for conduit in conduits:
        for channel in conduit.channels:
            if not channel.client_addresses:
                continue
            clients = [by_place.get(place) for place in channel.client_addresses]
            if all(c is not None and c.zone == channel.initiator for c in clients):
                channel.clients = tuple(sorted({c.id for c in clients if c is not None}))
            else:
                channel.comments.append(
                    "clients not named: one of them is not an asset of the initiator zone"
                )
