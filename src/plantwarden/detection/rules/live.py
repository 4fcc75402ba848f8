"""The rule engine on live records: a record sink that checks every batch on its way to the next.

`RuleTee` sits in the sensor's sink chain like the zone check's tee: each batch is checked by
the current rules, detections are merged by their alert's dedup key (so a rule matching every
record of a flood makes one pending alert, with its count), and the batch goes on unchanged.
Every `flush_seconds` (1 s: the alert is stored within about a second of its record) and on
`close()`, the pending detections go to `report` (alerts in the store). Every `reload_seconds`
the rule directory is scanned; a changed directory is loaded again and swapped in whole; a
rule whose definition did not change keeps its counts.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.runtime import Runtime
from plantwarden.detection.rules.alerts import dedup_key, detection_reporter
from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.detection import Detection, severity_of
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.loader import PACK, RuleSet
from plantwarden.detection.rules.providers import PlantMaintenance, roles_from_inventory
from plantwarden.detection.rules.samples import hosts_of
from plantwarden.detection.rules.setpoints import PlantSafeRanges
from plantwarden.monitoring.requests import RecordSink
from plantwarden.zones.applied import current_model
from plantwarden.zones.plant.load import load_plant

LATENCIES_KEPT = 10_000


log = logging.getLogger(__name__)


class RuleTee:
    """A record sink that runs the rules of a directory over batches and passes them to `inner`."""

    def __init__(
        self,
        rules: RuleSet,
        inner: RecordSink | None,
        report: Callable[[Sequence[Detection]], object],
        *,
        providers: Providers | None = None,
        flush_seconds: float = 1.0,
        reload_seconds: float = 5.0,
        samples: int = 5,
        monotonic: Callable[[], float] = time.monotonic,
        refresh: Callable[[], Providers] | None = None,
        refresh_seconds: float = 60.0,
    ) -> None:
        self.rules = rules
        self.inner = inner
        self.report = report
        self.providers = providers or Providers()
        self.flush_seconds = flush_seconds
        self.reload_seconds = reload_seconds
        self.samples = samples
        self.monotonic = monotonic
        self.engine = RuleEngine(rules.rules, self.providers, samples=samples)
        self.pending: dict[str, tuple[Detection, float]] = {}
        self.latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.reported = 0
        self.reloads = 0
        now = monotonic()
        self._next_flush = now + flush_seconds
        self._next_reload = now + reload_seconds
        self.refresh = refresh
        self.refresh_seconds = refresh_seconds
        self._next_refresh = now + refresh_seconds

    def write(self, batch: RecordBatch) -> WriteReport:
        """Check the batch with every rule of its kind, then pass it on."""
        entered = self.monotonic()
        if len(batch):
            for detection in self.engine.check(batch):
                self._keep(detection, entered)
        now = self.monotonic()
        if now >= self._next_reload:
            self.reload()
        if self.refresh is not None and now >= self._next_refresh:
            self.refresh_providers()
        if now >= self._next_flush:
            self.flush()
        return self.inner.write(batch) if self.inner is not None else WriteReport(records=len(batch))

    def _keep(self, detection: Detection, entered: float) -> None:
        key = dedup_key(detection)
        if key in self.pending:
            kept, first_entered = self.pending[key]
            self.pending[key] = (merge(kept, detection, self.samples), first_entered)
        else:
            self.pending[key] = (detection, entered)

    def _report(self, found: dict[str, tuple[Detection, float]]) -> None:
        """Report the detections together; when the store refuses one (an invalid draft), report
        them one by one, so that one refusal loses that detection only (logged)."""
        try:
            self.report([detection for detection, _ in found.values()])
        except InvalidInput:
            for detection, _ in found.values():
                try:
                    self.report([detection])
                except InvalidInput as error:
                    log.error("rule %s: detection refused by the alert store: %s", detection.rule.id, error)

    def flush(self) -> int:
        """Report the pending detections and forget them; how many there were."""
        found = self.pending
        self._next_flush = self.monotonic() + self.flush_seconds
        if found:
            try:
                self._report(found)
            except (PlantwardenError, SQLAlchemyError) as error:  # the store is down: keep them, retry
                log.error(
                    "%d rule detections not stored yet (retried in %.0f s): %s",
                    len(found),
                    self.flush_seconds,
                    error,
                )
                return 0
            self.pending = {}
            done = self.monotonic()
            self.latencies.extend(done - entered for _, entered in found.values())
            self.reported += len(found)
        return len(found)

    def reload(self) -> bool:
        """Load the rule directory again if a file changed; whether the rules were replaced."""
        self._next_reload = self.monotonic() + self.reload_seconds
        fresh = self.rules.reload_if_changed()
        if fresh is None:
            return False
        fresh = _keep_rules_of_refused_files(self.rules, fresh)
        engine = RuleEngine(fresh.rules, self.providers, samples=self.samples)
        old = self.engine.by_id()
        for rule_id, tracker in engine.trackers.items():
            previous = old.get(rule_id)
            if previous is not None and previous == tracker.rule and rule_id in self.engine.trackers:
                engine.trackers[rule_id] = self.engine.trackers[rule_id]
        self.rules, self.engine = fresh, engine
        self.reloads += 1
        return True

    def refresh_providers(self) -> None:
        """Read the derived fields' sources again (roles the inventory has learned since, a plant
        model applied since); count state is kept. A failure keeps the providers in use (logged)."""
        self._next_refresh = self.monotonic() + self.refresh_seconds
        if self.refresh is None:
            return
        try:
            fresh = self.refresh()
        except (PlantwardenError, SQLAlchemyError) as error:
            log.error("rule providers not refreshed (the previous ones stay in use): %s", error)
            return
        self.providers = self.engine.providers = fresh

    def close(self) -> None:
        """Report what is pending (the inner sink is closed by its owner)."""
        self.flush()

    def summary(self) -> str:
        """One line for the sensor's summary."""
        line = (
            f"{'rules':<27}{self.engine.checked:,} records checked by {len(self.rules.rules)} rules, "
            f"{self.reported:,} detections reported as alerts"
        )
        if self.rules.refused:
            line += f" ({len(self.rules.refused)} problems in rule files: plantwarden rules validate)"
        return line


