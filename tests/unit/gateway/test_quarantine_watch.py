"""The gateway's view of the quarantine list on SQLite and PostgreSQL: the active list at start,
then only this site's changes from the event log, applied to the deny overlay."""

from __future__ import annotations

import pytest

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.gateway.quarantine_watch import QuarantineWatch
from plantwarden.gateway.revocations import RevocationFeed
from plantwarden.gateway.server import Gateway
from plantwarden.incidents import quarantine as services
from plantwarden.incidents.events import QuarantineChange
from plantwarden.incidents.quarantine import QuarantineTarget
from plantwarden.policy.overlay import DenyOverlay


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def change(store: Store, ctx: Context, site: str, target: str, *, on: bool = True) -> None:
    action = services.quarantine if on else services.release
    with store.transaction() as session:
        action(session, ctx, None, site=site, target=QuarantineTarget.parse(target), reason=f"why {target}")


def test_start_loads_the_active_list_then_poll_applies_this_sites_changes(ready: Store, ctx: Context) -> None:
    change(ready, ctx, "plant-a", "address:10.1.1.20")
    change(ready, ctx, "plant-a", "asset:plc-1")
    change(ready, ctx, "plant-a", "asset:plc-1", on=False)
    change(ready, ctx, "plant-b", "cert_role:engineer")
    overlay, watch = DenyOverlay(), QuarantineWatch(ready, "plant-a")
    assert watch.start(overlay) == 1
    state = overlay.snapshot()
    assert state.subjects == {("address", "10.1.1.20"): "why address:10.1.1.20"} and not state.asset_keys
    assert watch.poll(overlay) == 0  # what start loaded is not applied again
    change(ready, ctx, "plant-a", "asset:plc-2")
    change(ready, ctx, "plant-b", "address:10.9.9.9")
    change(ready, ctx, "plant-a", "address:10.1.1.20", on=False)
    assert watch.poll(overlay) == 2
    state = overlay.snapshot()
    assert state.subject_keys == frozenset() and state.asset_keys == {("plant-a", "plc-2")}


def test_certificates_are_kept_by_serial(ready: Store) -> None:
    overlay, watch = DenyOverlay(), QuarantineWatch(ready, "plant-a")
    watch.apply(overlay, QuarantineChange("plant-a", "certificate", "ab12", "r", True))
    watch.apply(overlay, QuarantineChange("plant-a", "certificate", "ab12", "r", True))
    assert watch.certificates == {"ab12"} and overlay.snapshot().empty
    watch.apply(overlay, QuarantineChange("plant-a", "certificate", "ab12", "", False))
    watch.apply(overlay, QuarantineChange("plant-a", "martian", "x", "r", True))  # skipped, not fatal
    assert watch.certificates == frozenset() and overlay.snapshot().empty


def test_the_gateway_reads_the_log_only_when_it_moved(ready: Store, ctx: Context) -> None:
    overlay, watch, feed = DenyOverlay(), QuarantineWatch(ready, "plant-a"), RevocationFeed(ready)
    readers: list[QuarantineWatch | RevocationFeed] = [watch, feed]
    assert Gateway._log_moved(readers)  # not started: they start
    watch.start(overlay)
    assert Gateway._log_moved(readers)
    feed.start()
    assert not Gateway._log_moved(readers)  # both at the head: one small query, nothing read
    change(ready, ctx, "plant-b", "asset:plc-9")  # another site's: read all the same
    assert Gateway._log_moved(readers)
    assert watch.poll(overlay) == 0
    assert Gateway._log_moved(readers)  # the revocation feed has not read it yet
    assert feed.revoked_since_last() == set()
    assert not Gateway._log_moved(readers)
