"""What the console's conduit page needs: its channels as rows, and the stored inventory's
traffic between hosts of its zones, each edge judged against the site's declared permits.

An edge is covered when a permit's sources hold its client and its destinations its server, with
the transport and server port of every service it used, the channel behind the permit carries
its protocol (a generic `tcp` / `udp` channel carries any), and the operations it saw are among
those the channels allow. A cleartext protocol on a channel that requires encryption is not
covered. Maintenance windows depend on the time of each request, which an edge does not keep:
the page names the windows a covered edge's program and control operations need.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from plantwarden.inventory.models import StoredEdge
from plantwarden.web.zone_views import Endpoints
from plantwarden.zones.plant.model import DAYS, WINDOWED_OPERATIONS, Channel, Conduit, SiteModel, Window
from plantwarden.zones.plant.permits import Permit, declared_permits
from plantwarden.zones.plant.protocols import SERVICES

EDGE_LIMIT = 5000
"""Stored edges of a site read for one conduit page at most, most recently seen first."""
EDGE_COLUMNS = (
    StoredEdge.client,
    StoredEdge.server,
    StoredEdge.segment,
    StoredEdge.protocol,
    cast(StoredEdge.services, Text).label("services"),
    cast(StoredEdge.operations, Text).label("operations"),
    StoredEdge.requests,
    StoredEdge.last_seen,
)
"""What the page shows of an edge and needs to judge it: no ORM object, no statistics, and the
JSON lists as their text (parsed once per distinct text, see `PermitJudge.coverage_of_text`)."""
TRANSPORTS = {6: "tcp", 17: "udp"}
GENERIC = frozenset({"tcp", "udp"})
IGNORED_OPERATIONS = frozenset({"malformed"})  # malformed requests are findings, not operations


@dataclass(frozen=True)
class Coverage:
    """Whether the declared channels cover an edge, which ones (`conduit/channel`), and why not."""

    covered: bool
    channels: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Traffic:
    """A stored communication edge between two zones of the conduit. Its services and operations
    stay JSON text until a page shows them: most edges of a big conduit are only counted."""

    client: str
    server: str
    client_zone: str
    server_zone: str
    protocol: str
    services_json: str
    operations_json: str
    requests: int
    last_seen: datetime
    coverage: Coverage

    @cached_property
    def ports(self) -> tuple[str, ...]:
        return tuple(f"{transport}/{port}" for transport, port in _services(self.services_json))

    @cached_property
    def operations(self) -> tuple[str, ...]:
        return _operations(self.operations_json)


def _services(text: str | None) -> list[tuple[str, int]]:
    return [(TRANSPORTS.get(int(p), f"ip{p}"), int(port)) for p, port in json.loads(text or "[]") or ()]


def _operations(text: str | None) -> tuple[str, ...]:
    return tuple(sorted({op.lower() for op in json.loads(text or "[]") or ()} - IGNORED_OPERATIONS))


def channel_rows(site: SiteModel, conduit: Conduit) -> list[dict[str, Any]]:
    """The conduit's channels as the page's table shows them."""
    return [_channel_row(site, channel) for channel in conduit.channels]


def _channel_row(site: SiteModel, channel: Channel) -> dict[str, Any]:
    service = SERVICES[channel.protocol]
    return {
        "id": channel.id,
        "protocol": channel.protocol,
        "ports": f"{channel.transport}/{','.join(str(port) for port in channel.ports) or 'any'}",
        "direction": f"{', '.join(channel.initiators)} \u2192 {', '.join(channel.responders)}",
        "operations": ", ".join(sorted(channel.operations)) or "none named",
        "maintenance": [_window_text(site, name) for name in channel.maintenance],
        "schedule": [_window_text(site, name) for name in channel.schedule],
        "encryption": _encryption(channel.encrypted, service.encrypted),
        "clients": ", ".join(channel.clients) or "any host of " + ", ".join(channel.initiators),
        "servers": ", ".join(channel.servers) or "any host of " + ", ".join(channel.responders),
    }


def _encryption(required: bool, encrypting: bool) -> str:
    protocol = "the protocol encrypts" if encrypting else "the protocol is cleartext"
    return f"required ({protocol})" if required else f"optional ({protocol})"


def _window_text(site: SiteModel, name: str) -> str:
    window = site.windows.get(name)
    return name if window is None else f"{name}: {describe_window(window)}"


def describe_window(window: Window) -> str:
    """`sat, sun 06:00-18:00`."""
    days = ", ".join(DAYS[day] for day in window.days)
    return f"{days} {_minute(window.start)}-{_minute(window.end)}"


def _minute(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def conduit_traffic(
    session: Session, site: SiteModel, conduit: Conduit, visible: Sequence[str]
) -> tuple[list[Traffic], bool]:
    """Edges between two different zones of the conduit, one of them visible to the caller, with
    their coverage; and whether more edges of the site were stored than were read."""
    endpoints = Endpoints(site)
    judge = PermitJudge(site)
    statement = (
        select(*EDGE_COLUMNS)
        .where(StoredEdge.site == site.id)
        .order_by(StoredEdge.last_seen.desc(), StoredEdge.id)
        .limit(EDGE_LIMIT + 1)
    )
    edges = session.execute(statement).all()
    read = edges[:EDGE_LIMIT]
    zones = endpoints.zones_of([(e.client, e.segment) for e in read] + [(e.server, e.segment) for e in read])
    found = []
    for edge, ends in zip(read, zip(zones[: len(read)], zones[len(read) :], strict=True), strict=True):
        if not _crosses(conduit, ends, visible):
            continue
        found.append(_traffic(edge, (str(ends[0]), str(ends[1])), judge))
    found.sort(key=lambda t: (t.coverage.covered, t.client_zone, t.server_zone, t.client, t.server))
    return found, len(edges) > EDGE_LIMIT


def _crosses(conduit: Conduit, ends: tuple[str | None, str | None], visible: Sequence[str]) -> bool:
    client, server = ends
    inside = client in conduit.zones and server in conduit.zones and client != server
    return inside and (client in visible or server in visible)


def _traffic(edge: Any, zones: tuple[str, str], judge: PermitJudge) -> Traffic:
    return Traffic(
        client=edge.client,
        server=edge.server,
        client_zone=zones[0],
        server_zone=zones[1],
        protocol=edge.protocol,
        services_json=edge.services or "[]",
        operations_json=edge.operations or "[]",
        requests=edge.requests,
        last_seen=edge.last_seen,
        coverage=judge.coverage_of_text(
            edge.client, edge.server, edge.protocol, edge.services or "[]", edge.operations or "[]"
        ),
    )


class PermitJudge:
    """The site's declared permits, each with the channel behind it."""

    def __init__(self, site: SiteModel) -> None:
        channels = {f"{c.id}/{ch.id}": ch for c in site.conduits for ch in c.channels}
        self.permits = [(permit, channels[permit.label]) for permit in declared_permits(site)]
        self._ranges = [(_ranges(p.sources), _ranges(p.destinations)) for p, _ in self.permits]
        self._holding: dict[tuple[str, bool], frozenset[int] | None] = {}
        self._judged: dict[tuple[frozenset[int], str, str, str], Coverage] = {}

    def coverage(
        self,
        client: str,
        server: str,
        protocol: str,
        services: Sequence[tuple[str, int]],
        operations: Sequence[str],
    ) -> Coverage:
        """Whether the channels cover this traffic (see the module's description)."""
        sources, destinations = self.holding(client, source=True), self.holding(server, source=False)
        if sources is None or destinations is None:
            return Coverage(False, (), "an end is not an IP address")
        return self._judge(sources & destinations, protocol, services, operations)

    def coverage_of_text(
        self, client: str, server: str, protocol: str, services_json: str, operations_json: str
    ) -> Coverage:
        """`coverage` of an edge whose services and operations are stored JSON text, remembered:
        edges between the same zones mostly share their permits, services and operations, so a
        page of thousands of edges parses and judges only its few distinct ones."""
        sources, destinations = self.holding(client, source=True), self.holding(server, source=False)
        if sources is None or destinations is None:
            return Coverage(False, (), "an end is not an IP address")
        key = (sources & destinations, protocol, services_json, operations_json)
        if key not in self._judged:
            self._judged[key] = self._judge(
                key[0], protocol, _services(services_json), _operations(operations_json)
            )
        return self._judged[key]

    def _judge(
        self,
        permits: frozenset[int],
        protocol: str,
        services: Sequence[tuple[str, int]],
        operations: Sequence[str],
    ) -> Coverage:
        reachable = [
            (permit, channel)
            for permit, channel in (self.permits[index] for index in sorted(permits))
            if all(_opens(permit, transport, port) for transport, port in services)
        ]
        carrying = [(p, ch) for p, ch in reachable if ch.protocol == protocol or ch.protocol in GENERIC]
        if not carrying:
            return Coverage(
                False, (), "no channel allows it" if not reachable else f"no channel carries {protocol}"
            )
        clear = [(p, ch) for p, ch in carrying if ch.encrypted and _cleartext(protocol)]
        if len(clear) == len(carrying):
            return Coverage(False, _labels(clear), "cleartext where the channel requires encryption")
        carrying = [pair for pair in carrying if pair not in clear]
        return _by_operations(carrying, operations)

    def holding(self, address: str, *, source: bool) -> frozenset[int] | None:
        """The indexes of the permits whose sources (else destinations) hold `address`; None if it
        is no IP address. Remembered: a page judges thousands of edges between far fewer hosts."""
        key = (address, source)
        if key not in self._holding:
            self._holding[key] = self._find_holding(address, source)
        return self._holding[key]

    def _find_holding(self, address: str, source: bool) -> frozenset[int] | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        number, version = int(ip), ip.version
        return frozenset(
            index
            for index, ranges in enumerate(self._ranges)
            if any(v == version and low <= number <= high for v, low, high in ranges[0 if source else 1])
        )


