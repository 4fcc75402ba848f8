"""Monitoring the monitor: heartbeats, and the watchdog's alerts for silence, loss and clock skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock, SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.monitoring.health import Heartbeat, SensorHeartbeats, check_sensors, record_heartbeat
from plantwarden.monitoring.health_cli import watch_command
from plantwarden.monitoring.models import SensorStatus

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def beat(store: Store, at: datetime, *, dropped: int = 0, state: str = "running", skew: float = 0.0) -> None:
    heartbeat = Heartbeat(
        "plant-a",
        "cell-1",
        "sensor-1",
        "interface eth1",
        state,
        START,
        at + timedelta(seconds=skew),
        1000,
        captured=1000,
        dropped=dropped,
    )
    with store.transaction() as session:
        record_heartbeat(session, heartbeat, at)


def watch(store: Store, at: datetime) -> list[tuple[str, int]]:
    with store.transaction() as session:
        check_sensors(session, Context(source="test", clock=FixedClock(at)))
    with store.transaction() as session:
        return [(a.rule_id, a.occurrences) for a in session.scalars(select(Alert).order_by(Alert.rule_id))]


def test_a_running_sensor_that_stops_reporting_is_silent(store: Store) -> None:
    migrate.ensure_ready(store)
    beat(store, START)
    assert watch(store, START + timedelta(seconds=60)) == []
    assert watch(store, START + timedelta(seconds=121)) == [("pw-monitor-sensor-silent", 1)]
    assert watch(store, START + timedelta(seconds=200)) == [
        ("pw-monitor-sensor-silent", 1)
    ]  # one per silence


def test_a_stopped_sensor_is_not_silent(store: Store) -> None:
    migrate.ensure_ready(store)
    beat(store, START, state="stopped")
    assert watch(store, START + timedelta(hours=5)) == []


def test_lost_packets_are_reported_once_each(store: Store) -> None:
    migrate.ensure_ready(store)
    beat(store, START, dropped=0)
    assert watch(store, START) == []
    beat(store, START + timedelta(seconds=15), dropped=40)
    assert watch(store, START + timedelta(seconds=15)) == [("pw-monitor-capture-loss", 1)]
    assert watch(store, START + timedelta(seconds=30)) == [("pw-monitor-capture-loss", 1)]  # nothing new
    beat(store, START + timedelta(seconds=45), dropped=41)
    assert watch(store, START + timedelta(seconds=45)) == [("pw-monitor-capture-loss", 2)]
    with store.transaction() as session:
        alert = session.scalars(select(Alert)).one()
        assert "lost 40 packets" in alert.description


def test_a_sensor_clock_off_by_more_than_the_limit_is_reported(store: Store) -> None:
    migrate.ensure_ready(store)
    beat(store, START, skew=3.0)
    assert watch(store, START) == []
    beat(store, START + timedelta(seconds=15), skew=-42.0)
    assert watch(store, START + timedelta(seconds=15)) == [("pw-monitor-clock-skew", 1)]
    with store.transaction() as session:
        assert "42.0 s behind the store's" in session.scalars(select(Alert)).one().description


def test_heartbeats_are_written_with_the_store_s_clock(store: Store) -> None:
    migrate.ensure_ready(store)
    identity = Heartbeat("plant-a", "cell-1", "s", "tap -", "running", START, START, 0)
    beats = SensorHeartbeats(store, SystemClock(), identity, every=3600)
    beats.beat(10, (100, 0), None)
    beats.beat(20, (200, 0), None)  # not due
    beats.stop(30, (300, 2), 1_767_600_000_000_000_000)
    with store.transaction() as session:
        row = session.scalars(select(SensorStatus)).one()
        assert (row.state, row.packets, row.captured, row.dropped) == ("stopped", 30, 300, 2)
        assert abs(row.clock_skew_s) < 2.0  # this host's clock against the store's
        assert row.last_packet_at is not None


def test_a_stopped_sensor_s_clock_is_not_reported_again(store: Store) -> None:
    migrate.ensure_ready(store)
    beat(store, START, state="stopped", skew=30.0)
    assert watch(store, START + timedelta(hours=1)) == []


@pytest.mark.parametrize("every", ["nan", "inf", "١٢"])
def test_the_watchdog_refuses_an_interval_that_is_not_a_finite_ascii_number(every: str) -> None:
    # time.sleep(nan) raised a ValueError traceback, time.sleep(inf) an OverflowError
    result = CliRunner().invoke(watch_command, ["--every", every])
    assert result.exit_code == 2 and "Invalid value for '--every'" in result.output
