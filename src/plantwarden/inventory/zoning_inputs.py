"""What `zones suggest` reads: observed hosts and edges (from the stored inventory), the options,
and the map from each observed address to its zone."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory.models import StoredAsset, StoredEdge
from plantwarden.inventory.zoning_draft import DraftZone
from plantwarden.zones.plant.model import Address, Network

LOCAL_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
        "100.64.0.0/10", "fc00::/7", "fe80::/10", "::1/128",
    )
)  # fmt: skip
"""The plant's own address space by default: private (RFC 1918, RFC 6598 shared, RFC 4193 unique
local), loopback and link-local. Documentation and public addresses are outside."""


@dataclass(frozen=True, slots=True)
class ObservedHost:
    """One stored asset as the suggestion sees it: its current addresses in its home segment (and
    `elsewhere`, as (segment, address), those in other segments), its role with confidence and
    evidence, the name it gave itself (if any) and when it was seen."""

    segment: str
    addresses: tuple[str, ...]
    role: str | None = None
    confidence: float = 0.0
    evidence: tuple[str, ...] = ()
    name: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    elsewhere: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, asset: StoredAsset) -> ObservedHost:
        """From the stored inventory."""
        names = (asset.current_value(n) for n in SELF_NAMES)
        return cls(
            segment=asset.segment,
            addresses=tuple(a["address"] for a in asset.ips if a["segment"] == asset.segment),
            role=asset.role,
            confidence=asset.role_confidence or 0.0,
            evidence=tuple(asset.role_evidence),
            name=next((n for n in names if n), ""),
            first_seen=asset.first_seen,
            last_seen=asset.last_seen,
            elsewhere=tuple((a["segment"], a["address"]) for a in asset.ips if a["segment"] != asset.segment),
        )

    def placed(self) -> tuple[tuple[str, str], ...]:
        """Every current address with its segment, the home segment's first."""
        return tuple((self.segment, address) for address in self.addresses) + self.elsewhere


SELF_NAMES = ("station_name", "system_name", "plc_name", "hostname", "host_name", "product_name")
"""Facts in which a device names itself, most specific first."""


@dataclass(frozen=True, slots=True)
class ObservedEdge:
    """One stored communication: `client` talks `protocol` to `server` (`unknown` for flows of
    protocols the sensor does not decode), on `services` (IP protocol, server port)."""

    segment: str
    client: str
    server: str
    protocol: str
    services: tuple[tuple[int, int], ...]
    operations: tuple[str, ...] = ()
    requests: int = 0
    flows: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @classmethod
    def of(cls, edge: StoredEdge) -> ObservedEdge:
        """From the stored inventory."""
        return cls(
            segment=edge.segment,
            client=edge.client,
            server=edge.server,
            protocol=edge.protocol,
            services=tuple((int(p), int(port)) for p, port in edge.services),
            operations=tuple(edge.operations),
            requests=edge.requests,
            flows=edge.flows,
            first_seen=edge.first_seen,
            last_seen=edge.last_seen,
        )


@dataclass(frozen=True, slots=True)
class SuggestOptions:
    """How to group: prefix lengths of a zone's subnet, the role confidence that makes a host an
    asset, the networks inside the plant, and how many clients a channel is narrowed to."""

    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    min_confidence: float = 0.6
    local_networks: tuple[Network, ...] = LOCAL_NETWORKS
    max_clients: int = 3

    def __post_init__(self) -> None:
        if not 8 <= self.ipv4_prefix <= 32:
            raise InvalidInput(f"the IPv4 prefix length must be 8-32, not {self.ipv4_prefix}")
        if not 16 <= self.ipv6_prefix <= 128:
            raise InvalidInput(f"the IPv6 prefix length must be 16-128, not {self.ipv6_prefix}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInput(f"the minimum role confidence must be 0-1, not {self.min_confidence}")


@dataclass
class ZoneMap:
    """The zones by (segment, subnet) (the outside of a segment: (segment, None)), the host holding each
    (segment, address), and every (segment, address) seen, held or only talked to."""

    options: SuggestOptions
    zones: dict[tuple[str, Network | None], DraftZone] = field(default_factory=dict)
    hosts: dict[tuple[str, Address], ObservedHost] = field(default_factory=dict)
    seen: set[tuple[str, Address]] = field(default_factory=set)

    def key(self, segment: str, address: Address) -> tuple[str, Network | None]:
        """The zone key of an address: (segment, its subnet), or (segment, None) outside the plant
        (a zone holds addresses of its own segment only, so the outside is one zone per segment)."""
        local = [network.prefixlen for network in self.options.local_networks if address in network]
        if not local:
            return (segment, None)
        prefix = self.options.ipv4_prefix if address.version == 4 else self.options.ipv6_prefix
        # A zone's subnet never reaches beyond the local network that holds the address.
        return (segment, ipaddress.ip_network(f"{address}/{max(prefix, *local)}", strict=False))

    def zone_of(self, segment: str, address: Address) -> DraftZone:
        return self.zones[self.key(segment, address)]


def parse_address(text: str) -> Address:
    """A stored address, parsed; the inventory keeps them canonical, so failure is bad input."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"{text!r} in the stored inventory is not an IP address") from None


LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def is_unicast(address: Address) -> bool:
    """Whether an address names one host (not multicast, broadcast or unspecified)."""
    return not (address.is_multicast or address.is_unspecified or address == LIMITED_BROADCAST)
