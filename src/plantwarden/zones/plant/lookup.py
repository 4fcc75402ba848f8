"""Addresses to zones and assets, vectorised over the records plane's 16-byte address column.

A `ZoneLookup` answers, for every record at once, which endpoint of the site an address is: a
declared asset (its zone is the asset's, wherever the address lies), else the zone whose subnet
holds it, else nothing. A zone only holds addresses of its own network segment, since plants
reuse the same cell subnets behind NAT.

IPv4 (the 16-byte column holds it as `::ffff:a.b.c.d`) goes through a three-level table indexed
by the address's top 16 bits, then the next 8, then the last 8: three gathers per address, no
search. IPv6 goes through a binary search over the sorted interval starts (slower, still
vectorised). Both are built from the same elementary intervals: the space cut at every subnet
edge and around every asset address, each piece holding one endpoint.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.schema import ADDRESS_DTYPE, TEXT, address
from plantwarden.zones.plant.model import SiteModel

Array = npt.NDArray[Any]
NO_ENDPOINT = 0
"""The endpoint of an address that is in no zone."""
_MAPPED_LOW = 0xFFFF0000  # bytes 8-11 of a mapped address (0, 0, 0xff, 0xff), read little-endian
_COMPARED_SEGMENTS = 8  # up to this many segments, a mixed column is compared with each
_KEY_BYTES = 18  # 2 bytes of segment code, then the 16-byte address
_Piece = tuple[int, int, int]  # first address, last address, endpoint


class ZoneLookup:
    """Which zone (and which declared asset) each address of a site is, per network segment.

    Endpoints are numbered: 0 is no zone; 1 .. Z the zones of `site.zones` (an address of a
    subnet); Z + 1 .. Z + A the assets of `site.assets` (a declared address). `endpoint_zone`
    and `endpoint_asset` map endpoints to indexes into `zone_ids` and `asset_ids` (-1: none).
    """

    def __init__(self, site: SiteModel) -> None:
        self.site = site
        self.zone_ids: tuple[str, ...] = tuple(zone.id for zone in site.zones)
        self.asset_ids: tuple[str, ...] = tuple(asset.id for asset in site.assets)
        self.segments: tuple[str, ...] = tuple(sorted({zone.segment for zone in site.zones}))
        zone_index = {zone_id: i for i, zone_id in enumerate(self.zone_ids)}
        asset_zones = [_asset_zone(zone_index, asset.zone, asset.id) for asset in site.assets]
        self.endpoint_zone = np.array([-1, *range(len(self.zone_ids)), *asset_zones], dtype=np.int32)
        self.endpoint_asset = np.array(
            [-1] * (len(self.zone_ids) + 1) + list(range(len(self.asset_ids))), dtype=np.int32
        )
        self._segment_code = {name: code for code, name in enumerate(self.segments)}
        self._v4 = _Table4()
        v6_keys: list[bytes] = []
        v6_values: list[int] = []
        for code, segment in enumerate((*self.segments, None)):
            pieces = self._pieces(segment)
            self._v4.add_segment(_elementary(*pieces[4], 32))
            for start, value in _elementary(*pieces[6], 128):
                v6_keys.append(code.to_bytes(2, "big") + start.to_bytes(16, "big"))
                v6_values.append(value)
        self._v4.finish()
        self._v6_keys = np.array(v6_keys, dtype=f"S{_KEY_BYTES}")
        self._v6_values = np.array(v6_values, dtype=np.int32)

    def _pieces(self, segment: str | None) -> dict[int, tuple[list[_Piece], list[_Piece]]]:
        """Per IP version, the subnets and the asset addresses of a segment (None: a segment the
        site has no zone in, so nothing)."""
        pieces: dict[int, tuple[list[_Piece], list[_Piece]]] = {4: ([], []), 6: ([], [])}
        first_asset = len(self.zone_ids) + 1
        for index, zone in enumerate(self.site.zones):
            if zone.segment == segment:
                for net in zone.subnets:
                    last = int(net.broadcast_address)
                    pieces[net.version][0].append((int(net.network_address), last, index + 1))
        for index, asset in enumerate(self.site.assets):
            if self.site.zone(asset.zone).segment == segment:
                for host in asset.addresses:
                    mapped = host.ipv4_mapped if isinstance(host, ipaddress.IPv6Address) else None
                    plain = mapped or host
                    pieces[plain.version][1].append((int(plain), int(plain), first_asset + index))
        return pieces

    def segment_codes(self, segments: Array | str) -> Array:
        """Each record's segment as this lookup's code (segments the site has no zone in share one).
        A constant column gives one code; a mixed one costs a comparison per segment of the site."""
        unknown = len(self.segments)
        if isinstance(segments, str):
            return np.full(1, self._segment_code.get(segments, unknown), dtype=np.int64)
        if not len(segments) or bool(np.all(segments == segments[0])):
            first = str(segments[0]) if len(segments) else ""
            return np.full(1, self._segment_code.get(first, unknown), dtype=np.int64)
        if len(self.segments) > _COMPARED_SEGMENTS:
            names, inverse = np.unique(segments.astype(str), return_inverse=True)
            codes = np.array([self._segment_code.get(str(n), unknown) for n in names], dtype=np.int64)
            return codes[inverse.reshape(-1)]
        codes = np.full(len(segments), unknown, dtype=np.int64)
        for code, name in enumerate(self.segments):
            codes[segments == name] = code
        return codes

    def endpoints(self, addresses: Array, segments: Array | str) -> Array:
        """The endpoint of each 16-byte address (`ADDRESS_DTYPE`) in its record's segment."""
        codes = np.broadcast_to(self.segment_codes(segments), (len(addresses),))
        return self.endpoints_by_code(addresses, codes)

    def endpoints_by_code(self, addresses: Array, codes: Array) -> Array:
        """`endpoints` with the segments already as codes (`segment_codes`), for several columns."""
        column = np.ascontiguousarray(addresses, dtype=ADDRESS_DTYPE)
        halves = column.view("<u8").reshape(-1, 2)
        mapped = (halves[:, 0] == 0) & ((halves[:, 1] & 0xFFFFFFFF) == _MAPPED_LOW)
        ipv4 = column.view(">u4").reshape(-1, 4)[:, 3].astype(np.uint32)
        if bool(np.all(mapped)):
            return self._v4.find(codes, ipv4)
        found = np.zeros(len(column), dtype=np.int32)
        found[mapped] = self._v4.find(codes[mapped], ipv4[mapped])
        others = ~mapped
        raw = column.view(np.uint8).reshape(-1, 16)
        found[others] = self._find6(codes[others], raw[others])
        return found

    def _find6(self, codes: Array, raw: Array) -> Array:
        keys = np.empty((len(raw), _KEY_BYTES), dtype=np.uint8)
        keys[:, :2] = codes.astype(">u2").view(np.uint8).reshape(-1, 2)
        keys[:, 2:] = raw
        where = np.searchsorted(self._v6_keys, keys.view(f"S{_KEY_BYTES}").reshape(-1), side="right") - 1
        result: Array = self._v6_values[where]
        return result

    def zones(self, addresses: Array, segments: Array | str) -> Array:
        """Each address's zone as an index into `zone_ids` (-1: in no zone)."""
        zones: Array = self.endpoint_zone[self.endpoints(addresses, segments)]
        return zones

    def _endpoint_of(self, text: str, segment: str) -> int:
        try:
            packed = address(text)
        except ValueError:
            raise InvalidInput(f"{text!r} is not an IP address") from None
        column = np.array([packed], dtype=ADDRESS_DTYPE)
        segments = np.array([segment], dtype=TEXT)
        return int(self.endpoints(column, segments)[0])

    def zone_of(self, text: str, segment: str = "default") -> str | None:
        """The zone of an address given as text, or None when it is in no zone."""
        zone = int(self.endpoint_zone[self._endpoint_of(text, segment)])
        return self.zone_ids[zone] if zone >= 0 else None

    def asset_of(self, text: str, segment: str = "default") -> str | None:
        """The declared asset with this address, or None."""
        asset = int(self.endpoint_asset[self._endpoint_of(text, segment)])
        return self.asset_ids[asset] if asset >= 0 else None


