"""Saving baselines when the store fails, and when two writers of one site meet: a save that fails
is counted once however often it fails; two sensors saving at once both count (PostgreSQL locks
the site's scopes until the commit, SQLite takes its write lock before reading); a reset
committed during a save is not undone; two loads that re-key old facts at once both start; a
re-keyed accepted fact keeps who accepted it. Each on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.live import BaselineTee
from plantwarden.detection.baselines.models import BaselineFact
from plantwarden.detection.baselines.scoping import Scoper
from tests.unit.detection.baselines.batches import SECOND, polls, records, write
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, plant_site

PLC_SCOPE = "asset:10.2.0.10"
HELD_SECONDS = 1.0
"""How long the first writer keeps its transaction open while the second one tries."""


def tee(store: Store, ctx: Context) -> BaselineTee:
    return BaselineTee(store, ctx, SITE, None, scoper=Scoper([plant_site()]), monotonic=lambda: 0.0)


def stored(store: Store, kind: str) -> list[BaselineFact]:
    with store.transaction() as session:
        found = list(session.scalars(select(BaselineFact).where(BaselineFact.kind == kind)))
        session.expunge_all()
    return found


def while_held(store: Store, first: Callable[[Any], object], second: Callable[[], object]) -> bool:
    """Run `first` in a transaction and, while it is still open, `second` in a thread; whether the
    second waited for the first's commit. Raises what the second raised."""
    errors: list[BaseException] = []
    done = threading.Event()

    def other() -> None:
        try:
            second()
        except BaseException as error:  # handed to the test
            errors.append(error)
        done.set()

    with store.transaction() as session:
        first(session)
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(HELD_SECONDS)
        waited = not done.is_set()
    thread.join(30)
    if errors:
        raise errors[0]
    return waited


def saved_then_seen(store: Store, ctx: Context, again: int) -> BaselineTee:
    """A sensor that saved one sighting of the edge, then saw it `again` times (not saved yet)."""
    migrate.ensure_ready(store)
    sensor = tee(store, ctx)
    sensor.write(records([{}]))
    sensor.flush()
    sensor.write(records([{}] * again))
    return sensor


def test_a_save_that_keeps_failing_is_counted_once(
    store: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor = saved_then_seen(store, ctx, 3)
    before = {(f.kind, f.key): f.count for f in stored(store, "edge")}  # the three not saved yet

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "sync", unreachable)
    for _ in range(70):  # an hour and more of a store that does not answer
        assert sensor.flush() == 0
    monkeypatch.undo()
    assert max(fact.unsaved for fact in sensor.baseline.facts.values()) == 3
    sensor.flush()
    after = {(f.kind, f.key): f.count for f in stored(store, "edge")}
    assert after == {key: count + 3 for key, count in before.items()}


