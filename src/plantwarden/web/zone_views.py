"""What the console's zone pages need: the open zone violations (alerts of the zone check), which
zone an address of the stored inventory lies in, and the zone map's boxes and links.

Violations are alerts whose rule starts with `zone.`; the zone check puts a summary in their
first evidence item (source, destination, their zones, the conduit and channel concerned, the
records counted). Addresses are placed in zones as the zone check does (`ZoneLookup`): on the
segment they were seen on, a declared asset's address is in the asset's zone (if that zone is on
this segment), any other in the zone whose subnet holds it.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.alerts.models import Alert, AlertStatus
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.schema import ADDRESS_DTYPE, TEXT, address
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.queries import Places
from plantwarden.web.inventory_views import visible_assets
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import Conduit, SecurityLevel, SiteModel
from plantwarden.zones.zonemap import ConduitLink, StrayLink, ZoneBox

ZONE_RULES = "zone."
"""Rule ids of the zone check's alerts start with this."""
VIOLATION_LIMIT = 1000
"""Open violations read per site at most, most recently seen first."""
VIOLATION_COLUMNS = (
    Alert.id,
    Alert.rule_id,
    Alert.title,
    Alert.zone,
    Alert.evidence,
    Alert.assets,
    Alert.dedup_key,
    Alert.occurrences,
    Alert.last_seen,
)
"""What a violation row needs of its alert: a column read, not the whole alert."""


@dataclass(frozen=True)
class ZoneViolation:
    """An open alert of the zone check, with what its summary says."""

    id: str
    rule: str
    title: str
    zone: str | None
    src: str
    dst: str
    src_zone: str | None
    dst_zone: str | None
    operation: str
    protocol: str
    conduit: str | None
    channel: str | None
    occurrences: int
    records: int
    last_seen: datetime

    @property
    def zones(self) -> frozenset[str]:
        """Every zone the violation touches."""
        return frozenset(z for z in (self.zone, self.src_zone, self.dst_zone) if z)

    def concerns(self, conduit: Conduit) -> bool:
        """Whether it happened on the conduit: named by the check, or between two of its zones."""
        if self.conduit is not None:
            return self.conduit == conduit.id
        ends = (self.src_zone, self.dst_zone)
        return ends[0] != ends[1] and all(end in conduit.zones for end in ends)


def visible_zones(site: SiteModel, places: Places) -> tuple[str, ...]:
    """The zones of the site the caller may see: all of them with a grant on the whole site."""
    if (site.id, None) in places:
        return tuple(zone.id for zone in site.zones)
    return tuple(zone.id for zone in site.zones if (site.id, zone.id) in places)


def open_violations(session: Session, site: str, places: Places) -> list[ZoneViolation]:
    """Open (new or acknowledged) alerts of the zone check in `site`, most recently seen first,
    in the places (the caller's places for reading alerts) given."""
    statement = select(*VIOLATION_COLUMNS).where(
        Alert.site == site, Alert.rule_id.startswith(ZONE_RULES), Alert.status != AlertStatus.CLOSED
    )
    if (site, None) not in places:
        zones = sorted(zone for s, zone in places if s == site and zone is not None)
        statement = statement.where(Alert.zone.in_(zones))
    statement = statement.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(VIOLATION_LIMIT)
    return [_violation(alert) for alert in session.execute(statement)]


def _violation(alert: Any) -> ZoneViolation:
    summary: dict[str, Any] = next((item for item in alert.evidence if item.get("kind") == "zone-check"), {})
    return ZoneViolation(
        id=str(alert.id),
        rule=alert.rule_id,
        title=alert.title,
        zone=alert.zone,
        src=str(summary.get("src") or (alert.assets[0] if alert.assets else "")),
        dst=str(summary.get("dst") or ""),
        src_zone=_text_or_none(summary.get("src_zone")),
        dst_zone=_text_or_none(summary.get("dst_zone")),
        operation=str(summary.get("operation") or _operation_of(alert.dedup_key)),
        protocol=str(summary.get("protocol") or ""),
        conduit=_text_or_none(summary.get("conduit")),
        channel=_text_or_none(summary.get("channel")),
        occurrences=alert.occurrences,
        records=int(summary.get("records") or 0),
        last_seen=alert.last_seen,
    )


def _operation_of(dedup_key: str | None) -> str:
    """The operation from the zone check's deduplication key (rule|site|segment|src|dst|operation|
    window), for summaries that do not name it."""
    parts = (dedup_key or "").split("|")
    return parts[5] if len(parts) == 7 else ""


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


