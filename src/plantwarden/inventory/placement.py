"""Stored assets placed in the applied plant model: their zone, and whether plant.yaml declares them.

Every save of the inventory places the assets of the sites it touches, so after `plantwarden
plant apply` the next save (a sensor saves every few minutes) brings zones and `known` up to
date. An asset of a site the model does not declare keeps zone and known unset (no model says).
"""

from __future__ import annotations

from collections.abc import Iterable

from plantwarden.inventory.models import StoredAsset
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import PlantModel


def place_assets(rows: Iterable[StoredAsset], model: PlantModel | None) -> list[StoredAsset]:
    """Set `zone` (the zone of the first current address that has one) and `known` (plant.yaml
    declares one of its current addresses) of each stored asset whose site the model declares;
    the assets whose zone or `known` changed."""
    changed: list[StoredAsset] = []
    if model is None:
        return changed
    lookups = {site.id: ZoneLookup(site) for site in model.sites}
    for row in rows:
        lookup = lookups.get(row.site)
        if lookup is None:
            continue
        addresses = [(item["address"], item.get("segment", row.segment)) for item in row.ips]
        zones = [zone for address, segment in addresses if (zone := lookup.zone_of(address, segment))]
        known = any(lookup.asset_of(address, segment) for address, segment in addresses)
        zone = zones[0] if zones else None
        if (row.zone, row.known) != (zone, known):
            row.zone, row.known = zone, known
            changed.append(row)
    return changed
