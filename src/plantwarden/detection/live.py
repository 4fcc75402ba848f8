"""The zone check on live records: a record sink that checks every batch on its way to the next.

`ZoneCheckTee` sits in the sensor's sink chain (in front of the records plane, or of the
inventory feed): each protocol or flow batch is checked against the site's model, its
violations are added to those kept (by key, so counts add up and memory grows with distinct
violations, not with records; past `limit` distinct ones they are folded per destination, then
into one from many sources to many destinations: `detection.pending`), and the batch goes on
unchanged. Every `flush_seconds`, and on `close()`, the kept violations go to `report`
(`zone_check.alert_reporter`: alerts in the store) and are forgotten; the next flush of the same
key counts another occurrence of its alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.runtime import Runtime
from plantwarden.detection.pending import PENDING_LIMIT, PendingViolations
from plantwarden.detection.segmentation import CHECKED_KINDS, SegmentationCheck
from plantwarden.detection.violations import HOUR_NS, Violation
from plantwarden.detection.zone_check import alert_reporter
from plantwarden.monitoring.requests import RecordSink
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import SiteModel


class ZoneCheckTee:
    """A record sink that checks batches against a site's zones and passes them on to `inner`."""

    def __init__(
        self,
        site: SiteModel,
        inner: RecordSink | None,
        report: Callable[[Sequence[Violation]], object],
        *,
        flush_seconds: float = 60.0,
        window_ns: int = HOUR_NS,
        samples: int = 5,
        limit: int = PENDING_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checker = SegmentationCheck(site, window_ns=window_ns, samples=samples)
        self.inner = inner
        self.report = report
        self.flush_seconds = flush_seconds
        self.samples = samples
        self.monotonic = monotonic
        self.pending = PendingViolations(samples, limit)
        self.checked = 0
        self.reported = 0
        self._next_flush = monotonic() + flush_seconds

    def write(self, batch: RecordBatch) -> WriteReport:
        """Check the batch (protocol records, read aggregates, flows), then pass it on."""
        if batch.kind.name in CHECKED_KINDS and len(batch):
            self.pending.add(self.checker.check(batch))
            self.checked += len(batch)
        if self.monotonic() >= self._next_flush:
            self.flush()
        return self.inner.write(batch) if self.inner is not None else WriteReport(records=len(batch))

    def flush(self) -> int:
        """Report the violations kept so far and forget them; how many there were."""
        found = self.pending.take()
        self._next_flush = self.monotonic() + self.flush_seconds
        if found:
            self.report(found)
            self.reported += len(found)
        return len(found)

    def close(self) -> None:
        """Report what is left (the inner sink is closed by its owner)."""
        self.flush()

    def summary(self) -> str:
        """One line for the sensor's summary."""
        line = (
            f"{'zone check':<27}{self.checked:,} records checked against site {self.checker.site.id}, "
            f"{self.reported:,} violations reported as alerts"
        )
        folded = self.pending.folded
        if folded:
            line += (
                f" ({folded:,} folded into many-source alerts: more than {self.pending.limit:,}"
                " distinct violations between two reports)"
            )
        return line


def open_zone_check(
    runtime: Runtime, plant: Path, site_id: str, inner: RecordSink | None, *, flush_seconds: float = 60.0
) -> ZoneCheckTee:
    """The tee for `plantwarden sensor run --plant FILE`: the site's model from the plant file,
    alerts raised in the process's store."""
    model = load_plant(plant)
    try:
        site = model.site(site_id)
    except KeyError:
        known = ", ".join(s.id for s in model.sites) or "none"
        raise InvalidInput(f"{plant} has no site {site_id!r} (its sites: {known})") from None
    report = alert_reporter(runtime.ready_store(), runtime.context())
    return ZoneCheckTee(site, inner, report, flush_seconds=flush_seconds)