def _asset_zone(zone_index: dict[str, int], zone_id: str, asset_id: str) -> int:
    if zone_id not in zone_index:
        raise InvalidInput(f"asset {asset_id} names zone {zone_id!r}, which the site does not have")
    return zone_index[zone_id]


def _elementary(subnets: Sequence[_Piece], hosts: Sequence[_Piece], bits: int) -> list[tuple[int, int]]:
    """The address space cut into (first address, endpoint) runs from address 0, in order.
    Hosts (declared asset addresses) win over the subnet around them; subnets do not overlap."""
    ordered = sorted(subnets)
    firsts = [first for first, _, _ in ordered]
    at_host = {first: endpoint for first, _, endpoint in hosts}
    cuts = {0}
    for first, last, _ in ordered:
        cuts.update((first, last + 1))
    for host in at_host:
        cuts.update((host, host + 1))
    runs: list[tuple[int, int]] = []
    for start in sorted(cut for cut in cuts if cut < 1 << bits):
        endpoint = at_host.get(start)
        if endpoint is None:
            at = bisect.bisect_right(firsts, start) - 1
            endpoint = ordered[at][2] if at >= 0 and ordered[at][1] >= start else NO_ENDPOINT
        if not runs or runs[-1][1] != endpoint:
            runs.append((start, endpoint))
    return runs


