"""Traffic against a plant model, computed independently of the detection code: which stored
traffic crosses zones, which channel carries it (with `ipaddress`, from the model's values), and
the model with one conduit or channel removed (the mutation tests)."""

from __future__ import annotations

import dataclasses
import ipaddress

from plantwarden.core.records import schema
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.core.runtime import Runtime
from plantwarden.detection.zone_check import check_stored
from plantwarden.zones.plant.model import Channel, Conduit, SiteModel
from plantwarden.zones.plant.protocols import BY_RECORD_PROTOCOL

EVERYTHING = (0, 2**62)
TRANSPORTS = {6: "tcp", 17: "udp"}
Pair = tuple[str, str]
Traffic = tuple[str, str, str, int, str]


def observed(runtime: Runtime) -> set[Traffic]:
    """(source, destination, transport, destination port, protocol) of every stored record and flow."""
    seen = set()
    for kind in ("protocol", "protocol_read_minutes", "flows"):
        batch = query(runtime.records(), RecordQuery(kind, *EVERYTHING))
        columns = batch.columns
        for row in range(len(batch)):
            seen.add(
                (
                    schema.address_text(bytes(columns["src_addr"][row])),
                    schema.address_text(bytes(columns["dst_addr"][row])),
                    TRANSPORTS.get(int(columns["transport"][row]), "other"),
                    int(columns["dst_port"][row]),
                    BY_RECORD_PROTOCOL.get(int(columns["protocol"][row]), ""),
                )
            )
    return seen


def zone_of(site: SiteModel, address: str) -> str | None:
    parsed = ipaddress.ip_address(address)
    for asset in site.assets:
        if parsed in asset.addresses:
            return asset.zone
    return next((z.id for z in site.zones if any(parsed in subnet for subnet in z.subnets)), None)


def carries(site: SiteModel, channel: Channel, traffic: Traffic) -> bool:
    """Whether the channel lets this traffic through (direction, hosts, transport, port, protocol)."""
    src, dst, transport, port, protocol = traffic
    if channel.clients:
        sources = {str(a) for asset in channel.clients for a in site.asset(asset).addresses}
        if src not in sources:
            return False
    elif zone_of(site, src) not in channel.initiators:
        return False
    if channel.servers:
        if dst not in {str(a) for asset in channel.servers for a in site.asset(asset).addresses}:
            return False
    elif zone_of(site, dst) not in channel.responders:
        return False
    same_protocol = protocol in ("", channel.protocol) or channel.protocol in ("tcp", "udp")
    return transport == channel.transport and port in channel.ports and same_protocol


def crossing(site: SiteModel, traffic: set[Traffic]) -> set[Traffic]:
    return {t for t in traffic if zone_of(site, t[0]) != zone_of(site, t[1])}


def allowed(site: SiteModel, traffic: Traffic) -> bool:
    return any(carries(site, channel, traffic) for conduit in site.conduits for channel in conduit.channels)


def violating_pairs(runtime: Runtime, site: SiteModel) -> set[Pair]:
    report = check_stored(runtime.records(), site, *EVERYTHING)
    return {(v.src, v.dst) for v in report.violations}


def without_conduit(site: SiteModel, conduit_id: str) -> SiteModel:
    return dataclasses.replace(site, conduits=tuple(c for c in site.conduits if c.id != conduit_id))


def without_channel(site: SiteModel, conduit: Conduit, channel_id: str) -> SiteModel:
    kept = tuple(ch for ch in conduit.channels if ch.id != channel_id)
    conduits = tuple(
        dataclasses.replace(c, channels=kept) if c.id == conduit.id else c for c in site.conduits
    )
    return dataclasses.replace(site, conduits=conduits)


def mutations(site: SiteModel) -> list[tuple[str, SiteModel]]:
    """The site without each of its conduits, then without each of its channels."""
    removed = [(f"conduit {c.id}", without_conduit(site, c.id)) for c in site.conduits]
    return removed + [
        (f"channel {c.id}/{ch.id}", without_channel(site, c, ch.id))
        for c in site.conduits
        for ch in c.channels
    ]
