"""Monitoring the monitor: sensors report heartbeats; a watchdog raises alerts for a sensor that
went silent, for packets the capture lost, and for a sensor clock that disagrees with the store's.

A live sensor (`sensor run --interface` or `--tap`) writes a heartbeat every `HEARTBEAT_SECONDS`
and a last one when it stops (state `stopped`); a run over capture files reports once, stopped.
`check_sensors` compares each running sensor's last heartbeat with now: silent past
`silent_after` seconds -> `pw-monitor-sensor-silent`; packets dropped since the last check ->
`pw-monitor-capture-loss` (each drop is reported once: `dropped_reported` remembers how many
were); the sensor's wall clock more than `skew_limit` seconds from the store's when it wrote ->
`pw-monitor-clock-skew`. Alerts of one sensor are deduplicated while open; a silence raises one
alert (not an occurrence at every check) until it is closed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plantwarden.alerts.models import Alert, AlertStatus, Severity
from plantwarden.alerts.services import AlertDraft, raise_alert
from plantwarden.core.clock import Clock, from_nanoseconds
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PlantwardenError
from plantwarden.monitoring.models import SensorStatus

HEARTBEAT_SECONDS = 15.0
SILENT_AFTER = 120.0
SKEW_LIMIT = 5.0
DETECTOR = "monitoring.watchdog"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heartbeat:
    """What a sensor reports: who it is, what it reads, how much it read and lost, its clocks."""

    site: str
    segment: str
    name: str
    source: str
    state: str
    started_at: datetime
    reported_at: datetime
    packets: int
    captured: int = 0
    dropped: int = 0
    last_packet_at: datetime | None = None


def record_heartbeat(session: Session, heartbeat: Heartbeat, received_at: datetime) -> SensorStatus:
    """Store a heartbeat; `received_at` is the store's clock (the watchdog's reference)."""
    row = session.get(SensorStatus, (heartbeat.site, heartbeat.segment, heartbeat.name))
    if row is None or row.started_at != heartbeat.started_at:  # a new run starts its loss count afresh
        if row is not None:
            session.delete(row)
            session.flush()
        row = SensorStatus(
            site=heartbeat.site,
            segment=heartbeat.segment,
            name=heartbeat.name,
            started_at=heartbeat.started_at,
            dropped_reported=0,
        )
        session.add(row)
    row.source, row.state = heartbeat.source, heartbeat.state
    row.reported_at, row.received_at = heartbeat.reported_at, received_at
    row.last_packet_at = heartbeat.last_packet_at
    row.packets, row.captured, row.dropped = heartbeat.packets, heartbeat.captured, heartbeat.dropped
    row.clock_skew_s = (heartbeat.reported_at - received_at).total_seconds()
    session.flush()
    return row


@dataclass
class WatchReport:
    """What one check found: sensors seen, and the alerts raised or counted again."""

    sensors: int = 0
    silent: int = 0
    lossy: int = 0
    skewed: int = 0


def check_sensors(
    session: Session,
    ctx: Context,
    *,
    silent_after: float = SILENT_AFTER,
    skew_limit: float = SKEW_LIMIT,
) -> WatchReport:
    """Raise the alerts of every sensor's health (see the module docstring)."""
    now = ctx.clock.now()
    report = WatchReport()
    for row in session.scalars(select(SensorStatus).order_by(SensorStatus.site, SensorStatus.name)):
        report.sensors += 1
        if row.state == "running" and now - _utc(row.received_at) > timedelta(seconds=silent_after):
            report.silent += 1
            if not _open(session, row, "sensor-silent"):  # one alert per silence, not one per check
                _raise(session, ctx, row, "sensor-silent", Severity.HIGH, _silent_text(row, now))
        if row.dropped > row.dropped_reported:
            report.lossy += 1
            _raise(session, ctx, row, "capture-loss", Severity.MEDIUM, _loss_text(row))
            row.dropped_reported = row.dropped
        if row.state == "running" and abs(row.clock_skew_s) > skew_limit:
            report.skewed += 1
            _raise(session, ctx, row, "clock-skew", Severity.MEDIUM, _skew_text(row))
    session.flush()
    return report


def _key(row: SensorStatus, what: str) -> str:
    return f"pw-monitor-{what}|{row.site}|{row.segment}|{row.name}"


