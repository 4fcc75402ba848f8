"""Snapshots of a small cell for the stored-inventory tests: two sensor runs over one HMI and one
PLC, built through the real asset book, with the edge and statistics the edge book would give."""

from __future__ import annotations

from plantwarden.core.records.schema import Protocol
from plantwarden.inventory import Asset, AssetBook, Edge, FunctionStatistics, Sighting
from plantwarden.inventory.roles import Role, RoleGuess
from tests.unit.inventory.support import CELL, SITE, S, arp, sighting

HMI, PLC = "10.0.0.9", "10.0.0.10"
HMI_MAC, PLC_MAC = "00:0c:29:00:00:09", "00:1d:9c:00:00:10"
MS = 1_000_000
READ_HOLDING = 3


def run_sightings(start: int, firmware: str = "33.11") -> list[Sighting]:
    """What one run sees from second `start` on: ARP of both hosts, the PLC's CIP identity."""
    return [
        arp(start, HMI, HMI_MAC),
        arp(start + 1, PLC, PLC_MAC),
        sighting(
            start + 2,
            "cip_identity",
            ip=PLC,
            confidence=0.95,
            vendor="Rockwell Automation",
            product_name="1756-L83E",
            firmware=firmware,
            serial="00a1b2c3",
        ),
        sighting(start + 30, "flow", ip=HMI, confidence=0.5),
    ]


def book_assets(sightings: list[Sighting]) -> list[Asset]:
    book = AssetBook()
    book.add_many(sightings)
    return list(book.assets())


def by_ip(assets: list[Asset], ip: str) -> Asset:
    return next(a for a in assets if any(item.address == ip for item in a.ips))


def polling_edge(start: int, requests: int = 60, client: str = HMI, server: str = PLC) -> Edge:
    return Edge(
        site=SITE,
        segment=CELL,
        client=client,
        server=server,
        protocol=Protocol.MODBUS,
        operations=frozenset({"READ"}),
        requests=requests,
        first_ns=start * S,
        last_ns=(start + requests - 1) * S,
        flows=1,
        packets=4 * requests,
        bytes=260 * requests,
        services=((6, 502),),
    )


def polling_statistics(
    requests: int = 60, median_ms: int = 3, client: str = HMI, server: str = PLC
) -> FunctionStatistics:
    return FunctionStatistics(
        site=SITE,
        segment=CELL,
        client=client,
        server=server,
        protocol=Protocol.MODBUS,
        function=READ_HOLDING,
        requests=requests,
        detailed=requests,
        unanswered=1,
        exceptions=2,
        aggregated_errors=0,
        responses=requests - 1,
        response_median_ns=median_ms * MS,
        response_p95_ns=2 * median_ms * MS,
        period_ns=1 * S,
        intervals=float(requests - 1),
    )


def plc_role(confidence: float = 0.9) -> RoleGuess:
    return RoleGuess(Role.PLC, confidence, ("serves Modbus/TCP to 1 client", "CIP identity: 1756-L83E"))
