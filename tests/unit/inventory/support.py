"""Hand-built sightings for the inventory tests."""

from __future__ import annotations

from plantwarden.inventory import Binding, SegmentAddress, Sighting

SITE = "riverside"
CELL = "cell-a"
S = 1_000_000_000
ROUTER_MAC = "02:00:00:00:00:fe"


def make(
    ts: int,
    source: str,
    ip: str,
    mac: str,
    binding: Binding,
    segment: str,
    confidence: float,
    attributes: dict[str, str],
) -> Sighting:
    return Sighting(
        ts_ns=ts * S,
        site=SITE,
        segment=segment,
        source=source,
        confidence=confidence,
        ip=ip,
        mac=mac,
        binding=binding,
        attributes=attributes,
    )


def sighting(
    ts: int,
    source: str,
    *,
    ip: str = "",
    mac: str = "",
    binding: Binding = Binding.NONE,
    segment: str = CELL,
    confidence: float = 0.9,
    **attributes: str,
) -> Sighting:
    return make(ts, source, ip, mac, binding, segment, confidence, attributes)


def arp(
    ts: int, ip: str, mac: str, *, segment: str = CELL, confidence: float = 0.9, **attributes: str
) -> Sighting:
    return make(ts, "arp", ip, mac, Binding.AUTHORITATIVE, segment, confidence, attributes)


def arp_with(ts: int, ip: str, mac: str, attributes: dict[str, str], segment: str = CELL) -> Sighting:
    return make(ts, "arp", ip, mac, Binding.AUTHORITATIVE, segment, 0.9, attributes)


def dhcp(
    ts: int, ip: str, mac: str, *, segment: str = CELL, confidence: float = 0.9, **attributes: str
) -> Sighting:
    return make(ts, "dhcp", ip, mac, Binding.AUTHORITATIVE, segment, confidence, attributes)


def flow(
    ts: int, ip: str, mac: str, *, segment: str = CELL, confidence: float = 0.9, **attributes: str
) -> Sighting:
    return make(ts, "flow", ip, mac, Binding.OBSERVED, segment, confidence, attributes)


def at(address: str, segment: str = CELL) -> SegmentAddress:
    return SegmentAddress(segment, address)
