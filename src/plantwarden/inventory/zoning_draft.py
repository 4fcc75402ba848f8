"""The parts of a suggested plant.yaml before it is written: zones, conduits, channels, assets.

`zoning.py` builds them from the stored inventory, `zoning_conduits.py` adds the conduits and
`zoning_yaml.py` writes them. Every part carries the comments (the evidence) written above it.
Ids are made valid for plant.yaml here (`plant_id`), and text from the network is made safe for
a YAML comment or a quoted value (`printable`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from plantwarden.zones.plant.model import Address, Network

ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""plant.yaml's ids: 1-63 lower-case letters, digits and inner hyphens."""
MAX_ID = 63
MAX_TEXT = 240
"""How much of one comment line or name is kept (evidence can quote long device descriptions)."""
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass
class DraftZone:
    """A zone of the draft: one subnet of one segment (or the outside, without subnets)."""

    id: str
    name: str
    purdue_level: int
    security_level: int
    subnet: Network | None
    segment: str = "default"
    assets: list[str] = field(default_factory=list)
    outside_hosts: list[Address] = field(default_factory=list)
    """Addresses of the outside seen in this zone's segment that an asset of another segment
    holds (an address is one asset's): written as one-host subnets."""
    comments: list[str] = field(default_factory=list)

    def subnets(self) -> list[Network]:
        """The subnets to write: the zone's, then one per outside host."""
        hosts = [ipaddress.ip_network(address) for address in sorted(self.outside_hosts, key=_address_order)]
        return ([self.subnet] if self.subnet is not None else []) + hosts


@dataclass
class DraftChannel:
    """One service crossing a conduit in one direction; `clients` are asset ids (empty: any)."""

    id: str
    protocol: str
    transport: str
    ports: tuple[int, ...]
    initiator: str
    responder: str
    operations: tuple[str, ...]
    clients: tuple[str, ...] = ()
    client_addresses: tuple[tuple[str, Address], ...] = ()
    """The observed clients as (segment, address) when few enough to name (filled into `clients`
    once their assets exist)."""
    comments: list[str] = field(default_factory=list)


@dataclass
class DraftConduit:
    """A conduit between two zones that communicate, with its channels."""

    id: str
    name: str
    zones: tuple[str, str]
    security_level: int
    channels: list[DraftChannel] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


@dataclass
class DraftAsset:
    """An asset of the draft; `zone` is written only when its subnet does not say it."""

    id: str
    name: str
    addresses: tuple[Address, ...]
    zone: str
    criticality: str
    explicit_zone: bool = False
    comments: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """The whole suggestion for one site, in the order it is written."""

    site: str
    zones: list[DraftZone]
    conduits: list[DraftConduit]
    assets: list[DraftAsset]
    comments: list[str] = field(default_factory=list)


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """Text from the network made safe for one YAML line: control, format and text-reordering
    characters (and line breaks) become U+FFFD, and long text is cut with an ellipsis."""
    safe = "".join(c if c.isprintable() and c not in BIDI_CONTROLS else "\ufffd" for c in text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "\u2026"


def plant_id(*parts: str) -> str:
    """A valid plant.yaml id from readable parts: lower case, anything else than letters and
    digits a hyphen, no hyphen at either end; past 63 characters it is cut and ends with a short
    hash of the whole, so that two long ids stay apart."""
    text = re.sub(r"[^a-z0-9]", "-", "-".join(parts).lower())
    text = re.sub(r"-{3,}", "--", text).strip("-") or "x"
    if len(text) > MAX_ID:
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        text = text[: MAX_ID - 7].rstrip("-") + "-" + digest
    assert ID_PATTERN.fullmatch(text), text
    return text


class IdRegistry:
    """Hands out ids unique within one kind (zones, assets, channels of one conduit)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, wanted: str, *fallbacks: str) -> str:
        """`wanted` if free, else the first free fallback, else `wanted` with -2, -3 ..."""
        for candidate in (wanted, *fallbacks):
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate
        number = 2
        while (candidate := plant_id(wanted, str(number))) in self._taken:
            number += 1
        self._taken.add(candidate)
        return candidate


def address_words(address: Address | Network) -> str:
    """An address or network as id words: 10.1.2.11 -> 10-1-2-11, fd00:1::5 -> fd00-1--5."""
    if isinstance(address, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _network_words(address)
    return str(address).replace(".", "-").replace(":", "-")


def _network_words(subnet: Network) -> str:
    """The significant part of a network: 10.1.2.0/24 -> 10-1-2; fd00:1:2:3::/64 -> fd00-1-2-3;
    a prefix that does not end on a byte (or hextet) keeps the whole address and the length."""
    if isinstance(subnet, ipaddress.IPv4Network):
        width, groups = 8, str(subnet.network_address).split(".")
    else:
        width, groups = 16, [g.lstrip("0") or "0" for g in subnet.network_address.exploded.split(":")]
    if subnet.prefixlen % width:
        return "-".join([*groups, str(subnet.prefixlen)])
    return "-".join(groups[: max(1, subnet.prefixlen // width)])


def _address_order(address: Address) -> tuple[int, int]:
    return (address.version, int(address))


def span(first: datetime | None, last: datetime | None) -> str:
    """`2026-01-05 08:00:00 .. 08:02:40 UTC` (the date once when both are on one day)."""
    if first is None or last is None:
        return "times unknown"
    start = first.strftime("%Y-%m-%d %H:%M:%S")
    end = last.strftime("%H:%M:%S" if last.date() == first.date() else "%Y-%m-%d %H:%M:%S")
    return f"{start} .. {end} UTC"


def plural(count: int, noun: str) -> str:
    """`1 asset`, `2 assets`, `1,200 communications`."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
