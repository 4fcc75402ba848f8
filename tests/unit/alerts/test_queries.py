"""The overview's alert counts: open alerts per severity and status, and alerts first seen per
interval; both only of the places given, without suppressed alerts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from plantwarden.alerts import services
from plantwarden.alerts.models import Alert, AlertStatus, Severity
from plantwarden.alerts.queries import count_first_seen, count_open
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store

START = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
NEW, ACKNOWLEDGED = AlertStatus.NEW, AlertStatus.ACKNOWLEDGED


def _raise(
    store: Store, ctx: Context, severity: Severity, *, site: str = "plant-a", zone: str | None = None,
    at: datetime = START, rule: str = "R1",
) -> Alert:  # fmt: skip
    draft = services.AlertDraft(
        site=site, title="t", severity=severity, detector="test", rule_id=rule, rule_name="rule",
        seen_at=at, zone=zone,
    )  # fmt: skip
    with store.transaction() as session:
        return services.raise_alert(session, ctx, draft)


@pytest.fixture
def alerts(store: Store, ctx: Context) -> Store:
    """plant-a: two high (cell-1, one acknowledged), a medium (dmz), a closed critical, a
    suppressed high; plant-b: a critical."""
    migrate.ensure_ready(store)
    _raise(store, ctx, Severity.HIGH, zone="cell-1")
    acknowledged = _raise(store, ctx, Severity.HIGH, zone="cell-1", at=START + timedelta(minutes=90))
    _raise(store, ctx, Severity.MEDIUM, zone="dmz", at=START + timedelta(hours=5))
    closed = _raise(store, ctx, Severity.CRITICAL, zone="cell-1", at=START + timedelta(hours=1))
    hidden = _raise(store, ctx, Severity.HIGH, zone="cell-1", at=START + timedelta(hours=1))
    _raise(store, ctx, Severity.CRITICAL, site="plant-b", at=START + timedelta(hours=1))
    with store.transaction() as session:
        services.acknowledge(session, ctx, acknowledged.id)
        services.close(session, ctx, closed.id, verdict="benign")
        session.execute(update(Alert).where(Alert.id == hidden.id).values(suppressed=True))
    return store


def test_open_alerts_per_severity_and_status_of_the_places_only(alerts: Store) -> None:
    with alerts.transaction() as session:
        whole = count_open(session, [("plant-a", None)])
        zone = count_open(session, [("plant-a", "cell-1")])
        both = count_open(session, [("plant-a", "dmz"), ("plant-b", None)])
        nowhere = count_open(session, [])
    assert whole == {(Severity.HIGH, NEW): 1, (Severity.HIGH, ACKNOWLEDGED): 1, (Severity.MEDIUM, NEW): 1}
    assert zone == {(Severity.HIGH, NEW): 1, (Severity.HIGH, ACKNOWLEDGED): 1}
    assert both == {(Severity.MEDIUM, NEW): 1, (Severity.CRITICAL, NEW): 1}
    assert nowhere == {}


def test_alerts_first_seen_per_interval_and_severity(alerts: Store) -> None:
    with alerts.transaction() as session:
        hours = count_first_seen(session, [("plant-a", None)], start=START, step=timedelta(hours=1), steps=4)
        later = count_first_seen(
            session, [("plant-a", None), ("plant-b", None)], start=START + timedelta(hours=1),
            step=timedelta(hours=2), steps=3,
        )  # fmt: skip
        empty = count_first_seen(session, [("plant-a", None)], start=START, step=timedelta(hours=1), steps=0)
    # the closed critical counts (it was seen); the suppressed high and the hour-5 medium do not
    assert hours == {(0, Severity.HIGH): 1, (1, Severity.HIGH): 1, (1, Severity.CRITICAL): 1}
    # 01:00-03:00, 03:00-05:00, 05:00-07:00: the interval's start is in, its end out
    assert later == {(0, Severity.HIGH): 1, (0, Severity.CRITICAL): 2, (2, Severity.MEDIUM): 1}
    assert empty == {}
