"""Assets counted per zone for the overview: only the places given, by site then zone, the
assets in no zone last of their site; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from plantwarden.core import migrate
from plantwarden.core.db import Store
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.queries import ZoneCount, count_per_zone

SEEN = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _asset(site: str, zone: str | None) -> StoredAsset:
    return StoredAsset(
        id=uuid.uuid4(), site=site, segment="cell", zone=zone, first_seen=SEEN, last_seen=SEEN,
        created_at=SEEN, updated_at=SEEN,
    )  # fmt: skip


@pytest.fixture
def assets(store: Store) -> Store:
    migrate.ensure_ready(store)
    placed = {("plant-a", "cell-1"): 3, ("plant-a", "dmz"): 2, ("plant-a", None): 1, ("plant-b", "cell-1"): 4}
    with store.transaction() as session:
        session.add_all(_asset(site, zone) for (site, zone), count in placed.items() for _ in range(count))
    return store


def test_assets_per_zone_of_the_places_only(assets: Store) -> None:
    with assets.transaction() as session:
        whole = count_per_zone(session, [("plant-a", None)])
        zones = count_per_zone(session, [("plant-a", "dmz"), ("plant-b", "cell-1")])
        everything = count_per_zone(session, [("plant-a", None), ("plant-b", None)], limit=2)
        nowhere = count_per_zone(session, [])
    assert whole == [
        ZoneCount("plant-a", "cell-1", 3),
        ZoneCount("plant-a", "dmz", 2),
        ZoneCount("plant-a", None, 1),
    ]
    assert zones == [ZoneCount("plant-a", "dmz", 2), ZoneCount("plant-b", "cell-1", 4)]
    assert everything == whole[:2]
    assert nowhere == []
