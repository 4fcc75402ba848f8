"""Each save places the stored assets in the applied plant model: zone, and declared or not."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.store import save_inventory
from plantwarden.zones.applied import apply_plant
from tests.unit.inventory.store_support import HMI, PLC, book_assets, run_sightings
from tests.unit.inventory.support import CELL, SITE

PLANT = f"""\
version: 1
sites:
  - id: {SITE}
    zones:
      - {{id: control, purdue_level: 1, subnets: [10.0.0.0/28], segment: {CELL}, security_level: 2}}
    assets:
      - {{id: plc-1, address: {PLC}}}
"""


def placed(store: Store) -> dict[str, tuple[str | None, bool | None]]:
    with store.transaction() as session:
        rows = session.scalars(select(StoredAsset)).all()
        return {row.ips[0]["address"]: (row.zone, row.known) for row in rows}


def test_a_save_places_assets_in_the_applied_model(store: Store, ctx: Context) -> None:
    migrate.ensure_ready(store)
    with store.transaction() as session:
        save_inventory(session, ctx, book_assets(run_sightings(1_767_600_000)), [], [])
    assert placed(store) == {HMI: (None, None), PLC: (None, None)}  # no model: nobody says
    with store.transaction() as session:
        apply_plant(session, ctx, PLANT.encode(), "plant.yaml")
        save_inventory(session, ctx, book_assets(run_sightings(1_767_700_000)), [], [])
    assert placed(store) == {HMI: ("control", False), PLC: ("control", True)}
    elsewhere = PLANT.replace("10.0.0.0/28", "10.9.0.0/28").replace(f"address: {PLC}", "address: 10.9.0.1")
    with store.transaction() as session:
        apply_plant(session, ctx, elsewhere.encode(), "plant.yaml")
        save_inventory(session, ctx, book_assets(run_sightings(1_767_800_000)), [], [])
    assert placed(store) == {HMI: (None, False), PLC: (None, False)}


def test_a_new_zone_stamps_the_asset_as_changed(store: Store, ctx: Context, clock: FixedClock) -> None:
    """The console's map is redrawn on the inventory's latest change: a zone is one."""
    migrate.ensure_ready(store)
    sightings = run_sightings(1_767_600_000)
    with store.transaction() as session:
        save_inventory(session, ctx, book_assets(sightings), [], [])
    before = stamps(store)
    clock.advance(timedelta(minutes=5))
    with store.transaction() as session:
        save_inventory(session, ctx, book_assets(sightings), [], [])  # the same sightings again
    assert stamps(store) == before
    clock.advance(timedelta(minutes=5))
    with store.transaction() as session:
        apply_plant(session, ctx, PLANT.encode(), "plant.yaml")
        save_inventory(session, ctx, book_assets(sightings), [], [])
    assert stamps(store) == {address: clock.now() for address in before}


def stamps(store: Store) -> dict[str, datetime]:
    with store.transaction() as session:
        return {row.ips[0]["address"]: row.updated_at for row in session.scalars(select(StoredAsset))}