def _open(session: Session, row: SensorStatus, what: str) -> bool:
    """Whether an alert of this kind is open for the sensor."""
    found = session.scalars(
        select(Alert.id).where(Alert.dedup_key == _key(row, what), Alert.status != AlertStatus.CLOSED)
    ).first()
    return found is not None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _silent_text(row: SensorStatus, now: datetime) -> str:
    quiet = (now - _utc(row.received_at)).total_seconds()
    return (
        f"sensor {row.name} ({row.source}) at {row.site}/{row.segment} has not reported for "
        f"{quiet:,.0f} s (last heartbeat {row.received_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{row.packets:,} packets read): "
        "the segment is not monitored; check the sensor process, its interface and the SPAN port"
    )


def _loss_text(row: SensorStatus) -> str:
    new = row.dropped - row.dropped_reported
    share = row.dropped / row.captured * 100 if row.captured else 0.0
    return (
        f"sensor {row.name} ({row.source}) at {row.site}/{row.segment} lost {new:,} packets since the "
        f"last check ({row.dropped:,} of {row.captured:,} in this run, {share:.2f} %): traffic was not "
        "inspected; the sensor cannot keep up or its buffer is too small"
    )


def _skew_text(row: SensorStatus) -> str:
    ahead = "ahead of" if row.clock_skew_s > 0 else "behind"
    return (
        f"sensor {row.name} at {row.site}/{row.segment}: its clock is {abs(row.clock_skew_s):,.1f} s "
        f"{ahead} the store's; records and alerts carry its times: synchronise it (NTP)"
    )


def _raise(
    session: Session, ctx: Context, row: SensorStatus, what: str, severity: Severity, text: str
) -> None:
    title = {
        "sensor-silent": "Sensor silent",
        "capture-loss": "Sensor lost packets",
        "clock-skew": "Sensor clock skew",
    }[what]
    draft = AlertDraft(
        site=row.site,
        title=f"{title}: {row.name} ({row.segment})",
        description=text,
        severity=severity,
        detector=DETECTOR,
        rule_id=f"pw-monitor-{what}",
        rule_name=title,
        evidence=[
            {
                "kind": "sensor",
                "sensor": row.name,
                "segment": row.segment,
                "source": row.source,
                "state": row.state,
                "received_at": _utc(row.received_at).isoformat(),
                "packets": row.packets,
                "captured": row.captured,
                "dropped": row.dropped,
                "clock_skew_s": round(row.clock_skew_s, 3),
            }
        ],
        dedup_key=_key(row, what),
    )
    raise_alert(session, ctx, draft)


def store_clock(session: Session) -> datetime:
    """The store's own clock (PostgreSQL's now(), SQLite's CURRENT_TIMESTAMP to the second), the
    reference a sensor's clock is compared with; sensors on other hosts share it."""
    value = session.execute(select(func.current_timestamp())).scalar_one()
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS", UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    moment: datetime = value
    return _utc(moment)


class SensorHeartbeats:
    """A running sensor's heartbeats, written in transactions of their own every `every` seconds
    (`beat`) and once when it stops (`stop`). A failure to write is logged, never fatal: the
    watchdog will see the sensor as silent, which is the truth from its side."""

    def __init__(
        self, store: Store, clock: Clock, identity: Heartbeat, *, every: float = HEARTBEAT_SECONDS
    ) -> None:
        self.store, self.clock, self.identity, self.every = store, clock, identity, every
        self._next = 0.0

    def beat(
        self, packets: int, loss: tuple[int, int] | None, last_ts_ns: int | None, *, force: bool = False
    ) -> None:
        """Write a heartbeat if one is due (or `force`)."""
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.every
        self._write("running", packets, loss, last_ts_ns)

    def stop(self, packets: int, loss: tuple[int, int] | None, last_ts_ns: int | None) -> None:
        """The last heartbeat: the sensor stopped (a stopped sensor is not silent)."""
        self._write("stopped", packets, loss, last_ts_ns)

    def _write(self, state: str, packets: int, loss: tuple[int, int] | None, last_ts_ns: int | None) -> None:
        captured, dropped = loss if loss is not None else (0, 0)
        last = from_nanoseconds(last_ts_ns) if last_ts_ns is not None else None
        heartbeat = replace(
            self.identity,
            state=state,
            reported_at=self.clock.now(),
            packets=packets,
            captured=captured,
            dropped=dropped,
            last_packet_at=last,
        )
        try:
            with self.store.transaction() as session:
                record_heartbeat(session, heartbeat, store_clock(session))
        except (PlantwardenError, SQLAlchemyError, OSError) as error:
            log.warning("sensor %s: heartbeat not written: %s", self.identity.name, error)
