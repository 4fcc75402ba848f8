"""What the rule engine derives from outside a batch: the inventory's roles and the plant model's
maintenance windows.

`RoleMap` answers roles from an in-memory map of (site, address) to role, vectorised: the known
addresses of a site are sorted by their low 64-bit word and each record's address is found with
`np.searchsorted` (the high word is checked; two known addresses sharing a low word send the
batch through a dictionary instead). `PlantMaintenance` reuses the zone check's compiled channels
(`detection.segmentation`): a record is in maintenance when some channel that could carry it has
maintenance windows and its time lies in one of them, whatever its operation (the record is
looked up as if it were a program download, the operation maintenance windows are declared for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Operation, address
from plantwarden.detection.rules.fields import ROLE_CODES, UNKNOWN_ROLE
from plantwarden.detection.segmentation import SegmentationCheck
from plantwarden.inventory.queries import AssetFilter, list_assets
from plantwarden.zones.plant.model import SiteModel

Array = npt.NDArray[Any]
MAX_ASSETS = 1_000_000


def _words(addresses: Array) -> tuple[Array, Array]:
    pairs = np.ascontiguousarray(addresses).view(np.uint8).reshape(-1, 16)
    words = np.ascontiguousarray(pairs).view(">u8").reshape(-1, 2)
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)


class _SiteRoles:
    def __init__(self, roles: Mapping[bytes, str]) -> None:
        packed = np.array(list(roles), dtype="S16") if roles else np.empty(0, dtype="S16")
        high, low = _words(packed)
        order = np.argsort(low, kind="stable")
        self.high, self.low = high[order], low[order]
        self.codes = np.array([ROLE_CODES.get(r, UNKNOWN_ROLE) for r in roles.values()], dtype=np.uint8)[
            order
        ]
        self.unique = bool(len(low) == len(np.unique(low)))
        self.table = {a: ROLE_CODES.get(r, UNKNOWN_ROLE) for a, r in roles.items()}

    def lookup(self, addresses: Array) -> Array:
        if not len(self.low):
            return np.full(len(addresses), UNKNOWN_ROLE, dtype=np.uint8)
        if not self.unique:
            return np.array([self.table.get(bytes(a), UNKNOWN_ROLE) for a in addresses], dtype=np.uint8)
        high, low = _words(addresses)
        at = np.minimum(np.searchsorted(self.low, low), len(self.low) - 1)
        hit = (self.low[at] == low) & (self.high[at] == high)
        found: Array = np.where(hit, self.codes[at], UNKNOWN_ROLE).astype(np.uint8)
        return found


class RoleMap:
    """Roles by (site, address); called with a batch's sites and an address column."""

    def __init__(self, roles: Mapping[tuple[str, str], str]) -> None:
        by_site: dict[str, dict[bytes, str]] = {}
        for (site, text), role in roles.items():
            by_site.setdefault(site, {})[address(text)] = role
        self.sites = {site: _SiteRoles(table) for site, table in by_site.items()}
        self.size = len(roles)

    def __call__(self, sites: Array, addresses: Array) -> Array:
        out = np.full(len(addresses), UNKNOWN_ROLE, dtype=np.uint8)
        if not len(addresses) or not self.sites:
            return out
        if bool(np.all(sites == sites[0])):
            table = self.sites.get(str(sites[0]))
            return table.lookup(addresses) if table is not None else out
        for site, table in self.sites.items():
            rows = np.flatnonzero(sites == site)
            out[rows] = table.lookup(addresses[rows])
        return out


def roles_from_inventory(session: Session, site: str | None = None) -> RoleMap:
    """The stored inventory's roles of every current address (of one site, or all)."""
    roles: dict[tuple[str, str], str] = {}
    for asset in list_assets(session, AssetFilter(site=site, limit=MAX_ASSETS)):
        for item in asset.ips:
            roles[(asset.site, item["address"])] = asset.role or "unknown"
    return RoleMap(roles)


class PlantMaintenance:
    """Per record, whether it lies in a maintenance window of a channel that could carry it."""

    def __init__(self, sites: Sequence[SiteModel]) -> None:
        self.checks = {site.id: SegmentationCheck(site) for site in sites}

    def __call__(self, batch: RecordBatch) -> Array:
        inside = np.zeros(len(batch), dtype=bool)
        if not len(batch) or not self.checks:
            return inside
        sites = batch["site"]
        for site_id, check in self.checks.items():
            rows = np.flatnonzero(sites == site_id)
            if len(rows):
                inside[rows] = _inside(check, batch.take(rows) if len(rows) < len(batch) else batch)
        return inside


def _inside(check: SegmentationCheck, batch: RecordBatch) -> Array:
    codes = np.broadcast_to(check.lookup.segment_codes(batch["segment"]), (len(batch),))
    src = check.lookup.endpoints_by_code(batch["src_addr"], codes)
    dst = check.lookup.endpoints_by_code(batch["dst_addr"], codes)
    columns = {name: batch[name] for name in ("transport", "dst_port", "protocol")}
    columns["operation"] = np.full(len(batch), int(Operation.PROGRAM), dtype=np.uint8)
    numbers = check.book.of(check.rules.keys(src, dst, columns))
    inside = np.zeros(len(batch), dtype=bool)
    timed = np.flatnonzero(check.book.timed[numbers])
    if not len(timed):
        return inside
    masks = check.clock.masks(batch["ts"][timed])
    for number in np.unique(numbers[timed]).tolist():
        mine = numbers[timed] == number
        windows = [a.maintenance for a in check.book.verdicts[number].alternatives if a.maintenance]
        for bits in windows:
            inside[timed[mine]] |= (masks[mine] & np.uint64(bits)) != 0
    return inside
