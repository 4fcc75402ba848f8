"""What the console's overview shows besides the store and the sites: assets per zone, alerts
first seen per hour, open alerts per severity and the latest telemetry, each as chart geometry
(`charts`) and as the rows of the data table beside it.

Each panel counts only where the caller holds the panel's own action: assets where they may read
sites (the page's action), alerts where they may read alerts, telemetry at the sites where they
may read records. A panel whose action they hold nowhere says so and counts nothing. Every
number comes from one aggregate query (or one limited read of the records plane).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from plantwarden.alerts.models import Severity
from plantwarden.alerts.queries import OPEN_STATUSES, count_first_seen, count_open
from plantwarden.core.clock import iso_time, nanoseconds
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.inventory.queries import Places, count_per_zone
from plantwarden.monitoring.telemetry_trends import recent_series
from plantwarden.web.charts import Part, columns, horizontal_bars, sparkline

HOURS = 24
"""The alerts-over-time chart: one column per hour over the last day."""
ZONES_SHOWN = 40
SEVERITIES = tuple(reversed(Severity))  # worst first


@dataclass(frozen=True)
class Row:
    """One bar of a chart and one row of its data table: a label and its parts (`charts.Part`)."""

    label: str
    parts: tuple[Part, ...]
    site: str = ""
    zone: str | None = None
    when: str = ""  # an hour's date and time

    @property
    def total(self) -> int:
        return sum(part.value for part in self.parts)


def _chart_rows(rows: Sequence[Row]) -> list[tuple[str, Sequence[Part]]]:
    return [(row.label, row.parts) for row in rows]


def assets_panel(session: Session, places: Places) -> dict[str, Any]:
    """Assets per zone: a horizontal bar each, linked to the site's asset list (which lists
    by site; the zone is its Place column)."""
    counts = count_per_zone(session, places, limit=ZONES_SHOWN + 1)
    several_sites = len({c.site for c in counts}) > 1
    rows = []
    for count in counts[:ZONES_SHOWN]:
        zone = count.zone if count.zone is not None else "no zone"
        part = Part("assets", count.assets, "bar-assets", "/assets?" + urlencode({"site": count.site}))
        label = f"{count.site} / {zone}" if several_sites else zone
        rows.append(Row(label, (part,), count.site, count.zone))
    return {
        "rows": rows,
        "chart": horizontal_bars(_chart_rows(rows)),
        "more": len(counts) > ZONES_SHOWN,
        "total": sum(row.total for row in rows),
    }


def open_alerts_panel(session: Session, places: Places) -> dict[str, Any]:
    """Open alerts per severity, new and acknowledged stacked, each part linked to its list."""
    counts = count_open(session, places)
    rows = []
    for severity in SEVERITIES:
        name = severity.name.lower()
        parts = tuple(
            Part(status.value, counts.get((severity, status), 0), f"sev-{name} status-{status.value}",
                 "/alerts?" + urlencode({"severity": name, "status": status.value}))
            for status in OPEN_STATUSES
        )  # fmt: skip
        rows.append(Row(name, parts))
    return {
        "rows": rows,
        "chart": horizontal_bars(_chart_rows(rows), label_width=90),
        "total": sum(row.total for row in rows),
        "statuses": OPEN_STATUSES,
    }


def alerts_over_time_panel(session: Session, places: Places, now: datetime) -> dict[str, Any]:
    """Alerts first seen in each of the last 24 hours (UTC, the current hour last), by severity."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    counts = count_first_seen(session, places, start=start, step=timedelta(hours=1), steps=HOURS)
    rows = []
    for hour in range(HOURS):
        moment = start + timedelta(hours=hour)
        parts = tuple(
            Part(s.name.lower(), counts.get((hour, s), 0), f"sev-{s.name.lower()}")
            for s in reversed(SEVERITIES)
        )
        rows.append(Row(moment.strftime("%H:00"), parts, when=moment.strftime("%Y-%m-%d %H:00")))
    return {
        "rows": rows,
        "chart": columns(_chart_rows(rows)),
        "total": sum(row.total for row in rows),
        "severities": [s.name.lower() for s in SEVERITIES],
        "since": start.strftime("%Y-%m-%d %H:00"),
    }


def telemetry_panel(backend: PartitionBackend, sites: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """The latest samples of up to six series of the last hour, each as a sparkline."""
    found = recent_series(backend, sites, now_ns=nanoseconds(now))
    return [
        {
            "site": series.site,
            "device": series.device,
            "variable": series.variable,
            "line": sparkline(series.times_ns, series.values),
            "samples": [
                {"ts": iso_time(ts)[:19].replace("T", " "), "value": _number(value)}
                for ts, value in zip(series.times_ns, series.values, strict=True)
            ],
            "since": iso_time(series.times_ns[0])[:19].replace("T", " "),
            "until": iso_time(series.times_ns[-1])[:19].replace("T", " "),
        }
        for series in found
    ]


def _number(value: float) -> str:
    return "missing" if math.isnan(value) else f"{value:.6g}"