def test_a_failure_outside_the_store_keeps_what_was_not_saved(
    store: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor = saved_then_seen(store, ctx, 2)
    real = services.raise_deviations

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OverflowError("not a store error")

    sensor.pending = {"x": object()}  # type: ignore[dict-item]  # something to raise, so that it is reached
    monkeypatch.setattr(services, "raise_deviations", broken)
    with pytest.raises(OverflowError):
        sensor.flush()
    monkeypatch.setattr(services, "raise_deviations", real)
    sensor.pending = {}
    assert {fact.unsaved for fact in sensor.baseline.facts.values() if fact.dirty} == {2}


def test_two_sensors_saving_at_once_both_count(store: Store, ctx: Context) -> None:
    migrate.ensure_ready(store)
    first = tee(store, ctx)
    first.write(polls(11, 1.0))
    first.flush()
    second = tee(store, ctx)
    later = WEDNESDAY_NOON + 100 * SECOND
    first.write(polls(11, 1.0, start=later))
    second.write(polls(11, 3.0, start=later))

    def save_second() -> None:
        with store.transaction() as session:
            services.sync(session, ctx, second.baseline, SITE)

    waited = while_held(store, lambda s: services.sync(s, ctx, first.baseline, SITE), save_second)
    assert waited
    (polling,) = stored(store, "polling")
    assert polling.value["intervals"] == 30, polling.value
    assert polling.value["median_ns"] == pytest.approx((20 * 1.0 + 10 * 3.0) / 30 * SECOND, rel=0.01)
    assert polling.count == 33


def test_a_reset_during_a_save_is_not_undone(
    store: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset commits (or tries to) just after the save has read the scopes and before it reads
    the facts: it must wait for the save, not slip in between."""
    migrate.ensure_ready(store)
    sensor = tee(store, ctx)
    sensor.write(records([{}, write()]))
    sensor.flush()
    sensor.write(records([{"ts": WEDNESDAY_NOON + SECOND}, write(ts=WEDNESDAY_NOON + SECOND)]))
    resets: list[threading.Thread] = []

    def reset() -> None:
        with store.transaction() as session:
            services.reset(session, ctx, None, SITE, PLC_SCOPE)

    def between(state: Any) -> None:
        if not resets and state.is_select and "baseline_facts" in str(state.statement):
            resets.append(threading.Thread(target=reset))
            resets[0].start()
            resets[0].join(HELD_SECONDS)  # done by now unless it waits for this save

    real = services.sync

    def sync(session: Any, *args: Any, **kwargs: Any) -> None:
        event.listen(session, "do_orm_execute", between)
        try:
            real(session, *args, **kwargs)
        finally:
            event.remove(session, "do_orm_execute", between)

    monkeypatch.setattr(services, "sync", sync)
    sensor.flush()
    monkeypatch.undo()
    resets[0].join(30)
    sensor.flush()  # the sensor takes the reset in
    with store.transaction() as session:
        assert services.get_scope(session, SITE, PLC_SCOPE).generation == 1
        left = session.scalars(select(BaselineFact).where(BaselineFact.scope == PLC_SCOPE)).all()
        assert left == []
    assert not [key for key, fact in sensor.baseline.facts.items() if fact.scope == PLC_SCOPE]


def test_an_asset_and_its_conduit_reset_at_once_both_commit(
    store: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asset's reset has deleted its facts and is about to recount its conduit when the
    conduit's reset starts: the second waits for the first (no deadlock), and both commit."""
    migrate.ensure_ready(store)
    sensor = tee(store, ctx)
    sensor.write(records([{}, write()]))
    sensor.flush()
    conduit_resets: list[threading.Thread] = []
    errors: list[BaseException] = []

    def reset_conduit() -> None:
        try:
            with store.transaction() as session:
                services.reset(session, ctx, None, SITE, "conduit:scada-cell")
        except BaseException as error:  # handed to the test
            errors.append(error)

    real = services._recount

    def recount(session: Any, site: str, names: set[str]) -> None:
        if "conduit:scada-cell" in names and not conduit_resets:
            conduit_resets.append(threading.Thread(target=reset_conduit))
            conduit_resets[0].start()
            conduit_resets[0].join(HELD_SECONDS)
        real(session, site, names)

    monkeypatch.setattr(services, "_recount", recount)
    with store.transaction() as session:
        services.reset(session, ctx, None, SITE, PLC_SCOPE)
    conduit_resets[0].join(30)
    assert errors == []
    with store.transaction() as session:
        assert services.get_scope(session, SITE, "conduit:scada-cell").generation == 1
        assert services.get_scope(session, SITE, PLC_SCOPE).generation == 1


def _with_old_keys(store: Store, ctx: Context) -> None:
    """A store whose written-range and setpoint facts were saved before keys named the table."""
    migrate.ensure_ready(store)
    sensor = tee(store, ctx)
    sensor.write(records([write(value=40), write(value=60)]))
    sensor.close()
    with store.transaction() as session:
        kinds = ["written_range", "setpoint"]
        for row in session.scalars(select(BaselineFact).where(BaselineFact.kind.in_(kinds))):
            row.key = row.key.rsplit("|", 1)[0]


def test_two_loads_re_keying_at_once_both_start(store: Store, ctx: Context) -> None:
    _with_old_keys(store, ctx)

    def load() -> None:
        with store.transaction() as session:
            services.load(session, SITE)

    assert while_held(store, lambda s: services.load(s, SITE), load)
    keys = [row.key for kind in ("written_range", "setpoint") for row in stored(store, kind)]
    assert keys and all(key.endswith("|holding") for key in keys), keys


def test_a_re_keyed_accepted_fact_keeps_who_accepted_it(store: Store, ctx: Context) -> None:
    _with_old_keys(store, ctx)
    with store.transaction() as session:
        old = session.scalars(select(BaselineFact).where(BaselineFact.kind == "setpoint")).one()
        old.source, old.accepted_by, old.reason = "accepted", "ana", "new recipe"
        old.accepted_at, old.value = old.last_seen, {"min": 10.0, "max": 90.0}
        session.add(  # the same fact under its new key, learnt since
            BaselineFact(
                site=SITE,
                kind="setpoint",
                key=old.key + "|holding",
                scope=old.scope,
                conduit=old.conduit,
                value={"min": 50.0, "max": 50.0},
                first_seen=old.first_seen,
                last_seen=old.last_seen,
                count=1,
                source="learned",
            )
        )
    with store.transaction() as session:
        services.upgrade_keys(session, SITE)
    (fact,) = stored(store, "setpoint")
    assert (fact.source, fact.accepted_by, fact.reason) == ("accepted", "ana", "new recipe")
    assert fact.accepted_at is not None and fact.value == {"min": 10.0, "max": 90.0}
