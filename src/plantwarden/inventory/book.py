"""The asset book: sightings in, one asset per device out. Pure, in memory, deterministic.

The merge rules (docs/inventory.md tells the why at more length):

1. An asset is found by (site, segment, IP). A sighting without an IP (LLDP, DCP without an
   address) goes to the asset its MAC is authoritatively bound to, else to a MAC-only asset
   bound to that MAC; when an authoritative sighting later ties the MAC to an IP, the MAC-only
   asset and the IP's asset merge.
2. Router MACs: a MAC that is the OBSERVED Ethernet source of `router_threshold` (default 3)
   distinct IPs of one segment, not counting IPs it claimed authoritatively, forwards for others:
   it is a router MAC from then on. It is removed from every asset but the one it is
   authoritatively bound to (created as a MAC-only asset if there is none: the router is an
   asset of its own), is never again recorded on a host, and never binds a further IP.
   Below the threshold, a MAC a device has stated with an IP of its own (rule 3) is that
   device's: it is not recorded on the asset of another IP it carries (a frame forwarded, or an
   address the device never stated), and it is taken off the assets it was only OBSERVED on when
   the statement comes later. The device lists those IPs as `carried_ips` (the roles read them).
3. An authoritative sighting binds its MAC to its IP. If the MAC was bound to an asset with
   other IPs, that asset takes the new IP: a DHCP ACK (source "dhcp") moves it, its old IPs
   claimed by that MAC in the segment go to its past IPs; any other source (ARP, DCP, LLDP:
   static addressing) adds the IP as a second address of the same interface. An asset that held
   the IP before is merged in if nothing says it is another device (no MAC but this one), and
   otherwise gives the IP up to its past IPs (the address went to another device).
4. Assets of one site that report the same strong identity (`assets.identity_keys`: LLDP
   chassis id, vendor with serial, DCP device id with station name) are one device with two
   interfaces and merge. A merge keeps the id of the asset first seen and remembers the other.
5. Every sighting widens its asset's first and last seen and adds its source; its attributes
   become facts (`facts.FactTable`).

Same sightings in the same order give the same book, ids included (ids are UUID 5 of the
site, segment, address and time that created the asset), whether they come one by one or in
batches of any size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from plantwarden.inventory.assets import Asset, AssetState, IdentityKey, RouterMac, SegmentAddress
from plantwarden.inventory.errors import AssetNotFound, InvalidSighting
from plantwarden.inventory.facts import Fact
from plantwarden.inventory.sightings import Binding, Sighting, canonical_ip

_ID_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-5b7e-9c43-2d1a7e0b9f61")
DEFAULT_ROUTER_THRESHOLD = 3
IpKey = tuple[str, str, str]
MacKey = tuple[str, str, str]


@dataclass
class _MacState:
    """What the book knows of one MAC in one segment."""

    first_ns: int
    last_ns: int
    asset: uuid.UUID | None = None  # the asset it is authoritatively bound to
    claimed: set[str] = field(default_factory=set)  # IPs it stated as its own
    observed: set[str] = field(default_factory=set)  # IPs it was the Ethernet source of
    router: bool = False
    recorded_on: set[uuid.UUID] = field(default_factory=set)  # assets it is only OBSERVED on

    def stated(self) -> bool:
        """Whether a device has stated this MAC with an IP of its own: it is bound to that device."""
        return self.asset is not None and bool(self.claimed)


class AssetBook:
    """Assets built from sightings by the merge rules of this module's docstring."""

    def __init__(self, *, router_threshold: int = DEFAULT_ROUTER_THRESHOLD) -> None:
        if (
            isinstance(router_threshold, bool)
            or not isinstance(router_threshold, int)
            or router_threshold < 2
        ):
            raise InvalidSighting(f"router_threshold {router_threshold!r} must be an int of at least 2")
        self._router_threshold = router_threshold
        self._assets: dict[uuid.UUID, AssetState] = {}
        self._at_ip: dict[IpKey, uuid.UUID] = {}
        self._macs: dict[MacKey, _MacState] = {}
        self._identities: dict[IdentityKey, uuid.UUID] = {}
        self._merged_into: dict[uuid.UUID, uuid.UUID] = {}
        self._created = 0

    # -- reading -----------------------------------------------------------------------------

    def assets(self) -> tuple[Asset, ...]:
        """Every asset, in the order the book created them."""
        return tuple(state.snapshot() for state in self._assets.values())

    def find(self, site: str, segment: str, ip: str) -> Asset | None:
        """The asset that currently holds `ip` in (site, segment), if any."""
        asset_id = self._at_ip.get((site, segment, canonical_ip(ip)))
        return None if asset_id is None else self._assets[asset_id].snapshot()

    def get(self, asset_id: uuid.UUID) -> Asset:
        """The asset with this id, or the one it was merged into."""
        while asset_id in self._merged_into:
            asset_id = self._merged_into[asset_id]
        if asset_id not in self._assets:
            raise AssetNotFound(f"no asset {asset_id}", details={"id": str(asset_id)})
        return self._assets[asset_id].snapshot()

    def router_macs(self) -> frozenset[RouterMac]:
        """Every MAC found to forward for many IPs, with its site and segment."""
        return frozenset(RouterMac(*key) for key, state in self._macs.items() if state.router)

    # -- adding ------------------------------------------------------------------------------

    def add_many(self, sightings: Iterable[Sighting]) -> None:
        """Add sightings in order; the same as `add` on each."""
        for sighting in sightings:
            self.add(sighting)

    def add(self, sighting: Sighting) -> uuid.UUID:
        """Add one sighting; the id of the asset it now belongs to."""
        if not isinstance(sighting, Sighting):
            raise InvalidSighting(f"expected a Sighting, got {type(sighting).__name__}")
        if not sighting.ip:
            target = self._asset_of_mac(sighting)
        elif sighting.binding is Binding.AUTHORITATIVE:
            target = self._claim(sighting)
        elif sighting.binding is Binding.OBSERVED:
            target = self._observe(sighting)
        else:
            target = self._asset_at(sighting)
        return self._record(target, sighting).id

    def _record(self, asset: AssetState, sighting: Sighting) -> AssetState:
        asset.seen(sighting.ts_ns, sighting.source)
        for name, value in sighting.attributes.items():
            fact = Fact(value, sighting.source, sighting.confidence, sighting.ts_ns, sighting.ts_ns)
            asset.facts.record(name, fact)
        return self._merge_by_identity(asset)

    # -- rule 1: by IP, else by MAC ----------------------------------------------------------

    def _asset_at(self, sighting: Sighting) -> AssetState:
        asset_id = self._at_ip.get(_ip_key(sighting))
        if asset_id is not None:
            return self._assets[asset_id]
        asset = self._create(sighting, sighting.ip)
        self._give_ip(asset, sighting)
        return asset

    def _asset_of_mac(self, sighting: Sighting) -> AssetState:
        mac = self._mac_state(sighting)
        if mac.asset is None:
            asset = self._create(sighting, sighting.mac)
            self._bind(mac, asset, sighting)
        return self._assets[_bound(mac)]

    # -- rule 2: OBSERVED pairs and router MACs ----------------------------------------------

    def _observe(self, sighting: Sighting) -> AssetState:
        asset = self._asset_at(sighting)
        mac = self._mac_state(sighting)
        mac.observed.add(sighting.ip)
        if not mac.router and len(mac.observed - mac.claimed) >= self._router_threshold:
            self._mark_router(mac, sighting)
        if mac.asset == asset.id:
            return asset
        if mac.router or mac.stated():
            # The MAC is another device's (a router's, or a host's whose address this is not):
            # that device sent the frame, the asset of the IP only stands behind it.
            carrier = self._assets[_bound(mac)]
            carrier.seen(sighting.ts_ns, sighting.source)
            carrier.carried.add(SegmentAddress(sighting.segment, sighting.ip))
        else:
            asset.macs.add(_mac_address(sighting))
            mac.recorded_on.add(asset.id)
        return asset

    def _mark_router(self, mac: _MacState, sighting: Sighting) -> None:
        mac.router = True
        if mac.asset is None:
            router = self._create(sighting, sighting.mac)
            router.first_ns, router.last_ns = mac.first_ns, mac.last_ns
            self._bind(mac, router, sighting)
        self._forget_observed(mac, _mac_address(sighting))

    # -- rule 3: AUTHORITATIVE pairs, DHCP moves ---------------------------------------------

    def _claim(self, sighting: Sighting) -> AssetState:
        mac = self._mac_state(sighting)
        first_statement = not mac.claimed
        mac.claimed.add(sighting.ip)
        holder_id = self._at_ip.get(_ip_key(sighting))
        holder = None if holder_id is None else self._assets[holder_id]
        owner = None if mac.asset is None else self._assets[mac.asset]
        if owner is not None and owner.ips and mac.router:
            return holder or self._asset_at(sighting)  # a router answering for others (proxy ARP)
        if owner is None:
            target = holder or self._asset_at(sighting)
        elif owner is holder:
            target = owner
        else:
            target = self._move_to(owner, holder, mac, sighting)
        self._bind(mac, target, sighting)
        if first_statement:  # from now on the MAC is target's; no other asset takes it (_observe)
            self._forget_observed(mac, _mac_address(sighting))
        return self._assets[_bound(mac)]

    def _move_to(
        self, owner: AssetState, holder: AssetState | None, mac: _MacState, sighting: Sighting
    ) -> AssetState:
        """`owner` (bound to the sighting's MAC) takes the sighting's IP from `holder`."""
        if sighting.source == "dhcp":
            for address in sorted(owner.ips):
                if address.segment == sighting.segment and address.address in mac.claimed - {sighting.ip}:
                    owner.give_up_ip(address)
                    del self._at_ip[(owner.site, address.segment, address.address)]
        if holder is not None and holder.macs <= {_mac_address(sighting)}:
            return self._merge(owner, holder)
        if holder is not None:
            holder.give_up_ip(SegmentAddress(sighting.segment, sighting.ip))
        self._give_ip(owner, sighting)
        return owner

    # -- rule 4: strong identities -----------------------------------------------------------

    def _merge_by_identity(self, asset: AssetState) -> AssetState:
        """Merge `asset` with every asset that shares one of its strong identities."""
        while True:
            keys = asset.identity_keys()
            for stale in asset.identities - keys:
                if self._identities.get(stale) == asset.id:
                    del self._identities[stale]
            asset.identities = keys
            other = None
            for key in sorted(keys):
                holder = self._identities.setdefault(key, asset.id)
                if holder != asset.id:
                    other = self._assets[holder]
                    break
            if other is None:
                return asset
            asset = self._merge(asset, other)

    def _merge(self, one: AssetState, two: AssetState) -> AssetState:
        """Merge two assets into the one first seen; every index then names the survivor."""
        keep, drop = (one, two) if one.older_than(two) else (two, one)
        keep.absorb(drop)
        for address in drop.ips:
            self._at_ip[(keep.site, address.segment, address.address)] = keep.id
        for address in drop.macs:
            mac = self._macs.get((keep.site, address.segment, address.address))
            if mac is None:
                continue
            if mac.asset == drop.id:
                mac.asset = keep.id
            if drop.id in mac.recorded_on:
                mac.recorded_on.remove(drop.id)
                mac.recorded_on.add(keep.id)
            if mac.asset is not None:
                mac.recorded_on.discard(mac.asset)
        for key in drop.identities:
            if self._identities.get(key) == drop.id:
                self._identities[key] = keep.id
        keep.identities |= drop.identities
        del self._assets[drop.id]
        self._merged_into[drop.id] = keep.id
        return keep

    # -- bookkeeping -------------------------------------------------------------------------

    def _create(self, sighting: Sighting, address: str) -> AssetState:
        """A new asset first seen by `sighting`, its id derived from where, what and when."""
        number = 0
        while True:
            name = f"{sighting.site}\n{sighting.segment}\n{address}\n{sighting.ts_ns}\n{number}"
            asset_id = uuid.uuid5(_ID_NAMESPACE, name)
            if asset_id not in self._assets and asset_id not in self._merged_into:
                break
            number += 1
        self._created += 1
        asset = AssetState(
            asset_id, self._created, sighting.site, sighting.segment, sighting.ts_ns, sighting.ts_ns
        )
        self._assets[asset_id] = asset
        return asset

    def _give_ip(self, asset: AssetState, sighting: Sighting) -> None:
        asset.take_ip(SegmentAddress(sighting.segment, sighting.ip))
        self._at_ip[_ip_key(sighting)] = asset.id

    def _bind(self, mac: _MacState, asset: AssetState, sighting: Sighting) -> None:
        """Bind the sighting's MAC to `asset` (the callers have merged whatever it was bound to)."""
        assert mac.asset in (None, asset.id)
        mac.asset = asset.id
        mac.recorded_on.discard(asset.id)
        asset.macs.add(_mac_address(sighting))

    def _forget_observed(self, mac: _MacState, address: SegmentAddress) -> None:
        """Take `address` off every asset it was only OBSERVED on; its bound asset keeps it and
        carries the IPs it was seen with (its snapshot leaves out those that are its own)."""
        for asset_id in mac.recorded_on:
            if asset_id != mac.asset:
                self._assets[asset_id].macs.discard(address)
        mac.recorded_on.clear()
        if mac.asset is not None:
            self._assets[mac.asset].carried.update(SegmentAddress(address.segment, ip) for ip in mac.observed)

    def _mac_state(self, sighting: Sighting) -> _MacState:
        mac = self._macs.setdefault(_mac_key(sighting), _MacState(sighting.ts_ns, sighting.ts_ns))
        mac.first_ns = min(mac.first_ns, sighting.ts_ns)
        mac.last_ns = max(mac.last_ns, sighting.ts_ns)
        return mac


def _ip_key(sighting: Sighting) -> IpKey:
    return (sighting.site, sighting.segment, sighting.ip)


def _mac_key(sighting: Sighting) -> MacKey:
    return (sighting.site, sighting.segment, sighting.mac)


def _mac_address(sighting: Sighting) -> SegmentAddress:
    return SegmentAddress(sighting.segment, sighting.mac)


def _bound(mac: _MacState) -> uuid.UUID:
    assert mac.asset is not None  # every caller has bound it (a router MAC, a stated one)
    return mac.asset
