"""The host graph: declared assets and classes of equivalent undeclared hosts, joined by permits.

Addresses become numbers (IPv6 shifted above the IPv4 space, so one number line holds both).
Every zone subnet, asset address and permit network cuts that line at its ends; between two cuts
every address lies in exactly the same networks. An asset address is a point of its asset; the
other addresses are grouped by (zone subnet, permits whose sources or destinations hold them)
into one host each: "the other hosts" of that subnet, or of the outside when no subnet holds them.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantwarden.zones.plant.model import Address, Network, SiteModel
from plantwarden.zones.plant.permits import Permit, require_one_address_space

IPV6_OFFSET = 1 << 32
"""Added to an IPv6 address's number so that it lies above every IPv4 address."""

Span = tuple[int, int]
Tag = tuple[str, int, int]
"""What a span is, by index: ("zone", zone, subnet), ("asset", asset, 0), ("source", permit, 0),
("destination", permit, 0)."""
Owner = tuple[str, str, str, frozenset[Tag]]
"""Who holds a piece of the address line: (kind, asset or zone id, subnet, permit tags)."""


def address_number(address: Address) -> int:
    """The address's place on the one number line of IPv4 then IPv6 addresses."""
    return int(address) + (IPV6_OFFSET if address.version == 6 else 0)


def network_span(network: Network) -> Span:
    """The first and last number of a network's addresses."""
    first = address_number(network.network_address)
    return first, first + network.num_addresses - 1


def span_networks(span: Span) -> list[Network]:
    """The fewest networks covering a span of numbers exactly."""
    first, last = span
    if first >= IPV6_OFFSET:
        low: Address = ipaddress.IPv6Address(first - IPV6_OFFSET)
        high: Address = ipaddress.IPv6Address(last - IPV6_OFFSET)
    else:
        low, high = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
    return list(ipaddress.summarize_address_range(low, high))


@dataclass(frozen=True, slots=True)
class Host:
    """A node of the graph: a declared asset (`asset` set), or the other hosts of a zone subnet
    (`zone` set, `asset` None), or hosts outside every zone (both None) that some permit names.
    `spans` are the address numbers it holds; every address of a group behaves the same. Other hosts
    of a zone name their `subnet`; `part` says that permits split that subnet into several groups."""

    index: int
    zone: str | None
    asset: str | None
    spans: tuple[Span, ...]
    subnet: str = ""
    part: bool = False

    @property
    def networks(self) -> tuple[Network, ...]:
        """The host's addresses as the fewest networks."""
        return tuple(network for span in self.spans for network in span_networks(span))

    @property
    def name(self) -> str:
        """How a plant engineer reads the host: the asset id, or which undeclared hosts."""
        if self.asset is not None:
            return self.asset
        networks = [str(n) for n in self.networks]
        shown = ", ".join(networks[:2]) + (f" and {len(networks) - 2} more" if len(networks) > 2 else "")
        if self.zone is None:
            return f"hosts outside the model ({shown})"
        return (
            f"other hosts of {self.zone} ({self.subnet}: {shown})"
            if self.part
            else (f"other hosts of {self.zone} ({self.subnet})")
        )


@dataclass(frozen=True, slots=True)
class HostGraph:
    """Hosts, and for each permit the hosts inside its sources and its destinations."""

    site: SiteModel
    permits: tuple[Permit, ...]
    hosts: tuple[Host, ...]
    sources: tuple[tuple[int, ...], ...]
    destinations: tuple[tuple[int, ...], ...]
    permits_from: tuple[tuple[int, ...], ...]
    permits_into: tuple[tuple[int, ...], ...]

    @classmethod
    def build(cls, site: SiteModel, permits: Sequence[Permit]) -> HostGraph:
        """Cut the address line, group the pieces into hosts and index the permits by host. A site
        whose zones of different segments share addresses is refused: one address line cannot
        tell them apart."""
        require_one_address_space(site, "Reachability")
        tagged = _tagged_spans(site, permits)
        cuts = sorted({edge for (first, last), _ in tagged for edge in (first, last + 1)})
        covers = _covers(tagged, cuts)
        hosts, piece_host = _hosts(site, cuts, covers)
        sources, destinations = _permit_hosts(len(permits), covers, piece_host)
        return cls(
            site=site,
            permits=tuple(permits),
            hosts=hosts,
            sources=sources,
            destinations=destinations,
            permits_from=_invert(sources, len(hosts)),
            permits_into=_invert(destinations, len(hosts)),
        )

    def responds(self, index: int) -> bool:
        """Whether the host accepts a service: it lies in the destinations of some permit."""
        return bool(self.permits_into[index])


