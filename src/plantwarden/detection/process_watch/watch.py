"""Process models on live telemetry: learn each device's model, then watch it, in the sensor.

`ProcessWatch` is a record sink in the sensor's chain. Telemetry batches (the register values the
sensor decodes, `monitoring.register_values`) become one row per device and second
(`frames.DeviceFrames`). A device with a saved model is scored at once; a device without one is
*learning*: its rows are kept until they span `learn_ns` of data time (and at least `min_rows`
rows), then its model is fitted on them alone (thresholds included), saved in the store (so it
survives a restart and holds per site) and the device is *protecting* from the next row on.
Flagged rows become episodes (`episodes.py`) and every `flush_seconds`, and at the end, new
episodes become alerts naming the variables off and by how much. Every batch goes on unchanged.

A protecting device settles as it learned: its first `SETTLE_NS` of rows, and those after each gap
(a stop and a start), are scored as rows with nothing measured, so a start-up transient is neither
flagged nor carried into the smoothed score; a fault that lasts past the settling is flagged then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from sqlalchemy.exc import SQLAlchemyError

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.detection.process.config import ModelConfig
from plantwarden.detection.process.stream import Scorer, Scores
from plantwarden.detection.process_watch.episodes import Episode, Episodes
from plantwarden.detection.process_watch.frames import DeviceFrames, Rows
from plantwarden.detection.process_watch.limits import SETTLE_NS, WatchedModel, settling, smoothed
from plantwarden.monitoring.requests import RecordSink

log = logging.getLogger(__name__)

PLANT_CONFIG = ModelConfig(shrinkage=0.05, smoothing=0.1, quantile=0.999, factor=2.0, hold_seconds=30.0)
"""How a plant device's model learns and decides (see docs/detection.md, "Process models on the
plant's telemetry"): a high quantile and factor, since a false alarm costs an operator's time."""
MAX_LEARNING_ROWS = 200_000
"""Rows a learning device keeps: past it the oldest half is let go (memory stays bounded)."""


@dataclass
class Learning:
    """A device still learning: its rows so far (blocks, each a prefix of the final columns)."""

    blocks: list[Rows] = field(default_factory=list)
    rows: int = 0

    def span_ns(self) -> int:
        return int(self.blocks[-1].times[-1] - self.blocks[0].times[0]) if self.blocks else 0

    def add(self, rows: Rows) -> None:
        self.blocks.append(rows)
        self.rows += len(rows)
        while self.rows > MAX_LEARNING_ROWS and len(self.blocks) > 1:
            self.rows -= len(self.blocks.pop(0))

    def matrix(self) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        names = self.blocks[-1].variables
        values = np.full((self.rows, len(names)), np.nan)
        row = 0
        for block in self.blocks:
            values[row : row + len(block), : block.values.shape[1]] = block.values
            row += len(block)
        times = np.concatenate([block.times for block in self.blocks])
        present = ~np.isnan(values).all(axis=0)
        return [n for n, keep in zip(names, present, strict=True) if keep], times, values[:, present]


@dataclass
class Protecting:
    """A device with a model: the streaming scorer, each variable's smoothed deviation, episodes."""

    model: WatchedModel
    scorer: Scorer
    episodes: Episodes
    level: npt.NDArray[np.float64] | None = None
    rows: int = 0
    flagged: int = 0
    unknown: set[str] = field(default_factory=set)
    """Variables the device reports that its model was not trained on (ignored, listed)."""
    last_ns: int | None = None
    """The time of the device's last row (None before its first: it settles then)."""
    settle_until_ns: int = 0
    """Rows before this time are settling: scored as nothing measured."""
    settled: int = 0
    """Rows scored as settling (each start and gap costs up to `SETTLE_NS` of them)."""


SaveModel = Callable[[str, WatchedModel, int, int, tuple[int, int]], object]
"""Keeps a fitted model: device, model, step (ns), training rows, training interval (ns)."""


