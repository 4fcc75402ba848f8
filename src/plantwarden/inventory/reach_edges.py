"""The stored communication edges of a site as observed edges, for reachability over observed traffic.

A stored edge (client, server, protocol) becomes one `zones.reach.ObservedEdge` per TCP or UDP
service it used (server port), with the operation categories of the requests seen on it
(`StoredEdge.operations`, the categories the edge book took from each request's record; its
function statistics break the same requests down by function code). An edge with no operation
seen (a connection the sensor does not decode, or no request yet) still shows that the server
accepts the service. Malformed requests grant nothing; a category this version does not know
counts as `other`.

Left out, and counted: edges to a multicast or broadcast group (no one host accepts them), over
another IP protocol or without a port, and edges on a network segment where no zone of the model
lies (plants reuse subnets behind NAT, so their addresses cannot be placed in the model's zones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from plantwarden.inventory.models import StoredEdge
from plantwarden.inventory.queries import EdgeFilter, list_edges
from plantwarden.inventory.zoning_inputs import is_unicast, parse_address
from plantwarden.zones.plant.model import OPERATIONS, SiteModel
from plantwarden.zones.reach import ObservedEdge

TRANSPORTS = {6: "tcp", 17: "udp"}
"""IP protocol numbers of the transports reachability follows."""
READ_LIMIT = 10_000_000
"""Every edge of the site (list_edges pages; a site has far fewer)."""
LEFT_OUT_REASONS = {
    "group": "to a multicast or broadcast group",
    "transport": "over another IP protocol than TCP and UDP, or without a port",
    "segment": "on a network segment where no zone of the model lies",
}


@dataclass(frozen=True, slots=True)
class ObservedView:
    """The observed edges of a site, how many stored edges they came from, and what was left out."""

    edges: tuple[ObservedEdge, ...]
    stored: int
    left_out: Counter[str]

    def notes(self) -> list[str]:
        """What was left out, in words."""
        return [
            f"{count} stored edge(s) {LEFT_OUT_REASONS[why]}" for why, count in sorted(self.left_out.items())
        ]


def observed_view(session: Session, site: SiteModel) -> ObservedView:
    """Every stored edge of the site (by its id) as observed edges."""
    stored = [item.edge for item in list_edges(session, EdgeFilter(site=site.id, limit=READ_LIMIT))]
    return observed_edges(site, stored)


def observed_edges(site: SiteModel, stored: Iterable[StoredEdge]) -> ObservedView:
    """Stored edges as observed edges (see the module docstring)."""
    segments = {zone.segment for zone in site.zones}
    edges: list[ObservedEdge] = []
    left_out: Counter[str] = Counter()
    count = 0
    for edge in stored:
        count += 1
        reason = _left_out(edge, segments)
        if reason is not None:
            left_out[reason] += 1
            continue
        services = _services(edge)
        if not services:
            left_out["transport"] += 1
        edges.extend(_edge(edge, transport, port) for transport, port in services)
    return ObservedView(tuple(edges), count, left_out)


def edge_operations(names: Iterable[str]) -> frozenset[str]:
    """The operation categories of a stored edge as the model names them (see the module docstring)."""
    lowered = {name.lower() for name in names} - {"malformed"}
    return frozenset(name if name in OPERATIONS else "other" for name in lowered)


def _left_out(edge: StoredEdge, segments: set[str]) -> str | None:
    if edge.segment not in segments:
        return "segment"
    if not (is_unicast(parse_address(edge.client)) and is_unicast(parse_address(edge.server))):
        return "group"
    return None


def _services(edge: StoredEdge) -> list[tuple[str, int]]:
    found = []
    for number, port in edge.services:
        transport = TRANSPORTS.get(int(number))
        if transport is not None and 0 < int(port) < 65536:
            found.append((transport, int(port)))
    return sorted(set(found))


def _edge(edge: StoredEdge, transport: str, port: int) -> ObservedEdge:
    return ObservedEdge(
        parse_address(edge.client),
        parse_address(edge.server),
        transport,
        port,
        edge.protocol,
        edge_operations(edge.operations),
    )
