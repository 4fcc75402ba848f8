"""Baselines in the store (SQLite and PostgreSQL): saved by the tee, loaded again after a restart,
per site; deviations raised as alerts; accept, protect and reset, each in the audit log."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core import migrate
from plantwarden.core.auditlog import AuditEntry, AuditKeys, AuditLog, Checkpoints
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.live import BaselineTee
from plantwarden.detection.baselines.models import BaselineFact
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.zones.plant.model import Register, SiteModel
from tests.unit.detection.baselines.batches import SECOND, polls, records, write
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, plant_site


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(keys=AuditKeys.generate(), checkpoints=Checkpoints(path=tmp_path / "checkpoints.log"))


def tee(store: Store, ctx: Context, site: str = SITE) -> BaselineTee:
    return BaselineTee(store, ctx, site, None, scoper=Scoper([plant_site()]), monotonic=lambda: 0.0)


def alerts(store: Store) -> list[Alert]:
    with store.transaction() as session:
        return list(session.scalars(select(Alert).order_by(Alert.rule_id)))


def test_facts_survive_a_restart_and_protect_after_it(ready: Store, ctx: Context, audit: AuditLog) -> None:
    first = tee(ready, ctx)
    first.write(records([{}, write()]))
    first.close()
    with ready.transaction() as session:
        states = {row.scope: (row.state, row.facts) for row in services.scopes(session, SITE)}
        assert states["asset:10.2.0.10"] == (
            "learning",
            6,
        )  # edge, 2 services, polling, written range, setpoint
        assert states["site"] == ("learning", 2)
        assert services.protect(session, ctx, audit, SITE) == sorted(states)
    second = tee(ready, ctx)  # a restart: a new tee over the same store
    assert len(second.baseline.facts) == len(first.baseline.facts)
    second.write(records([{}, write()]))
    assert second.pending == {}
    second.write(records([{"function": 43}, write(address=300)]))
    second.close()
    found = alerts(ready)
    assert [a.rule_id for a in found] == ["pw-baseline-new-service", "pw-baseline-new-written-range"]
    evidence = found[1].evidence[0]
    assert evidence["learned"] == {"ranges": [[100, 100]]} and evidence["observed"] == {
        "ranges": [[300, 300]]
    }
    assert found[1].techniques == ["T0836"] and found[1].detector == "baseline"
    assert "registers 300, outside those written while learning: 100" in found[1].description


def test_baselines_are_per_site(ready: Store, ctx: Context, audit: AuditLog) -> None:
    learner = tee(ready, ctx)
    learner.write(records([{}]))
    learner.close()
    with ready.transaction() as session:
        services.protect(session, ctx, audit, SITE)
    other = tee(ready, ctx, "plant-b")
    assert other.baseline.facts == {}
    other.write(records([{"site": "plant-b", "function": 43}, {"function": 43}]))  # plant-a's row is not its
    other.close()
    assert alerts(ready) == []
    with ready.transaction() as session:
        assert [row.state for row in services.scopes(session, "plant-b")] == [
            "learning"
        ] * 2  # site and asset: plant-b has no plant model


def test_accepting_a_deviation_stops_its_alert_and_is_audited(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = tee(ready, ctx)
    sensor.write(records([write(value=40), write(value=60)]))
    sensor.baseline.protect(SITE)
    sensor.write(records([write(value=90)]))
    sensor.flush()
    (alert,) = alerts(ready)
    assert alert.rule_id == "pw-baseline-setpoint-outside" and alert.techniques == ["T0836", "T0831"]
    analyst = Context(source="test", actor="ana", clock=ctx.clock)
    with ready.transaction() as session:
        fact = services.accept_alert(session, analyst, audit, alert.id, "new recipe")
        assert (fact.source, fact.accepted_by, fact.value) == ("accepted", "ana", {"min": 40.0, "max": 90.0})
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "baseline.accepted"))
        assert entry.actor == "ana" and entry.details["reason"] == "new recipe"
        assert entry.details["alert"] == str(alert.id)
    sensor.flush()  # takes in the accepted fact
    sensor.write(records([write(value=85)]))
    sensor.flush()
    (again,) = alerts(ready)
    assert again.occurrences == 1


def test_accept_refuses_other_alerts_and_no_reason(ready: Store, ctx: Context, audit: AuditLog) -> None:
    with ready.transaction() as session:
        with pytest.raises(InvalidInput, match="why"):
            services.accept_fact(session, ctx, audit, SITE, "edge", "a|b|6|502|1", {}, " ")
        with pytest.raises(InvalidInput, match="not a fact"):
            services.accept_fact(session, ctx, audit, SITE, "edge", "a|b", {}, "ok")
        fact = services.accept_fact(session, ctx, audit, SITE, "asset", "10.9.9.9", {}, "the new HMI")
        assert fact.scope == "site"


def test_reset_forgets_a_scope_and_a_running_tee_follows(ready: Store, ctx: Context, audit: AuditLog) -> None:
    sensor = tee(ready, ctx)
    sensor.write(records([{}]))
    sensor.baseline.protect(SITE)
    sensor.flush()
    with ready.transaction() as session:
        assert services.reset(session, ctx, audit, SITE, "asset:10.2.0.10") == 3  # edge, service, polling
        with pytest.raises(NotFound):
            services.reset(session, ctx, audit, SITE, "asset:10.9.9.9")
    sensor.flush()
    assert sensor.baseline.scopes[(SITE, "asset:10.2.0.10")].state == "learning"
    # the asset's facts are gone, also from its conduit, which still protects: deviations there
    sensor.write(records([{"function": 4}]))
    assert [d.key.kind.value for d in sensor.pending.values()] == ["edge", "service"]
    assert all(d.scopes == ("conduit:scada-cell",) for d in sensor.pending.values())
    with ready.transaction() as session:
        kinds = session.scalars(select(BaselineFact.kind).where(BaselineFact.scope == "asset:10.2.0.10"))
        assert sorted(kinds) == []


def test_facts_are_saved_at_the_next_flush_when_a_save_fails(
    ready: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction of a failed save rolls back: what it held is saved by the next flush."""
    from sqlalchemy.exc import OperationalError

    sensor = tee(ready, ctx)
    sensor.write(records([{}]))
    sensor.flush()
    sensor.write(records([write()]))  # a write: new facts (service, written range, setpoint)
    real = services.sync

    def sync_then_fail(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    monkeypatch.setattr(services, "sync", sync_then_fail)
    assert sensor.flush() == 0
    monkeypatch.setattr(services, "sync", real)
    sensor.flush()
    with ready.transaction() as session:
        stored = len(session.scalars(select(BaselineFact).where(BaselineFact.site == SITE)).all())
    assert stored == len(sensor.baseline.facts)


def test_resetting_a_conduit_keeps_the_facts_its_protecting_assets_judge_with(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    """Every fact across a conduit is also its server's asset fact: a conduit's reset releases
    them from the conduit (they were deleted, and the asset scopes flooded normal traffic)."""
    sensor = tee(ready, ctx)
    sensor.write(records([{}, write()]))
    sensor.baseline.protect(SITE)
    sensor.flush()
    with ready.transaction() as session:
        before = {row.scope: row.facts for row in services.scopes(session, SITE)}
        conduit = next(scope for scope in before if scope.startswith("conduit:"))
        assert services.reset(session, ctx, audit, SITE, conduit) == 0  # none forgotten
        after = {row.scope: row.facts for row in services.scopes(session, SITE)}
        assert after == {**before, conduit: 0}
        assert session.scalars(select(BaselineFact).where(BaselineFact.conduit == conduit)).all() == []
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "baseline.reset"))
        assert entry.details == {"facts_forgotten": 0, "facts_released": before[conduit]}
    sensor.flush()  # the running sensor follows
    sensor.write(records([{"ts": WEDNESDAY_NOON + 60 * SECOND}, write(ts=WEDNESDAY_NOON + 60 * SECOND)]))
    assert sensor.pending == {}
    restarted = tee(ready, ctx)
    restarted.write(records([{"ts": WEDNESDAY_NOON + 90 * SECOND}, write(ts=WEDNESDAY_NOON + 90 * SECOND)]))
    assert restarted.pending == {}
    assert sensor.baseline.counts()[(SITE, "asset:10.2.0.10")] == before["asset:10.2.0.10"]