def _by_operations(carrying: list[tuple[Permit, Channel]], operations: Sequence[str]) -> Coverage:
    allowed = frozenset().union(*(permit.operations for permit, _ in carrying))
    missing = [op for op in operations if op not in allowed]
    if missing:
        return Coverage(False, _labels(carrying), "operations not allowed: " + ", ".join(missing))
    windowed = sorted({w for _, ch in carrying for w in ch.maintenance})
    needed = sorted(WINDOWED_OPERATIONS.intersection(operations))
    note = f"{', '.join(needed)} only in {', '.join(windowed)}" if needed and windowed else ""
    return Coverage(True, _labels(carrying), note)


def _labels(pairs: Sequence[tuple[Permit, Channel]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(permit.label for permit, _ in pairs))


def _ranges(networks: Sequence[Any]) -> tuple[tuple[int, int, int], ...]:
    """Networks as (IP version, first address, last address) numbers, quicker to test than `in`."""
    return tuple((n.version, int(n.network_address), int(n.broadcast_address)) for n in networks)


def _opens(permit: Permit, transport: str, port: int) -> bool:
    return permit.transport == transport and (not permit.ports or port in permit.ports)


def _cleartext(protocol: str) -> bool:
    service = SERVICES.get(protocol)
    return service is not None and not service.encrypted
