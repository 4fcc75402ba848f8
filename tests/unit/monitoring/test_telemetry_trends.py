"""The latest samples of a few telemetry series for the overview: of the sites given only, the
last hour only, at most so many series and points, oldest first."""

from __future__ import annotations

import math
from pathlib import Path

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.monitoring.telemetry import Sample, TelemetryIngest
from plantwarden.monitoring.telemetry_trends import HOUR_NS, recent_series

NOW = 1_795_680_000 * SECOND_NS  # 2026-11-26T08:00:00Z
MINUTE = 60 * SECOND_NS


def _write(backend: SQLitePartitions, site: str, samples: list[Sample]) -> None:
    with TelemetryIngest(backend, "test") as ingest:
        ingest.write(site, samples)


def test_recent_series_of_the_sites_given(tmp_path: Path) -> None:
    backend = SQLitePartitions(tmp_path / "records")
    old = [Sample(NOW - HOUR_NS - MINUTE, "tank-0", "level", 1.0)]  # before the window
    levels = [Sample(NOW - (10 - i) * MINUTE, "tank-1", "level", float(i)) for i in range(10)]
    missing = [
        Sample(NOW - 2 * MINUTE, "pump-1", "speed", 5.0),
        Sample(NOW - MINUTE, "pump-1", "speed", math.nan, 1),
    ]
    _write(backend, "plant-a", old + levels + missing)
    _write(backend, "plant-b", [Sample(NOW - MINUTE, "secret", "pressure", 9.0)])

    found = recent_series(backend, ["plant-a"], now_ns=NOW, points=4)

    assert [(s.site, s.device, s.variable) for s in found] == [
        ("plant-a", "pump-1", "speed"),
        ("plant-a", "tank-1", "level"),
    ]
    pump, tank = found
    assert tank.values == (6.0, 7.0, 8.0, 9.0)  # the latest four, oldest first
    assert tank.times_ns == tuple(NOW - (10 - i) * MINUTE for i in range(6, 10))
    assert pump.values[0] == 5.0 and math.isnan(pump.values[1])
    both = recent_series(backend, ["plant-b", "plant-a"], now_ns=NOW, max_series=2)
    assert [(s.site, s.device) for s in both] == [("plant-a", "pump-1"), ("plant-a", "tank-1")]
    assert [s.device for s in recent_series(backend, ["plant-b", "plant-a"], now_ns=NOW)] == [
        "pump-1",
        "tank-1",
        "secret",
    ]
    assert recent_series(backend, [], now_ns=NOW) == []
    assert recent_series(backend, ["plant-a"], now_ns=NOW + 2 * HOUR_NS) == []