def stored_polling(store: Store) -> dict[str, object]:
    with store.transaction() as session:
        (fact,) = session.scalars(select(BaselineFact).where(BaselineFact.kind == "polling"))
        return dict(fact.value)


def test_saves_add_only_the_intervals_seen_since_the_last_save(ready: Store, ctx: Context) -> None:
    """A live sensor saves every minute: each save adds what was learnt since the one before, and
    saves of a protecting scope's sightings add nothing (they doubled the count at every save)."""
    sensor = tee(ready, ctx)
    sensor.write(polls(11, 1.0))  # 10 intervals of 1 s
    sensor.flush()
    assert stored_polling(ready) == {"median_ns": SECOND, "intervals": 10}
    for i in range(11, 31):  # one read a minute: one more interval each
        sensor.write(polls(1, 1.0, start=WEDNESDAY_NOON + i * SECOND))
        sensor.flush()
    assert stored_polling(ready) == {"median_ns": SECOND, "intervals": 30}
    sensor.baseline.protect(SITE)
    for i in range(31, 81):
        sensor.write(polls(1, 1.0, start=WEDNESDAY_NOON + i * SECOND))
        sensor.flush()
    assert stored_polling(ready) == {"median_ns": SECOND, "intervals": 30}
    assert alerts(ready) == []