class ProcessWatch:
    """A record sink that learns and watches each device's process model (module docstring)."""

    def __init__(
        self,
        site: str,
        inner: RecordSink | None,
        report: Callable[[Sequence[Episode]], object],
        save: SaveModel,
        *,
        models: dict[str, WatchedModel] | None = None,
        learn_ns: int = 3600 * SECOND_NS,
        min_rows: int = 300,
        step_ns: int = SECOND_NS,
        config: ModelConfig = PLANT_CONFIG,
        flush_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        learn: bool = True,
        marks: Mapping[str, Mapping[str, bool]] | None = None,
    ) -> None:
        if learn_ns <= 0 or min_rows < 10:
            raise InvalidInput("the learning window must be positive and cover at least 10 rows")
        self.site = site
        self.inner = inner
        self.report = report
        self.save = save
        self.learn_ns = learn_ns
        self.min_rows = min_rows
        self.config = config
        self.learn = learn
        """Whether devices without a model learn one (False: only the saved models watch)."""
        self.marks = marks or {}
        """Per device, the variables the plant model marks as counters (True) or not (False)."""
        self.frames = DeviceFrames(site=site, step_ns=step_ns)
        self.learning: dict[str, Learning] = {}
        self.protecting: dict[str, Protecting] = {
            device: _protecting(device, model) for device, model in (models or {}).items()
        }
        self.trained: list[str] = []
        self.not_trained: dict[str, str] = {}
        """Why a device with enough rows could not be trained yet (the last reason)."""
        self.reported = 0
        self._unsaved: list[tuple[str, WatchedModel, int, int, tuple[int, int]]] = []
        self._unreported: list[Episode] = []
        self.flush_seconds = flush_seconds
        self.monotonic = monotonic
        self._next_flush = monotonic() + flush_seconds

    def write(self, batch: RecordBatch) -> WriteReport:
        """Learn from or score a telemetry batch; pass every batch on."""
        if batch.kind.name == "telemetry" and len(batch):
            for rows in self.frames.add(batch):
                self._rows(rows)
        if self.monotonic() >= self._next_flush:
            self.flush()
        return self.inner.write(batch) if self.inner is not None else WriteReport(records=len(batch))

    def _rows(self, rows: Rows) -> None:
        watched = self.protecting.get(rows.device)
        if watched is not None:
            self._score(watched, rows)
            return
        if not self.learn:
            self.learning.setdefault(rows.device, Learning()).rows += len(rows)  # counted, not kept
            return
        learning = self.learning.setdefault(rows.device, Learning())
        start = int(learning.blocks[0].times[0]) if learning.blocks else int(rows.times[0])
        cut = int(np.searchsorted(rows.times, start + self.learn_ns, side="left"))
        head, rest = rows.part(0, cut), rows.part(cut, len(rows))
        if len(head):  # only what falls inside the window: a big batch must not train past it
            learning.add(head)
        if not len(rest):
            return
        if learning.rows < self.min_rows:  # the window is over but too thin: learn on
            learning.add(rest)
            return
        self._fit(rows.device, learning)
        watched = self.protecting.get(rows.device)
        if watched is not None:
            self._score(watched, rest)
        else:
            learning.add(rest)

    def fit_now(self) -> list[str]:
        """Fit every learning device that has `min_rows` rows, whatever their span (training on
        stored telemetry: the window is the one asked for); the devices fitted."""
        for rows in self.frames.drain():
            self._rows(rows)
        for device, learning in list(self.learning.items()):
            if learning.rows >= self.min_rows:
                self._fit(device, learning)
        return list(self.trained)

    def _fit(self, device: str, learning: Learning) -> None:
        names, times, values = learning.matrix()
        try:
            model = WatchedModel.fit(times, values, names, self.config, self.marks.get(device))
        except InvalidInput as error:  # e.g. nothing but missing values: keep learning
            if self.not_trained.get(device) != str(error):
                log.warning("process model of %s at %s cannot be trained yet: %s", device, self.site, error)
            self.not_trained[device] = str(error)
            return
        used = int((~settling(times, self.config.gap_periods)).sum())
        self._unsaved.append((device, model, self.frames.step_ns, used, (int(times[0]), int(times[-1]))))
        self._save_pending()
        del self.learning[device]
        self.not_trained.pop(device, None)
        self.protecting[device] = _protecting(device, model)
        self.protecting[device].last_ns = int(times[-1])  # it runs on: no settling where learning ends
        self.trained.append(device)
        log.info(
            "process model of %s at %s trained on %d rows of %d variables (%d settling rows left out)",
            device,
            self.site,
            used,
            len(model.names),
            len(times) - used,
        )

    def _score(self, watched: Protecting, rows: Rows) -> None:
        names = watched.model.names
        values = np.full((len(rows), len(names)), np.nan)
        column = {name: index for index, name in enumerate(rows.variables)}
        for target, name in enumerate(names):
            source = column.get(name)
            if source is not None:
                values[:, target] = rows.values[:, source]
        watched.unknown.update(set(rows.variables) - set(names))
        values[self._settling(watched, rows.times)] = np.nan
        self._scored(watched, watched.scorer.score(rows.times, values))

    @staticmethod
    def _settling(watched: Protecting, times: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of these rows (in time order) fall in a settling stretch: the device's first
        `SETTLE_NS`, or the `SETTLE_NS` after a gap longer than its model's gap."""
        found = np.zeros(len(times), dtype=bool)
        gap = watched.model.model.gap_ns
        for index, moment in enumerate(times.tolist()):
            if watched.last_ns is None or moment - watched.last_ns > gap:
                watched.settle_until_ns = moment + SETTLE_NS
            watched.last_ns = moment
            found[index] = moment < watched.settle_until_ns
        watched.settled += int(found.sum())
        return found

    def _scored(self, watched: Protecting, scores: Scores) -> None:
        """Flag a row when its score passes the model's threshold or a variable its own limit."""
        config = watched.model.model.config
        level, watched.level = smoothed(scores.deviation, scores.reset, config.smoothing, watched.level)
        off = np.nan_to_num(np.abs(level)) > watched.model.limits
        scores = replace(scores, flag=scores.flag | off.any(axis=1))
        watched.rows += len(scores)
        watched.flagged += int(scores.flag.sum())
        watched.episodes.add(scores)

    def _save_pending(self) -> bool:
        """Save the models fitted and not saved yet; False (they are kept, and tried again at the
        next flush) when the store fails."""
        while self._unsaved:
            try:
                self.save(*self._unsaved[0])
            except (PlantwardenError, SQLAlchemyError) as error:
                log.error("process model of %s not saved yet (tried again): %s", self._unsaved[0][0], error)
                return False
            self._unsaved.pop(0)
        return True

    def flush(self) -> int:
        """Save models not saved yet and raise the episodes found so far; how many were raised.
        When the store fails they are all kept and tried again at the next flush."""
        self._next_flush = self.monotonic() + self.flush_seconds
        found = self._unreported + [
            episode for watched in self.protecting.values() for episode in watched.episodes.take()
        ]
        self._unreported = []
        if not self._save_pending() or not found:
            self._unreported = found
            return 0
        try:
            self.report(found)
        except (PlantwardenError, SQLAlchemyError) as error:
            log.error("%d process episode(s) not raised yet (tried again): %s", len(found), error)
            self._unreported = found
            return 0
        self.reported += len(found)
        return len(found)

    def close(self) -> None:
        """The end of the input: score what is held back, end open episodes, report."""
        for rows in self.frames.drain():
            self._rows(rows)
        for watched in self.protecting.values():
            self._scored(watched, watched.scorer.flush())
            watched.episodes.finish()
        self.flush()

    def summary(self, *, raised: bool = True) -> str:
        """One line for the end of `sensor run` (`raised`: whether the episodes became alerts)."""
        parts = [
            f"{device} {watched.flagged}/{watched.rows} rows flagged"
            + (f" ({watched.settled} settling)" if watched.settled else "")
            for device, watched in sorted(self.protecting.items())
        ]
        learning = [f"{device} ({item.rows} rows)" for device, item in sorted(self.learning.items())]
        text = f"process models: {self.reported} episode(s) {'raised' if raised else 'found'}"
        if parts:
            text += "; watching " + ", ".join(parts)
        if self.trained:
            text += "; trained now: " + ", ".join(self.trained)
        if learning:
            text += "; still learning: " + ", ".join(learning)
        left = [
            f"{device} {name}"
            for device, watched in sorted(self.protecting.items())
            for name in watched.model.left_out
        ]
        if left:
            text += "; left out (counters): " + ", ".join(left)
        unknown = [
            f"{device} {name}"
            for device, watched in sorted(self.protecting.items())
            for name in sorted(watched.unknown - set(watched.model.left_out))
        ]
        if unknown:
            text += "; not in the model (ignored): " + ", ".join(unknown)
        if self.frames.late:
            text += f"; {self.frames.late} late sample(s) dropped"
        return text


def _protecting(device: str, model: WatchedModel) -> Protecting:
    return Protecting(model, model.model.scorer(), Episodes(device, model))