def _tagged_spans(site: SiteModel, permits: Sequence[Permit]) -> list[tuple[Span, Tag]]:
    spans: list[tuple[Span, Tag]] = []
    for z, zone in enumerate(site.zones):
        spans.extend((network_span(subnet), ("zone", z, s)) for s, subnet in enumerate(zone.subnets))
    for a, asset in enumerate(site.assets):
        spans.extend(((n, n), ("asset", a, 0)) for n in map(address_number, asset.addresses))
    for p, permit in enumerate(permits):
        spans.extend((network_span(network), ("source", p, 0)) for network in permit.sources)
        spans.extend((network_span(network), ("destination", p, 0)) for network in permit.destinations)
    return spans


def _covers(tagged: Iterable[tuple[Span, Tag]], cuts: list[int]) -> list[list[Tag]]:
    """For each piece between two cuts, the tags of the spans holding it."""
    covers: list[list[Tag]] = [[] for _ in cuts]
    for (first, last), tag in tagged:
        for piece in range(bisect.bisect_left(cuts, first), bisect.bisect_left(cuts, last + 1)):
            covers[piece].append(tag)
    return covers


def _hosts(site: SiteModel, cuts: list[int], covers: list[list[Tag]]) -> tuple[tuple[Host, ...], list[int]]:
    """The hosts, and for each piece between cuts the index of the host holding it (-1: none)."""
    owners: dict[Owner, list[int]] = {("asset", asset.id, "", frozenset()): [] for asset in site.assets}
    for piece, tags in enumerate(covers):
        owner = _owner(site, tags)
        if owner is not None:
            owners.setdefault(owner, []).append(piece)
    zone_of = {asset.id: asset.zone for asset in site.assets}
    groups = Counter(subnet for kind, _, subnet, _ in owners if kind == "zone")
    hosts: list[Host] = []
    piece_host = [-1] * len(cuts)
    for index, ((kind, name, subnet, _), pieces) in enumerate(owners.items()):
        zone = {"asset": zone_of.get(name), "zone": name}.get(kind)
        spans = tuple(_merged([(cuts[piece], cuts[piece + 1] - 1) for piece in pieces]))
        hosts.append(Host(index, zone, name if kind == "asset" else None, spans, subnet, groups[subnet] > 1))
        for piece in pieces:
            piece_host[piece] = index
    return tuple(hosts), piece_host


def _owner(site: SiteModel, tags: list[Tag]) -> Owner | None:
    """Who holds a piece: an asset, or the other hosts of a zone subnet or of the outside that lie
    in the same permits; None: no subnet and no permit holds it."""
    for kind, index, _ in tags:
        if kind == "asset":
            return ("asset", site.assets[index].id, "", frozenset())
    subnets = [(zone, subnet) for kind, zone, subnet in tags if kind == "zone"]
    permits = frozenset(tag for tag in tags if tag[0] != "zone")
    if subnets:
        zone = site.zones[subnets[0][0]]
        return ("zone", zone.id, str(zone.subnets[subnets[0][1]]), permits)
    return ("outside", "", "", permits) if permits else None


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for first, last in sorted(spans):
        if merged and merged[-1][1] + 1 == first:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _permit_hosts(
    count: int, covers: list[list[Tag]], piece_host: list[int]
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """For each permit, the hosts inside its sources and inside its destinations."""
    members: dict[Tag, set[int]] = defaultdict(set)
    for piece, tags in enumerate(covers):
        for tag in tags:
            if tag[0] in ("source", "destination"):
                members[tag].add(piece_host[piece])
    sources = tuple(tuple(sorted(members[("source", i, 0)])) for i in range(count))
    destinations = tuple(tuple(sorted(members[("destination", i, 0)])) for i in range(count))
    return sources, destinations


def _invert(members: tuple[tuple[int, ...], ...], size: int) -> tuple[tuple[int, ...], ...]:
    inverted: list[list[int]] = [[] for _ in range(size)]
    for permit, hosts in enumerate(members):
        for host in hosts:
            inverted[host].append(permit)
    return tuple(tuple(permits) for permits in inverted)