class Endpoints:
    """Which zone of a site an address of a network segment lies in, as the zone check places it
    (`ZoneLookup`): a declared asset's address only on its zone's segment, since segments reuse
    the same subnets behind NAT."""

    def __init__(self, site: SiteModel) -> None:
        self.lookup = ZoneLookup(site)

    def zone_of(self, address: str, segment: str) -> str | None:
        """The zone of `address` seen on `segment`, or None (no zone, or not an IP address)."""
        try:
            return self.lookup.zone_of(address, segment)
        except InvalidInput:
            return None

    def zones_of(self, seen: Sequence[tuple[str, str]]) -> list[str | None]:
        """`zone_of` for many (address, segment) pairs in one vectorised lookup: the pages place
        thousands of addresses, and one lookup per address costs about 100 µs."""
        if not seen:
            return []
        packed = [_packed(address) for address, _ in seen]
        column = np.array([p or bytes(16) for p in packed], dtype=ADDRESS_DTYPE)
        segments = np.array([segment for _, segment in seen], dtype=TEXT)
        found = self.lookup.zones(column, segments).tolist()
        ids = self.lookup.zone_ids
        return [
            ids[zone] if p is not None and zone >= 0 else None for p, zone in zip(packed, found, strict=True)
        ]


_MAPPED = bytes(10) + b"\xff\xff"


def _packed(text: str) -> bytes | None:
    """The 16-byte form of an IP address (`records.schema.address`), None for anything else. A
    dotted quad takes the fast path (`inet_pton` is strict as `ipaddress` is: no leading zeros)."""
    try:
        return _MAPPED + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        return address(text)
    except ValueError:
        return None


def seen_per_zone(session: Session, site: SiteModel, places: Places) -> Counter[str]:
    """How many assets of the stored inventory (those the caller may see) lie in each zone."""
    statement = select(StoredAsset.ips).where(StoredAsset.site == site.id, visible_assets(places))
    owners: list[int] = []
    addresses: list[tuple[str, str]] = []
    for number, (ips,) in enumerate(session.execute(statement)):
        for item in ips or ():
            owners.append(number)
            addresses.append((str(item["address"]), str(item["segment"])))
    zones = {(owner, zone) for owner, zone in zip(owners, Endpoints(site).zones_of(addresses), strict=True)}
    return Counter(zone for _, zone in zones if zone is not None)


def compact_level(level: SecurityLevel) -> str:
    """A target security level in few characters: `SL 2`, or `SL-T 2,2,2,1,2,1,2` for a vector."""
    if len(set(level.values)) == 1:
        return f"SL {level.values[0]}"
    return "SL-T " + ",".join(str(value) for value in level.values)


def zone_boxes(
    site: SiteModel, shown: Iterable[str], seen: Mapping[str, int], violations: Sequence[ZoneViolation]
) -> list[ZoneBox]:
    """The boxes of the zones `shown`, in the model's order."""
    touched = Counter(zone for violation in violations for zone in violation.zones)
    declared = Counter(asset.zone for asset in site.assets)
    wanted = set(shown)
    return [
        ZoneBox(
            id=zone.id,
            name=zone.name,
            purdue_level=zone.purdue_level,
            security_level=compact_level(zone.security_level),
            subnets=tuple(str(subnet) for subnet in zone.subnets),
            declared=declared[zone.id],
            seen=seen.get(zone.id, 0),
            violations=touched[zone.id],
        )
        for zone in site.zones
        if zone.id in wanted
    ]


def conduit_links(
    site: SiteModel, shown: Iterable[str], violations: Sequence[ZoneViolation]
) -> list[ConduitLink]:
    """The conduits touching a zone `shown`, among the zones shown."""
    wanted = set(shown)
    return [
        ConduitLink(
            id=conduit.id,
            name=conduit.name,
            zones=tuple(zone for zone in conduit.zones if zone in wanted),
            channels=len(conduit.channels),
            violations=sum(violation.concerns(conduit) for violation in violations),
        )
        for conduit in site.conduits
        if wanted.intersection(conduit.zones)
    ]


def stray_links(site: SiteModel, violations: Sequence[ZoneViolation]) -> list[StrayLink]:
    """Pairs of zones with open violations between them that no conduit joins."""
    joined = [set(conduit.zones) for conduit in site.conduits]
    pairs: Counter[tuple[str, str]] = Counter()
    for violation in violations:
        a, b = violation.src_zone, violation.dst_zone
        if a and b and a != b and violation.conduit is None and not any({a, b} <= z for z in joined):
            pairs[(min(a, b), max(a, b))] += 1
    return [StrayLink(a, b, count) for (a, b), count in sorted(pairs.items())]
