"""The latest telemetry of a few series, for the console's overview (process trends).

Telemetry lives in the records plane, not in the store: a read is one limited, newest-first
query per site over the recent window, which opens only the partitions of that window and stops
after the chunks that hold the newest `scan` samples. The series are then told apart among those
few thousand samples, never among everything stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.monitoring.telemetry import SampleQuery, query_samples

HOUR_NS = 3600 * SECOND_NS


@dataclass(frozen=True)
class Series:
    """The latest samples of one device variable, oldest first (a missing value is NaN)."""

    site: str
    device: str
    variable: str
    times_ns: tuple[int, ...]
    values: tuple[float, ...]


def recent_series(
    backend: PartitionBackend,
    sites: Iterable[str],
    *,
    now_ns: int,
    window_ns: int = HOUR_NS,
    max_series: int = 6,
    points: int = 60,
    scan: int = 5000,
) -> list[Series]:
    """Up to `max_series` series with samples in the last `window_ns` before `now_ns`, by site,
    device and variable; each with its latest `points` samples among the newest `scan` of its
    site."""
    found: list[Series] = []
    for site in sorted(set(sites)):
        if len(found) >= max_series:
            break
        found.extend(_site_series(backend, site, now_ns - window_ns, max_series - len(found), points, scan))
    return found


def _site_series(
    backend: PartitionBackend, site: str, since_ns: int, wanted: int, points: int, scan: int
) -> list[Series]:
    batch = query_samples(backend, SampleQuery(site=site, since_ns=since_ns, limit=scan, newest_first=True))
    newest: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for ts, device, variable, value in zip(
        batch["ts"].tolist(), batch["device"], batch["variable"], batch["value"].tolist(), strict=True
    ):
        samples = newest.setdefault((str(device), str(variable)), [])
        if len(samples) < points:
            samples.append((int(ts), float(value)))
    chosen = sorted(newest)[:wanted]
    return [_series(site, key, newest[key]) for key in chosen]


def _series(site: str, key: tuple[str, str], newest_first: list[tuple[int, float]]) -> Series:
    ordered = newest_first[::-1]
    return Series(
        site=site,
        device=key[0],
        variable=key[1],
        times_ns=tuple(ts for ts, _ in ordered),
        values=tuple(value for _, value in ordered),
    )
