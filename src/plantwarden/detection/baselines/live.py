"""Baselines on live records: a record sink that learns and checks every batch on its way on.

`BaselineTee` sits in the sensor's sink chain like the rule tee: each protocol, read-aggregate
or flow batch is cut into facts (`facts.observe`), learnt into the scopes still learning and
checked against those protecting (`learner.Baseline`), and passed on unchanged. Scopes whose
learning window is over (on the records' time) turn protecting. Every `flush_seconds` (60) and
on `close()`, the new facts and states are saved (`services.sync`, which also takes in facts
accepted and scopes protected or reset meanwhile), and the deviations kept since are raised as
alerts, one per broken fact. The tee loads the site's baselines at start, so they survive a
restart. While the store is unreachable, deviations are kept and retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.runtime import Runtime
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.alerting import dedup_key
from plantwarden.detection.baselines.checker import Deviation
from plantwarden.detection.baselines.facts import FactKey
from plantwarden.detection.baselines.learner import LEARNING_NS, Baseline, Scope
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.detection.violations import sample_records
from plantwarden.monitoring.requests import RecordSink
from plantwarden.zones.applied import current_model
from plantwarden.zones.plant.load import load_plant

log = logging.getLogger(__name__)
KINDS = ("protocol", "protocol_read_minutes", "flows")


class BaselineTee:
    """A record sink that learns and checks a site's baselines and passes batches to `inner`."""

    def __init__(
        self,
        store: Store,
        ctx: Context,
        site: str,
        inner: RecordSink | None,
        *,
        scoper: Scoper | None = None,
        learning_ns: int = LEARNING_NS,
        flush_seconds: float = 60.0,
        samples: int = 5,
        monotonic: Callable[[], float] = time.monotonic,
        raise_alerts: bool = True,
    ) -> None:
        self.store, self.ctx, self.site, self.inner = store, ctx, site, inner
        self.scoper = scoper or Scoper()
        self.flush_seconds = flush_seconds
        self.samples = samples
        self.monotonic = monotonic
        self.raise_alerts = raise_alerts
        with store.transaction() as session:
            self.baseline = services.load(session, site, Baseline(learning_ns=learning_ns))
        self.pending: dict[str, Deviation] = {}
        self.checked = 0
        self.deviations = 0
        """Deviations saved by a flush: raised as alerts, or only counted (`raise_alerts` off)."""
        self._next_flush = monotonic() + flush_seconds

    def write(self, batch: RecordBatch) -> WriteReport:
        """Learn and check the batch, then pass it on."""
        if batch.kind.name in KINDS and len(batch):
            mine = (
                batch if bool(np.all(batch["site"] == self.site)) else batch.take(batch["site"] == self.site)
            )
            if len(mine):
                self._check(mine)
        if self.monotonic() >= self._next_flush:
            self.flush()
        return self.inner.write(batch) if self.inner is not None else WriteReport(records=len(batch))

    def _check(self, batch: RecordBatch) -> None:
        time_column = "first_ts" if batch.kind.name == "protocol_read_minutes" else "ts"
        self.baseline.promote(int(batch[time_column].max()))
        found = self.baseline.observe(self.scoper.observe(batch), self.scoper)
        self.checked += len(batch)
        for deviation in found:
            key = dedup_key(deviation)
            kept = self.pending.get(key)
            if kept is None:
                if deviation.row >= 0:
                    deviation.samples = sample_records(batch.take(np.array([deviation.row])))
                self.pending[key] = deviation
            else:
                kept.count += deviation.count
                kept.first_ns, kept.last_ns = (
                    min(kept.first_ns, deviation.first_ns),
                    max(kept.last_ns, deviation.last_ns),
                )
                kept.observed = deviation.observed

    def flush(self) -> int:
        """Save the baselines and raise the deviations kept (unless `raise_alerts` is off: they are
        only counted); how many there were."""
        self._next_flush = self.monotonic() + self.flush_seconds
        found = list(self.pending.values())
        unsaved = {key: (fact.unsaved, fact.delta) for key, fact in self.baseline.facts.items() if fact.dirty}
        changed = [scope for scope in self.baseline.scopes.values() if scope.dirty]
        try:
            with self.store.transaction() as session:
                services.sync(session, self.ctx, self.baseline, self.site)
                if found and self.raise_alerts:
                    services.raise_deviations(session, self.ctx, found, self.scoper.names)
        except (PlantwardenError, SQLAlchemyError) as error:
            self._unsaved_again(unsaved, changed)
            log.error("baselines not saved, %d deviations not raised yet (retried): %s", len(found), error)
            return 0
        except BaseException:
            self._unsaved_again(unsaved, changed)
            raise
        self.pending = {}
        self.deviations += len(found)
        return len(found)

    def _unsaved_again(
        self, unsaved: dict[FactKey, tuple[int, dict[str, Any]]], changed: list[Scope]
    ) -> None:
        """The save rolled back: the facts and scopes are as they were before it (nothing learns
        while a save runs), to be saved at the next flush; counted once, however often it fails."""
        for key, (count, delta) in unsaved.items():
            fact = self.baseline.facts.get(key)
            if fact is not None:
                fact.dirty, fact.unsaved, fact.delta = True, count, delta
        for scope in changed:
            scope.dirty = True

    def close(self) -> None:
        """Save and report what is pending (the inner sink is closed by its owner)."""
        self.flush()

    def summary(self) -> str:
        """One line for the sensor's summary."""
        states = [s.state for (site, _), s in self.baseline.scopes.items() if site == self.site]
        protecting = sum(1 for s in states if s == "protecting")
        return (
            f"{'baselines':<27}{self.checked:,} records checked at site {self.site}: "
            f"{len(states):,} scopes ({protecting:,} protecting), {len(self.baseline.facts):,} facts, "
            + (
                f"{self.deviations:,} deviations reported as alerts"
                if self.raise_alerts
                else f"{self.deviations:,} deviations found, none raised as alerts"
            )
        )


def open_baseline_tee(
    runtime: Runtime,
    site: str,
    inner: RecordSink | None,
    plant: Path | None = None,
    *,
    learning_ns: int = LEARNING_NS,
) -> BaselineTee:
    """The tee for the sensor: the site's baselines from the process's store, scopes from `plant`
    (else the applied plant model), alerts raised in the store; a new scope learns for
    `learning_ns` of record time from its first fact."""
    store = runtime.ready_store()
    with store.transaction() as session:
        model = load_plant(plant) if plant is not None else current_model(session)
    sites = [s for s in model.sites if s.id == site] if model is not None else []
    return BaselineTee(store, runtime.context(), site, inner, scoper=Scoper(sites), learning_ns=learning_ns)