def test_a_reset_after_protecting_by_hand_learns_for_a_whole_window_again(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = tee(ready, ctx)
    sensor.write(records([{}]))
    sensor.close()
    with ready.transaction() as session:
        services.protect(session, ctx, audit, SITE, "asset:10.2.0.10")  # by hand: ends where it began
        services.reset(session, ctx, audit, SITE, "asset:10.2.0.10")
        row = services.get_scope(session, SITE, "asset:10.2.0.10")
        assert row.state == "learning" and row.learning_started == ctx.clock.now()
        assert row.learning_ends - row.learning_started == timedelta(days=7)
        services.protect(session, ctx, audit, SITE, "asset:10.2.0.10")
        services.reset(session, ctx, audit, SITE, "asset:10.2.0.10", learning_ns=3600 * SECOND)
        assert row.learning_ends - row.learning_started == timedelta(hours=1)
    sensor = tee(ready, ctx)  # a sensor learns it again: traffic after the reset is no deviation
    after = int(ctx.clock.now().timestamp()) * SECOND + 60 * SECOND  # inside the new window
    sensor.write(records([{"ts": after, "function": 4}]))
    assert sensor.pending == {}


def test_accepting_a_polling_change_makes_the_new_period_the_learnt_one(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = tee(ready, ctx)
    sensor.write(polls(2000, 10.0))  # a long-learnt 10 s period
    sensor.baseline.protect(SITE)
    later = WEDNESDAY_NOON + 30_000 * SECOND
    sensor.write(polls(10, 2.0, start=later))
    sensor.flush()
    (alert,) = alerts(ready)
    assert alert.rule_id == "pw-baseline-polling-changed"
    with ready.transaction() as session:
        fact = services.accept_alert(session, ctx, audit, alert.id, "faster polling for the new recipe")
        assert fact.value["median_ns"] == 2 * SECOND
    sensor.flush()  # takes in the accepted period
    for minute in range(1, 4):
        sensor.write(polls(30, 2.0, start=later + minute * 60 * SECOND))
        sensor.flush()
    (again,) = alerts(ready)
    assert again.occurrences == 1
    assert stored_polling(ready)["median_ns"] == 2 * SECOND


def guarded_site() -> SiteModel:
    """The plant site with a safe range of 0 to 70 on the PLC's holding register 100."""
    site = plant_site()
    register = Register(100, "speed", "holding", "uint16", safe_range=(0.0, 70.0))
    plc = replace(site.assets[1], registers=(register,))
    return replace(site, assets=(site.assets[0], plc, *site.assets[2:]))


def test_a_setpoint_outside_the_register_maps_safe_range_cannot_be_accepted(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = BaselineTee(ready, ctx, SITE, None, scoper=Scoper([guarded_site()]), monotonic=lambda: 0.0)
    sensor.write(records([write(value=40)]))
    sensor.baseline.protect(SITE)
    sensor.write(records([write(value=90)]))
    sensor.flush()
    (alert,) = alerts(ready)
    with ready.transaction() as session:
        with pytest.raises(InvalidInput, match=r"safe range comes from the register map in plant\.yaml"):
            services.accept_alert(session, ctx, audit, alert.id, "the new recipe")
        assert session.scalars(select(AuditEntry)).all() == []


def test_a_rate_limited_alert_of_deviations_says_how_to_accept_them(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = tee(ready, ctx)
    sensor.write(records([{}]))
    sensor.baseline.protect(SITE)
    sensor.write(records([{"src": f"10.1.0.{100 + i}"} for i in range(40)]))  # 40 new edges at once
    sensor.flush()
    (folded,) = [a for a in alerts(ready) if a.rate_limited and a.rule_id == "pw-baseline-new-edge"]
    with ready.transaction() as session:
        with pytest.raises(InvalidInput, match="past the rate limit") as refused:
            services.accept_alert(session, ctx, audit, folded.id, "new HMIs")
        assert "not a baseline deviation" not in str(refused.value)
        assert "accepted one by one" in str(refused.value)


def test_facts_stored_without_a_table_are_given_one_when_a_sensor_loads_them(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    sensor = tee(ready, ctx)
    sensor.write(records([write(value=40), write(value=60)]))
    sensor.close()
    with ready.transaction() as session:  # as an older version stored them: no table in the key
        for row in session.scalars(
            select(BaselineFact).where(BaselineFact.kind.in_(["written_range", "setpoint"]))
        ):
            row.key = row.key.rsplit("|", 1)[0]
        services.protect(session, ctx, audit, SITE)
    restarted = tee(ready, ctx)
    restarted.write(records([write(value=50, ts=WEDNESDAY_NOON + 60 * SECOND)]))
    assert restarted.pending == {}  # the learnt range and setpoint hold
    restarted.close()
    with ready.transaction() as session:
        keys = session.scalars(
            select(BaselineFact.key).where(BaselineFact.kind.in_(["written_range", "setpoint"]))
        )
        assert set(keys) == {"10.2.0.10|1|1|holding", "10.2.0.10|1|100|holding"}  # no legacy row left
