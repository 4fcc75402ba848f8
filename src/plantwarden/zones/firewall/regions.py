"""Sets of new connections a rule matches, exactly, and their difference.

A connection is (address family, source, destination, transport, destination port). A `Box` is a
product of one family, a set of sources, a set of destinations and a set of services; the set a
rule matches is one box per family it names. Address and port sets are `Spans`: sorted, disjoint
ranges of numbers (an address as its integer), so complements and differences are exact whatever
prefixes the ranges split into. `Services` holds the transports named with their port sets, and
whether every transport not named is in (the transport of a rule without one: any, ICMP included).
Subtracting one box from another leaves at most three boxes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from plantwarden.zones.plant.model import Network

Span = tuple[int, int]
Spans = tuple[Span, ...]
"""Sorted, disjoint, non-adjacent inclusive ranges of numbers."""

ADDRESS_BITS = {"ip": 32, "ip6": 128}
ALL_PORTS: Spans = ((0, 65535),)
NO_SPANS: Spans = ()


def everything(family: str) -> Spans:
    """Every address of a family (`ip` or `ip6`)."""
    return ((0, (1 << ADDRESS_BITS[family]) - 1),)


def merged(spans: Iterable[Span]) -> Spans:
    """Ranges sorted, those that overlap or touch joined."""
    result: list[Span] = []
    for first, last in sorted(spans):
        if result and first <= result[-1][1] + 1:
            result[-1] = (result[-1][0], max(last, result[-1][1]))
        else:
            result.append((first, last))
    return tuple(result)


def intersection(left: Spans, right: Spans) -> Spans:
    """The numbers in both."""
    found: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        first, last = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if first <= last:
            found.append((first, last))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return tuple(found)


def difference(left: Spans, right: Spans) -> Spans:
    """The numbers of `left` not in `right`."""
    found: list[Span] = []
    for first, last in left:
        start = first
        for cut_first, cut_last in right:
            if cut_last < start or cut_first > last:
                continue
            if cut_first > start:
                found.append((start, cut_first - 1))
            start = cut_last + 1
        if start <= last:
            found.append((start, last))
    return tuple(found)


def network_spans(networks: Iterable[Network], family: str) -> Spans:
    """The addresses of the networks of one family."""
    version = 4 if family == "ip" else 6
    return merged(
        (int(n.network_address), int(n.broadcast_address)) for n in networks if n.version == version
    )


def spans_networks(spans: Spans, family: str) -> tuple[Network, ...]:
    """The fewest networks holding exactly these addresses."""
    make = ipaddress.IPv4Address if family == "ip" else ipaddress.IPv6Address
    networks: list[Network] = []
    for first, last in spans:
        networks.extend(ipaddress.summarize_address_range(make(first), make(last)))
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class Services:
    """Transports with their destination ports: `named` maps a transport to its ports; `others`
    adds every transport not named, on every port. Kept canonical (no entry that `others` implies)."""

    named: tuple[tuple[str, Spans], ...] = ()
    others: bool = False

    @classmethod
    def of(cls, named: dict[str, Spans], others: bool) -> Services:
        """The canonical form: entries equal to what `others` gives left out, sorted."""
        implied = ALL_PORTS if others else NO_SPANS
        return cls(tuple(sorted((t, p) for t, p in named.items() if p != implied)), others)

    def ports(self, transport: str) -> Spans:
        """The ports of a transport in the set."""
        return dict(self.named).get(transport, ALL_PORTS if self.others else NO_SPANS)

    def _combined(self, other: Services, keep: bool) -> Services:
        names = {t for t, _ in self.named} | {t for t, _ in other.named}
        if keep:
            both = {t: intersection(self.ports(t), other.ports(t)) for t in names}
            return Services.of(both, self.others and other.others)
        rest = {t: difference(self.ports(t), other.ports(t)) for t in names}
        return Services.of(rest, self.others and not other.others)

    def __and__(self, other: Services) -> Services:
        return self._combined(other, keep=True)

    def __sub__(self, other: Services) -> Services:
        return self._combined(other, keep=False)

    def __bool__(self) -> bool:
        return self.others or any(ports for _, ports in self.named)


ANY_SERVICE = Services(others=True)


@dataclass(frozen=True, slots=True)
class Box:
    """Connections of one family from `sources` to `destinations` using `services`."""

    family: str
    sources: Spans
    destinations: Spans
    services: Services

    def __bool__(self) -> bool:
        return bool(self.sources and self.destinations and self.services)

    def minus(self, cut: Box) -> list[Box]:
        """This box less the connections of `cut`: at most three boxes, none empty."""
        if cut.family != self.family:
            return [self]
        sources = intersection(self.sources, cut.sources)
        destinations = intersection(self.destinations, cut.destinations)
        if not (sources and destinations and (self.services & cut.services)):
            return [self]
        pieces = [
            Box(self.family, difference(self.sources, cut.sources), self.destinations, self.services),
            Box(self.family, sources, difference(self.destinations, cut.destinations), self.services),
            Box(self.family, sources, destinations, self.services - cut.services),
        ]
        return [piece for piece in pieces if piece]
