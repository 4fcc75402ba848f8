"""The scopes of a fact from the applied plant model: its asset, and its conduit if one joins
the zones of its two ends (`ZoneLookup`); the safe range of a written register; and the names
the alerts give what a fact is about (`names`, `naming.PlantNames`).

Without a plant model (or for a site it does not declare), every fact belongs to its asset
only, and no register has a safe range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plantwarden.core.records.batch import RecordBatch
from plantwarden.detection.baselines.facts import AddressTexts, FactKind, Mask, Observation, observe
from plantwarden.detection.baselines.learner import ScopeOf, Scoping
from plantwarden.detection.baselines.naming import PlantNames
from plantwarden.detection.rules.setpoints import PlantSafeRanges, judged
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import SiteModel


class Scoper(Scoping):
    """Scopes of observations at the sites of a plant model."""

    def __init__(self, sites: Sequence[SiteModel] = ()) -> None:
        self.lookups = {site.id: ZoneLookup(site) for site in sites}
        self.names = PlantNames(sites)
        self.conduits: dict[tuple[str, frozenset[str]], str] = {}
        self.safe: dict[tuple[str, str, int], tuple[float, float]] = {}
        for site in sites:
            for conduit in site.conduits:
                for a in conduit.zones:
                    for b in conduit.zones:
                        if a != b:
                            self.conduits.setdefault((site.id, frozenset((a, b))), conduit.id)
            for asset in site.assets:
                for register in asset.registers:
                    if judged(register) is not None and register.safe_range is not None:
                        for host in asset.addresses:
                            self.safe[(site.id, str(host), register.address)] = register.safe_range
        self.ranges = PlantSafeRanges(sites) if self.safe else None
        self._cache: dict[tuple[str, str, str | None, str], str | None] = {}
        self._zones: dict[tuple[str, str, str], str | None] = {}

    def prepare(self, batch: RecordBatch) -> None:
        """Look the zones of the batch's addresses up at once (vectorised, per site and segment),
        so that `of` only reads a dictionary."""
        if not self.lookups or not len(batch):
            return
        texts = AddressTexts()
        for site, lookup in self.lookups.items():
            mine = batch["site"] == site
            if not bool(mine.any()):
                continue
            for segment in {str(s) for s in batch["segment"][mine]}:
                rows = mine & (batch["segment"] == segment)
                both = np.unique(np.concatenate([batch["src_addr"][rows], batch["dst_addr"][rows]]))
                named = [texts(a) for a in both]
                fresh = [i for i, t in enumerate(named) if (site, segment, t) not in self._zones]
                if not fresh:
                    continue
                zones = lookup.zones(both[fresh], segment)
                for i, zone in zip(fresh, zones.tolist(), strict=True):
                    self._zones[(site, segment, named[i])] = lookup.zone_ids[zone] if zone >= 0 else None

    def observe(self, batch: RecordBatch) -> list[Observation]:
        """The batch's facts (`facts.observe`), with the zones of its addresses looked up and its
        writes judged against the safe ranges."""
        self.prepare(batch)
        return observe(batch, self.outside_safe(batch))

    def outside_safe(self, batch: RecordBatch) -> Mask | None:
        """Per record, whether it writes a register outside its safe range (None: no ranges)."""
        if self.ranges is None or batch.kind.name != "protocol":
            return None
        return self.ranges(batch)

    def of(self, seen: Observation) -> ScopeOf:
        base = Scoping.of(self, seen)
        site = seen.key.site
        conduit = None
        if seen.client is not None and site in self.lookups:
            key = (site, seen.server, seen.client, seen.segment)
            if key not in self._cache:
                self._cache[key] = self._conduit(site, seen.client, seen.server, seen.segment)
            conduit = self._cache[key]
        safe = None
        if seen.key.kind is FactKind.SETPOINT:
            named = seen.key.named()  # the register map's safe ranges are of holding registers
            if named["table"] == "holding":
                safe = self.safe.get((site, str(named["server"]), int(named["address"])))
        return ScopeOf(base.scope, conduit, safe)

    def _zone(self, site: str, segment: str, text: str) -> str | None:
        key = (site, segment, text)
        if key not in self._zones:
            self._zones[key] = self.lookups[site].zone_of(text, segment)
        return self._zones[key]

    def _conduit(self, site: str, client: str, server: str, segment: str) -> str | None:
        first, second = self._zone(site, segment, client), self._zone(site, segment, server)
        if first is None or second is None or first == second:
            return None
        found = self.conduits.get((site, frozenset((first, second))))
        return f"conduit:{found}" if found is not None else None