class _Table4:
    """The IPv4 table: level 1 per segment and top 16 bits, levels 2 and 3 of 256 entries each.
    A level-1 entry names a level-2 block, a level-2 entry a level-3 block, a level-3 entry the
    endpoint; a range that one endpoint fills shares that endpoint's uniform blocks."""

    def __init__(self) -> None:
        self.level1: list[Array] = []
        self.level2: list[Array] = []
        self.level3: list[Array] = []
        self._uniform2: dict[int, int] = {}
        self._uniform3: dict[int, int] = {}

    def add_segment(self, runs: list[tuple[int, int]]) -> None:
        starts = np.array([s for s, _ in runs], dtype=np.int64)
        values = np.array([v for _, v in runs], dtype=np.int32)
        blocks = np.arange(1 << 16, dtype=np.int64) << 16
        at_block = values[np.searchsorted(starts, blocks, side="right") - 1]
        distinct, inverse = np.unique(at_block, return_inverse=True)
        level1 = np.array([self._uniform2_of(v) for v in distinct.tolist()], dtype=np.int32)[inverse]
        for block in np.unique(starts[(starts & 0xFFFF) != 0] >> 16).tolist():
            level1[block] = self._split2(block << 16, starts, values)
        self.level1.append(level1)

    def _split2(self, base: int, starts: Array, values: Array) -> int:
        subs = base + (np.arange(256, dtype=np.int64) << 8)
        at_sub = values[np.searchsorted(starts, subs, side="right") - 1]
        table = np.array([self._uniform3_of(int(v)) for v in at_sub.tolist()], dtype=np.int32)
        inside = starts[(starts > base) & (starts < base + (1 << 16)) & ((starts & 0xFF) != 0)]
        for sub in np.unique((inside - base) >> 8).tolist():
            hosts = base + (sub << 8) + np.arange(256, dtype=np.int64)
            self.level3.append(values[np.searchsorted(starts, hosts, side="right") - 1])
            table[sub] = len(self.level3) - 1
        self.level2.append(table)
        return len(self.level2) - 1

    def _uniform3_of(self, endpoint: int) -> int:
        if endpoint not in self._uniform3:
            self.level3.append(np.full(256, endpoint, dtype=np.int32))
            self._uniform3[endpoint] = len(self.level3) - 1
        return self._uniform3[endpoint]

    def _uniform2_of(self, endpoint: int) -> int:
        if endpoint not in self._uniform2:
            self.level2.append(np.full(256, self._uniform3_of(endpoint), dtype=np.int32))
            self._uniform2[endpoint] = len(self.level2) - 1
        return self._uniform2[endpoint]

    def finish(self) -> None:
        self.table1 = np.concatenate(self.level1)
        self.table2 = np.concatenate(self.level2)
        self.table3 = np.concatenate(self.level3)

    def find(self, codes: Array, ips: Array) -> Array:
        """The endpoint of each IPv4 address (uint32) in the segment of its code."""
        first = self.table1[(codes.astype(np.uint32) << 16) | (ips >> 16)].view(np.uint32)
        second = self.table2[(first << 8) | ((ips >> 8) & 0xFF)].view(np.uint32)
        found: Array = self.table3[(second << 8) | (ips & 0xFF)]
        return found
