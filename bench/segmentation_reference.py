"""The zone check done the obvious way, one record at a time, with `ipaddress` and `zoneinfo`.

It states the rules of `detection.segmentation` as plainly as possible, so that the benchmark
can both time the fast check against it and prove that both give every record the same rule
bits. Addresses are looked up as a straightforward program would: declared assets in a dict,
then every subnet of the record's segment in turn.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from plantwarden.core.records.schema import Operation, address_text
from plantwarden.detection.channels import CHANNEL, CLEARTEXT, NO_CONDUIT, OPERATION, UNZONED, WINDOW
from plantwarden.zones.plant.model import WINDOWED_OPERATIONS, Channel, SiteModel
from plantwarden.zones.plant.protocols import CLEARTEXT_RECORD_PROTOCOLS, SERVICES

_TRANSPORTS = {6: "tcp", 17: "udp"}


class ReferenceCheck:
    """Rule bits of one record at a time."""

    def __init__(self, site: SiteModel) -> None:
        self.site = site
        self.timezone = ZoneInfo(site.timezone)
        self.assets: dict[tuple[str, Any], tuple[str, str]] = {}
        for asset in site.assets:
            segment = site.zone(asset.zone).segment
            for host in asset.addresses:
                mapped = host.ipv4_mapped if isinstance(host, ipaddress.IPv6Address) else None
                self.assets[(segment, mapped or host)] = (asset.zone, asset.id)

    def place(self, packed: bytes, segment: str) -> tuple[str | None, str | None]:
        """(zone, asset) of an address in a segment."""
        host = ipaddress.ip_address(address_text(packed))
        if (segment, host) in self.assets:
            return self.assets[(segment, host)]
        for zone in self.site.zones:
            if zone.segment == segment and any(
                net.version == host.version and host in net for net in zone.subnets
            ):
                return zone.id, None
        return None, None

    def bits(self, record: dict[str, Any], operation: str | None) -> int:
        """The rule bits of a record (a row of a batch); `operation` None for flows."""
        if record["site"] != self.site.id:
            return 0
        src_zone, src_asset = self.place(record["src_addr"], record["segment"])
        dst_zone, dst_asset = self.place(record["dst_addr"], record["segment"])
        if src_zone is None or dst_zone is None:
            return UNZONED
        if src_zone == dst_zone:
            return 0
        conduits = [c for c in self.site.conduits if src_zone in c.zones and dst_zone in c.zones]
        if not conduits:
            return NO_CONDUIT
        local = datetime.fromtimestamp(record["ts"] // 1_000_000_000, UTC).astimezone(self.timezone)
        found = []
        for conduit in conduits:
            for channel in conduit.channels:
                if self._carries(channel, record, (src_zone, src_asset), (dst_zone, dst_asset)):
                    found.append(self._broken(channel, record["protocol"], operation, local))
        if not found:
            return CHANNEL
        return min(found, key=lambda bits: bits.bit_count())

    def _carries(
        self,
        channel: Channel,
        record: dict[str, Any],
        src: tuple[str, str | None],
        dst: tuple[str, str | None],
    ) -> bool:
        service = SERVICES[channel.protocol]
        ports = channel.ports or service.ports
        if channel.transport != _TRANSPORTS.get(record["transport"]):
            return False
        if ports and record["dst_port"] not in ports:
            return False
        if (src[1] not in channel.clients) if channel.clients else (src[0] not in channel.initiators):
            return False
        if (dst[1] not in channel.servers) if channel.servers else (dst[0] not in channel.responders):
            return False
        protocol = record["protocol"]
        generic = channel.protocol in ("tcp", "udp")
        carried = protocol == 0 or generic or service.record_protocol == protocol
        return carried or self._cleartext(channel, protocol)

    @staticmethod
    def _cleartext(channel: Channel, protocol: int) -> bool:
        requires = channel.encrypted or SERVICES[channel.protocol].encrypted
        return requires and protocol in CLEARTEXT_RECORD_PROTOCOLS

    def _broken(self, channel: Channel, protocol: int, operation: str | None, local: datetime) -> int:
        bits = CLEARTEXT if self._cleartext(channel, protocol) else 0
        if operation is not None and operation not in channel.operations:
            bits |= OPERATION
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        inside = [self.site.windows[w].contains(weekday, minute) for w in channel.schedule]
        if channel.schedule and not any(inside):
            bits |= WINDOW
        maintained = [self.site.windows[w].contains(weekday, minute) for w in channel.maintenance]
        if operation in WINDOWED_OPERATIONS and channel.maintenance and not any(maintained):
            bits |= WINDOW
        return bits


def operation_name(code: int) -> str:
    """A protocol record's operation code as the model names it."""
    return Operation(code).name.lower()