def merge(kept: Detection, new: Detection, samples: int) -> Detection:
    """Two detections of one alert as one: counts added, times widened, samples topped up."""
    outside = kept.outside + new.outside
    shown = (*kept.samples, *new.samples[: max(samples - len(kept.samples), 0)])
    return replace(
        kept,
        count=kept.count + new.count if kept.rule.count is None else max(kept.count, new.count),
        records=kept.records + new.records,
        first_ns=min(kept.first_ns, new.first_ns),
        last_ns=max(kept.last_ns, new.last_ns),
        samples=shown,
        outside=outside,
        severity=severity_of(kept.rule, outside),
        hosts=hosts_of(shown),
    )


def _keep_rules_of_refused_files(before: RuleSet, fresh: RuleSet) -> RuleSet:
    """`fresh`, with the rules of each file that no longer loads as they were last loaded (an edit
    with a typo must not take a rule out of a running sensor unseen); each refusal is logged."""
    refused = [Path(problem.file) for problem in fresh.refused]  # a file, or the whole directory
    for problem in fresh.refused:
        log.error("rule file refused (its rules as last loaded stay in use): %s", problem)
    loaded = {rule.id for rule in fresh.rules}
    kept = tuple(
        r
        for r in before.rules
        if r.id not in loaded and any(Path(r.file).is_relative_to(path) for path in refused)
    )
    return replace(fresh, rules=fresh.rules + kept) if kept else fresh


def open_rule_tee(
    runtime: Runtime,
    directory: Path | None,
    site: str,
    inner: RecordSink | None,
    plant: Path | None = None,
) -> RuleTee:
    """The tee for `plantwarden sensor run --rules DIR` (default: the built-in pack): roles from the
    stored inventory of the site, maintenance windows and registers' safe ranges from `plant` (else
    the applied plant model), read again every minute; alerts raised in the process's store."""
    store = runtime.ready_store()
    rules = RuleSet.load(directory or PACK).usable()

    def providers() -> Providers:
        with store.transaction() as session:
            roles = roles_from_inventory(session, site)
            model = load_plant(plant) if plant is not None else current_model(session)
        sites = [s for s in model.sites if s.id == site] if model is not None else []
        return Providers(
            roles=roles,
            maintenance=PlantMaintenance(sites) if sites else None,
            out_of_range=PlantSafeRanges(sites) if sites else None,
        )

    report = detection_reporter(store, runtime.context())
    return RuleTee(rules, inner, report, providers=providers(), refresh=providers)
