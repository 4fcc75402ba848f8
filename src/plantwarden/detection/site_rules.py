"""What the site's conduits allow, decided once per kind of record rather than once per record.

A record's verdict depends only on a few small codes: the pair of its source and destination
classes (a class is a zone, or an asset that a channel names as client or server), its transport
and responder port (ports no channel names share one class per transport), its protocol and its
operation. Pairs that no conduit joins need nothing more (in no zone, in one zone, or without a
conduit), so only the pairs a conduit joins get a code of their own, which keeps the key space
small enough for a dense table. `SiteRules.keys` packs the codes into one integer per record;
`SiteRules.decide` gives the verdict of one key (`detection.channels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.schema import Operation, Protocol
from plantwarden.detection.channels import (
    ALLOWED,
    NO_CONDUIT,
    NO_OPERATION,
    TRANSPORTS,
    UNZONED,
    Verdict,
    alternative,
    compile_channels,
    verdict,
)
from plantwarden.detection.windows import WindowClock
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import Channel, SiteModel

Array = npt.NDArray[Any]
OPERATION_CODES = NO_OPERATION + 1
PROTOCOL_CODES = max(Protocol) + 2  # the known codes, then one for any other
_IN_NO_ZONE, _IN_ONE_ZONE, _NO_CONDUIT = 0, 1, 2  # pair codes that need nothing more
_FIRST_JOINED = 3


class SiteRules:
    """The site's zones, conduits and channels compiled for `keys` and `decide`."""

    def __init__(self, site: SiteModel, lookup: ZoneLookup, clock: WindowClock) -> None:
        self.site = site
        self.lookup = lookup
        zones = {zone_id: i for i, zone_id in enumerate(lookup.zone_ids)}
        assets = {asset_id: i for i, asset_id in enumerate(lookup.asset_ids)}
        self.channels = compile_channels(site, zones, assets, clock)
        self._join(site, zones)
        self._classes(lookup, {a for r in self.channels for a in (r.clients or set()) | (r.servers or set())})
        self._pairs()
        self._codes()
        self._between: dict[tuple[str, str], tuple[tuple[str, ...], tuple[Channel, ...]]] = {}
        self.key_space = len(self.pair_classes) * len(self.port_ports) * PROTOCOL_CODES * OPERATION_CODES

    def _join(self, site: SiteModel, zones: dict[str, int]) -> None:
        """Per ordered pair of zones a conduit joins: its conduits and their channels, in order."""
        self.joined: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
        for index, conduit in enumerate(site.conduits):
            members = [zones[z] for z in conduit.zones]
            for a in members:
                for b in members:
                    if a != b:
                        conduits, _ = self.joined.setdefault((a, b), ([], []))
                        conduits.append(index)
        for index, rule in enumerate(self.channels):
            for conduits, channels in self.joined.values():
                if rule.conduit in conduits and index not in channels:
                    channels.append(index)

    def _classes(self, lookup: ZoneLookup, named: set[int]) -> None:
        """Endpoint classes: 0 no zone, then one per zone, then one per asset a channel names."""
        zones = len(lookup.zone_ids)
        named_assets = sorted(named)
        self.class_zone = np.array([-1, *range(zones)] + [0] * len(named_assets), dtype=np.int64)
        self.class_asset = np.full(len(self.class_zone), -1, dtype=np.int64)
        of_asset = {asset: zones + 1 + k for k, asset in enumerate(named_assets)}
        self.endpoint_class = lookup.endpoint_zone.astype(np.int64) + 1
        for endpoint, asset in enumerate(lookup.endpoint_asset.tolist()):
            if asset in of_asset:
                self.endpoint_class[endpoint] = of_asset[asset]
                self.class_zone[of_asset[asset]] = lookup.endpoint_zone[endpoint]
                self.class_asset[of_asset[asset]] = asset

    def _pairs(self) -> None:
        """`pair_code[source class * classes + destination class]`; `pair_classes[code]` the
        classes of each joined pair's code (the first three codes stand for no pair)."""
        classes = len(self.class_zone)
        source, destination = np.divmod(np.arange(classes * classes), classes)
        zone_a, zone_b = self.class_zone[source], self.class_zone[destination]
        joined = np.array(
            [(a, b) in self.joined for a, b in zip(zone_a.tolist(), zone_b.tolist(), strict=True)]
        )
        code = np.full(classes * classes, _NO_CONDUIT, dtype=np.int64)
        code[zone_a == zone_b] = _IN_ONE_ZONE
        code[joined] = _FIRST_JOINED + np.arange(int(joined.sum()))
        code[(source == 0) | (destination == 0)] = _IN_NO_ZONE
        self.pair_code = code
        pairs = [(-1, -1)] * _FIRST_JOINED + list(
            zip(source[joined].tolist(), destination[joined].tolist(), strict=True)
        )
        self.pair_classes: list[tuple[int, int]] = pairs

    def _codes(self) -> None:
        """Port classes (0-2: any port no channel names, for tcp, udp and other transports; then
        one per (transport, port) a channel names), and the code tables of the other columns."""
        named = sorted({(r.transport, port) for r in self.channels for port in r.ports or ()})
        self.port_ports: list[tuple[int, int | None]] = [(0, None), (1, None), (2, None), *named]
        self.port_class = np.repeat(np.arange(3, dtype=np.int64), 1 << 16)
        for index, (transport, port) in enumerate(named, start=3):
            self.port_class[(transport << 16) | port] = index
        self.transport_code = np.full(256, 2, dtype=np.int64)
        self.transport_code[[6, 17]] = TRANSPORTS["tcp"], TRANSPORTS["udp"]
        self.protocol_code = np.full(256, PROTOCOL_CODES - 1, dtype=np.int64)
        self.operation_code = np.full(256, int(Operation.OTHER), dtype=np.int64)
        for protocol in Protocol:
            self.protocol_code[protocol] = protocol
        for operation in Operation:
            self.operation_code[operation] = operation
        self.operation_code[NO_OPERATION] = NO_OPERATION

    def between(self, zone_a: str, zone_b: str) -> tuple[tuple[str, ...], tuple[Channel, ...]]:
        """The conduits joining two zones, and their channels between them (either way)."""
        pair = (zone_a, zone_b)
        if pair not in self._between:
            joining = [c for c in self.site.conduits if {zone_a, zone_b} <= set(c.zones)]
            channels = [
                ch
                for c in joining
                for ch in c.channels
                if {zone_a, zone_b} <= {*ch.initiators, *ch.responders}
            ]
            self._between[pair] = (tuple(c.id for c in joining), tuple(channels))
        return self._between[pair]

    def keys(self, src_endpoint: Array, dst_endpoint: Array, columns: dict[str, Array]) -> Array:
        """One key per record from its endpoints, `transport`, `dst_port`, `protocol`, `operation`."""
        classes = len(self.class_zone)
        pair = self.endpoint_class[src_endpoint] * classes + self.endpoint_class[dst_endpoint]
        service = (self.transport_code[columns["transport"]] << 16) | columns["dst_port"]
        key = self.pair_code[pair] * len(self.port_ports) + self.port_class[service]
        key = key * PROTOCOL_CODES + self.protocol_code[columns["protocol"]]
        found: Array = key * OPERATION_CODES + self.operation_code[columns["operation"]]
        return found

    def decide(self, key: int) -> Verdict:
        """The verdict of every record with this key."""
        key, operation = divmod(key, OPERATION_CODES)
        key, protocol = divmod(key, PROTOCOL_CODES)
        pair, port = divmod(key, len(self.port_ports))
        if pair < _FIRST_JOINED:
            return {_IN_NO_ZONE: Verdict(UNZONED), _IN_ONE_ZONE: ALLOWED, _NO_CONDUIT: Verdict(NO_CONDUIT)}[
                pair
            ]
        source, destination = self.pair_classes[pair]
        zones = int(self.class_zone[source]), int(self.class_zone[destination])
        assets = int(self.class_asset[source]), int(self.class_asset[destination])
        conduits, channels = self.joined[zones]
        found = [
            fits
            for index in channels
            for fits in [
                alternative(
                    self.channels[index], index, zones, assets, self.port_ports[port], protocol, operation
                )
            ]
            if fits is not None
        ]
        return verdict(found, conduits[0], self.channels)
