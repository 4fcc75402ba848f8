from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plantwarden.alerts import services
from plantwarden.alerts.errors import AlertNotFound, AlertTransitionRefused, InvalidAlert
from plantwarden.alerts.models import AlertStatus, Severity
from plantwarden.alerts.queries import AlertFilter, list_alerts
from plantwarden.core import eventlog, migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.eventlog import EventRecord


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def draft(**overrides: object) -> services.AlertDraft:
    values: dict[str, object] = {
        "site": "plant-a",
        "title": "Write to PLC from the IT zone",
        "severity": Severity.HIGH,
        "detector": "detection.rules",
        "rule_id": "PW-ZONE-001",
        "rule_name": "Write across a conduit that allows reads only",
        "assets": ["10.0.1.3", "10.9.0.7"],
        "evidence": [{"kind": "protocol", "ts": 1, "src": "10.9.0.7", "dst": "10.0.1.3", "function": 6}],
        "techniques": ["T0855"],
    }
    values.update(overrides)
    return services.AlertDraft(**values)  # type: ignore[arg-type]


def event_types(store: Store) -> list[str]:
    with store.transaction() as session:
        return list(session.scalars(select(EventRecord.type).order_by(EventRecord.position)))


def test_raising_an_alert_stores_it_and_announces_it(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft())
    with ready.transaction() as session:
        stored = services.get_alert(session, alert.id)
        assert (stored.status, stored.severity_name, stored.occurrences) == (AlertStatus.NEW, "high", 1)
        assert stored.first_seen == ctx.clock.now() and stored.id.version == 7
        assert stored.evidence[0]["dst"] == "10.0.1.3"
    assert event_types(ready) == ["alerts.AlertRaised"]


def test_a_repeat_with_the_same_key_counts_instead_of_opening_another(ready: Store, ctx: Context) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    with ready.transaction() as session:
        first = services.raise_alert(
            session, ctx, draft(dedup_key="zone:it->cell-1", severity=Severity.MEDIUM)
        )
    clock.advance(timedelta(minutes=3))
    with ready.transaction() as session:
        again = services.raise_alert(session, ctx, draft(dedup_key="zone:it->cell-1", assets=["10.0.1.4"]))
    assert again.id == first.id
    with ready.transaction() as session:
        alert = services.get_alert(session, first.id)
        assert alert.occurrences == 2
        assert alert.severity == Severity.HIGH  # the worse of the two
        assert alert.last_seen - alert.first_seen == timedelta(minutes=3)
        assert alert.assets == ["10.0.1.3", "10.0.1.4", "10.9.0.7"]
        assert len(alert.evidence) == 2
    assert event_types(ready) == ["alerts.AlertRaised", "alerts.AlertRepeated"]


def test_a_closed_alert_is_not_reopened_by_a_repeat(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        first = services.raise_alert(session, ctx, draft(dedup_key="k"))
        services.close(session, ctx, first.id, "commissioning", verdict="false_positive")
    with ready.transaction() as session:
        second = services.raise_alert(session, ctx, draft(dedup_key="k"))
    assert second.id != first.id


def test_lifecycle_new_acknowledged_closed(ready: Store, ctx: Context) -> None:
    actor = Context(source="test", clock=ctx.clock, actor="alice")
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft())
        services.acknowledge(session, actor, alert.id, "looking into it")
    with pytest.raises(AlertTransitionRefused, match="only a new alert"), ready.transaction() as session:
        services.acknowledge(session, actor, alert.id)
    with ready.transaction() as session:
        closed = services.close(
            session, actor, str(alert.id), "engineer confirmed a planned change", verdict="benign"
        )
        assert (closed.status, closed.status_by, closed.status_note) == (
            AlertStatus.CLOSED,
            "alice",
            "engineer confirmed a planned change",
        )
    with pytest.raises(AlertTransitionRefused, match="already closed"), ready.transaction() as session:
        services.close(session, actor, alert.id, "again", verdict="benign")
    with pytest.raises(InvalidAlert, match="needs a verdict"), ready.transaction() as session:
        services.close(session, actor, alert.id, "no verdict")
    assert event_types(ready)[-2:] == ["alerts.AlertAcknowledged", "alerts.AlertClosed"]


def test_bad_drafts_and_unknown_ids_are_refused(ready: Store, ctx: Context) -> None:
    with pytest.raises(InvalidAlert, match="needs a title"), ready.transaction() as session:
        services.raise_alert(session, ctx, draft(title=" "))
    with pytest.raises(InvalidAlert, match="plain JSON"), ready.transaction() as session:
        services.raise_alert(session, ctx, draft(evidence=[{"when": object()}]))
    with pytest.raises(AlertNotFound, match="not a UUID"), ready.transaction() as session:
        services.get_alert(session, "nope")
    with ready.transaction() as session:
        assert eventlog.head_position(session) == 0  # nothing half-raised


def test_lists_filter_and_sort_newest_first(ready: Store, ctx: Context) -> None:
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    with ready.transaction() as session:
        for number, severity in enumerate([Severity.LOW, Severity.CRITICAL, Severity.MEDIUM]):
            clock.advance(timedelta(minutes=1))
            services.raise_alert(
                session, ctx, draft(title=f"alert {number}", severity=severity, assets=[f"10.0.1.{number}"])
            )
        services.raise_alert(session, ctx, draft(site="plant-b", title="elsewhere"))
    with ready.transaction() as session:
        titles = [a.title for a in list_alerts(session, AlertFilter(site="plant-a"))]
        assert titles == ["alert 2", "alert 1", "alert 0"]
        severe = list_alerts(session, AlertFilter(min_severity=Severity.MEDIUM, site="plant-a"))
        assert [a.title for a in severe] == ["alert 2", "alert 1"]
        assert [a.title for a in list_alerts(session, AlertFilter(asset="10.0.1.1"))] == ["alert 1"]
        assert len(list_alerts(session, AlertFilter(limit=2))) == 2
        assert list_alerts(session, AlertFilter(status=AlertStatus.CLOSED)) == []


def test_asset_and_technique_filters_match_whole_list_items_exactly(ready: Store, ctx: Context) -> None:
    # The SQL only narrows the candidates (LIKE over the lists' JSON text); the items must still
    # match exactly: no wildcard, no other case, no substring of a longer item.
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    lists = [
        (["plc_1"], ["T0855"]),
        (["PLC_1", "plcX1"], ["T0836"]),
        (["plc_10"], ["T0855", "T0836"]),
        (["50%"], []),
    ]
    with ready.transaction() as session:
        for number, (assets, techniques) in enumerate(lists):
            clock.advance(timedelta(minutes=1))
            services.raise_alert(
                session, ctx, draft(title=f"alert {number}", assets=assets, techniques=techniques)
            )
    with ready.transaction() as session:

        def titles(**query: object) -> list[str]:
            return [a.title for a in list_alerts(session, AlertFilter(**query))]  # type: ignore[arg-type]

        assert titles(asset="plc_1") == ["alert 0"]
        assert titles(asset="PLC_1") == ["alert 1"]
        assert titles(asset="50%") == ["alert 3"]
        assert titles(asset="%") == []
        assert titles(technique="T0855") == ["alert 2", "alert 0"]
        assert titles(technique="T0855", limit=1) == ["alert 2"]
        assert titles(technique="T0855", offset=1) == ["alert 0"]
        assert titles(technique="T0855", asset="plc_10") == ["alert 2"]
