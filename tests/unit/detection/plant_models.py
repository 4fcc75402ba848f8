"""Plant models and record batches for the zone-check tests, built straight from the dataclasses.

The plant (site `plant-a`, Europe/Berlin):

| zone | segment | subnets | assets |
|---|---|---|---|
| office | default | 10.9.0.0/24 | |
| scada | default | 10.1.0.0/24 | eng-ws 10.1.0.50 |
| cell | default | 10.2.0.0/24 | plc-1 10.2.0.10; hmi-x 10.1.0.99 (declared outside the subnet) |
| dmz | default | 10.5.0.0/24, fd00:5::/64 | historian 10.5.0.7 |
| line2 | line-2 | 10.2.0.0/24 (the same subnet as cell, behind NAT) | |

Conduits: `scada-cell` (modbus scada -> cell read/write; s7comm from eng-ws to cell with program
and control in the `maint` window), `cell-dmz` (opcua dmz -> cell reads, only in the `night`
schedule; mbaps scada -> dmz, encrypted; modbus over tcp/5020 dmz -> cell that must be
encrypted). `scada-dmz` joins scada and dmz (https scada -> dmz). Office has no conduit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import (
    FLOWS,
    PROTOCOL_RECORDS,
    READ_MINUTES,
    Operation,
    Protocol,
    address,
)
from plantwarden.zones.plant.model import (
    Asset,
    Channel,
    Conduit,
    SecurityLevel,
    SiteModel,
    Window,
    Zone,
)
from plantwarden.zones.plant.protocols import SERVICES

SL = SecurityLevel.uniform(2)
SITE = "plant-a"


def zone(zone_id: str, *subnets: str, segment: str = "default") -> Zone:
    networks = tuple(ipaddress.ip_network(s) for s in subnets)
    return Zone(zone_id, zone_id.title(), 1, networks, (), SL, segment=segment)


def asset(asset_id: str, zone_id: str, *addresses: str) -> Asset:
    return Asset(asset_id, asset_id, tuple(ipaddress.ip_address(a) for a in addresses), zone_id)


def channel(
    channel_id: str,
    protocol: str,
    initiators: str,
    responders: str,
    operations: Sequence[str] = ("read",),
    **extra: Any,
) -> Channel:
    service = SERVICES[protocol]
    values: dict[str, Any] = {"transport": service.transport, "ports": service.ports, **extra}
    return Channel(
        id=channel_id,
        protocol=protocol,
        initiators=(initiators,),
        responders=(responders,),
        operations=frozenset(operations),
        **values,
    )


def conduit(conduit_id: str, zones: Sequence[str], *channels: Channel) -> Conduit:
    return Conduit(conduit_id, conduit_id, tuple(zones), channels, SL)


WINDOWS: Mapping[str, Window] = MappingProxyType(
    {
        "maint": Window("maint", (4, 5), 22 * 60, 6 * 60),  # fri and sat 22:00 to 06:00 next day
        "night": Window("night", (0, 1, 2, 3, 4, 5, 6), 0, 5 * 60),
        "day": Window("day", (0, 1, 2, 3, 4), 8 * 60, 17 * 60),
        "sunday-2am": Window("sunday-2am", (6,), 2 * 60, 3 * 60),
    }
)


def plant_site(timezone: str = "Europe/Berlin", **channel_changes: Channel) -> SiteModel:
    """The test plant (see the module's docstring); `channel_changes` replaces channels by id."""
    channels = {
        "modbus": channel("modbus", "modbus", "scada", "cell", ("read", "write")),
        "eng-s7": channel(
            "eng-s7",
            "s7comm",
            "scada",
            "cell",
            ("read", "write", "program", "control"),
            clients=("eng-ws",),
            maintenance=("maint",),
        ),
        "opcua": channel("opcua", "opcua", "dmz", "cell", ("read",), schedule=("night",)),
        "mbaps": channel("mbaps", "mbaps", "scada", "dmz", ("read", "write")),
        "modbus-tls": channel(
            "modbus-tls", "modbus", "dmz", "cell", ("read",), ports=(5020,), encrypted=True
        ),
        "https": channel("https", "https", "scada", "dmz"),
    }
    channels.update(channel_changes)
    return SiteModel(
        id=SITE,
        name="Plant A",
        timezone=timezone,
        zones=(
            zone("office", "10.9.0.0/24"),
            zone("scada", "10.1.0.0/24"),
            zone("cell", "10.2.0.0/24"),
            zone("dmz", "10.5.0.0/24", "fd00:5::/64"),
            zone("line2", "10.2.0.0/24", segment="line-2"),
        ),
        conduits=(
            conduit("scada-cell", ("scada", "cell"), channels["modbus"], channels["eng-s7"]),
            conduit(
                "cell-dmz",
                ("cell", "dmz", "scada"),
                channels["opcua"],
                channels["mbaps"],
                channels["modbus-tls"],
            ),
            conduit("scada-dmz", ("scada", "dmz"), channels["https"]),
        ),
        assets=(
            asset("eng-ws", "scada", "10.1.0.50"),
            asset("plc-1", "cell", "10.2.0.10"),
            asset("hmi-x", "cell", "10.1.0.99"),
            asset("historian", "dmz", "10.5.0.7"),
        ),
        windows=WINDOWS,
    )


def ns(moment: str) -> int:
    """An ISO 8601 time (with its offset) as nanoseconds since the epoch."""
    return int(datetime.fromisoformat(moment).timestamp()) * 1_000_000_000


WEDNESDAY_NOON = ns("2026-11-25T12:00:00+01:00")


def protocol_records(rows: Sequence[Mapping[str, Any]]) -> RecordBatch:
    """Protocol records: each row names what differs from a Modbus read from the SCADA server to
    the PLC on Wednesday noon (src, dst as text; operation by name; protocol by name)."""
    columns = _endpoints(rows)
    columns["operation"] = [Operation[r.get("operation", "read").upper()] for r in rows]
    for name, default in (("function", 3), ("unit", 1), ("address", 0), ("quantity", 1), ("status", 0)):
        columns[name] = [r.get(name, default) for r in rows]
    columns["value"] = np.nan
    columns["response_ns"] = 1_000_000
    return RecordBatch.build(PROTOCOL_RECORDS, columns, len(rows))


def read_minutes(rows: Sequence[Mapping[str, Any]]) -> RecordBatch:
    """Read aggregates (`requests` per row, default 10)."""
    columns = _endpoints(rows)
    columns.update(function=3, unit=1, address=0, quantity=1, errors=0)
    columns["requests"] = [r.get("requests", 10) for r in rows]
    columns["first_ts"] = columns["ts"]
    columns["last_ts"] = [t + 30_000_000_000 for t in columns["ts"]]
    return RecordBatch.build(READ_MINUTES, columns, len(rows))


def flows(rows: Sequence[Mapping[str, Any]]) -> RecordBatch:
    """Flows (protocol unknown unless given)."""
    columns = _endpoints([{"protocol": "unknown", **r} for r in rows])
    columns["ts_end"] = [t + 5_000_000_000 for t in columns["ts"]]
    columns.update(packets=10, bytes=1000)
    return RecordBatch.build(FLOWS, columns, len(rows))


def _endpoints(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def each(name: str, default: Any) -> list[Any]:
        return [r.get(name, default) for r in rows]

    segments = np.array(each("segment", "default"), dtype=object)
    sites = np.array(each("site", SITE), dtype=object)
    return {
        "ts": each("ts", WEDNESDAY_NOON),
        "site": sites,
        "segment": segments,
        "src_addr": [address(a) for a in each("src", "10.1.0.5")],
        "dst_addr": [address(a) for a in each("dst", "10.2.0.10")],
        "src_port": each("src_port", 40000),
        "dst_port": each("port", 502),
        "transport": [17 if t == "udp" else 6 for t in each("transport", "tcp")],
        "protocol": [Protocol[p.upper()] for p in each("protocol", "modbus")],
    }
