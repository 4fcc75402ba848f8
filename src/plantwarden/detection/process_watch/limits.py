"""What the process watch adds to a process model for one device of the plant.

A plant device's model is the multivariate model of `detection.process` plus three things learned
from the same training rows, and saved with it:

- **per-variable limits**: the model's row score averages over every variable, so one sensor
  drifting among seven moves it little. Each variable's deviation (in residual standard
  deviations given the others) is smoothed as the row score is (an EWMA, reset after a gap), and
  a variable is off when its smoothed deviation passes `factor` times the `quantile` of its
  smoothed training deviations (at least `MIN_LIMIT`): the threshold comes from training only.
- **the operating envelope**: each variable's training minimum and maximum. A device run outside
  it (a speed never seen while learning) is told apart in the alert from relations broken inside it.
- **counters left out**: a variable that only ever counts up in training (items made, batches
  run) leaves its range for good by design; it is not modelled, and the watch says so. The plant
  model's register maps may say it instead (`counter: true`, for a count that is reset or wraps
  around while learning, or `counter: false`, for a level that only rises while learning): a
  register marked so is judged by its mark, not by its values.

The first `SETTLE_NS` of the training rows, and the same after each gap in them, are not learned
from: a device seen from its start (or after a stop) is settling there (a motor drawing no
current yet, a flow still zero), and one such second at the top of the window would otherwise set
the threshold (the high quantile of the training scores) far above every later fault. A
variable seen only in those rows is not modelled (the watch lists it as not in the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process.config import ModelConfig
from plantwarden.detection.process.model import MIN_TRAINING_ROWS, ProcessModel, sampling_period

MIN_LIMIT = 3.0
"""The least per-variable limit, in residual standard deviations."""
SETTLE_NS = 30_000_000_000
"""Training time left out after the start of the rows and after each gap in them (30 s)."""

Floats = npt.NDArray[np.float64]


def counters(values: Floats) -> npt.NDArray[np.bool_]:
    """Columns that never go down over the training rows and go up at least three times, the rises
    spread over at least a tenth of the rows in whole numbers (items made, batches run, counting
    through a stop) or half of them in fractions (a meter's total). A value that holds still and
    steps up once (a speed following a raised setpoint: a few rows of rises) is no counter."""
    found = np.zeros(values.shape[1], dtype=bool)
    for column in range(values.shape[1]):
        present = values[:, column][~np.isnan(values[:, column])]
        steps = np.diff(present)
        ups = np.flatnonzero(steps > 0)
        if len(ups) < 3 or bool((steps < 0).any()):
            continue
        whole = bool(np.all(present == np.round(present)))
        found[column] = int(ups[-1] - ups[0]) >= len(steps) * (0.1 if whole else 0.5)
    return found


def settling(times: npt.NDArray[np.int64], gap_periods: float) -> npt.NDArray[np.bool_]:
    """Rows within `SETTLE_NS` of the first row or of the first row after a gap (a pause of more
    than `gap_periods` median sampling steps); `times` in order."""
    found = np.zeros(len(times), dtype=bool)
    if not len(times):
        return found
    steps = np.diff(times)
    starts = np.concatenate(([0], np.flatnonzero(steps > gap_periods * sampling_period(times)) + 1))
    ends = np.searchsorted(times, times[starts] + SETTLE_NS, side="left")
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        found[start:end] = True
    return found


def smoothed(
    deviation: Floats, reset: npt.NDArray[np.bool_], smoothing: float, level: Floats | None
) -> tuple[Floats, Floats]:
    """EWMA of each variable's signed deviation, row by row (NaN leaves a variable's level as it
    was); `reset` rows start afresh. A fresh level starts from 0, the deviation expected of
    normal operation, not from the row's own deviation: one unsmoothed row at the start of the
    watch (or after a gap) is not judged as if it were an average. Returns the smoothed rows and
    the level after the last."""
    out = np.empty_like(deviation)
    current = np.full(deviation.shape[1], np.nan) if level is None else level.copy()
    keep = 1.0 - smoothing
    for index in range(len(deviation)):
        row = deviation[index]
        if reset[index]:
            current = np.full(deviation.shape[1], np.nan)
        fresh = np.isnan(current)
        present = ~np.isnan(row)
        current = np.where(present & fresh, smoothing * row, current)
        current = np.where(present & ~fresh, keep * current + smoothing * row, current)
        out[index] = current
    return out, current


@dataclass
class WatchedModel:
    """A device's process model with its per-variable limits, envelope and left-out counters."""

    model: ProcessModel
    limits: Floats
    low: Floats
    high: Floats
    left_out: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    @classmethod
    def fit(
        cls,
        times: npt.NDArray[np.int64],
        values: Floats,
        names: list[str],
        config: ModelConfig,
        marked: Mapping[str, bool] | None = None,
    ) -> Self:
        """Learn the model and its limits from the training rows alone (less the settling rows);
        `marked`: the variables the plant model says are counters (True) or not (False)."""
        settled = ~settling(times, config.gap_periods)
        if int(settled.sum()) < MIN_TRAINING_ROWS:
            raise InvalidInput(
                f"fewer than {MIN_TRAINING_ROWS} training rows once the first {SETTLE_NS // 10**9} s "
                "after the start and after each gap are left out"
            )
        times, values = times[settled], values[settled]
        seen = np.asarray(~np.isnan(values).all(axis=0), dtype=bool)  # seen only while settling: not modelled
        judged = counters(values)
        for column, name in enumerate(names):
            judged[column] = (marked or {}).get(name, judged[column])
        keep = ~judged & seen
        if not keep.any():
            raise InvalidInput("nothing to model: every variable is a counter or seen only while settling")
        kept = [name for name, use in zip(names, keep, strict=True) if use]
        data = values[:, keep]
        model = ProcessModel.fit(data, kept, config, times)
        measured = model.measure(times, data, None)
        _, deviation = model.residuals(times, measured)
        gaps = np.zeros(len(times), dtype=bool)
        gaps[1:] = np.diff(times) > model.gap_ns
        level, _ = smoothed(deviation, gaps, config.smoothing, None)
        magnitude = np.abs(level)
        quantile = np.array(
            [
                np.nanquantile(column, config.quantile) if (~np.isnan(column)).any() else 0.0
                for column in magnitude.T
            ]
        )
        limits = np.maximum(config.factor * quantile, MIN_LIMIT)
        left_out = [name for name, use, was in zip(names, keep, seen, strict=True) if was and not use]
        return cls(model, limits, np.nanmin(data, axis=0), np.nanmax(data, axis=0), left_out)

    def outside(self, row: Floats) -> list[tuple[str, float, float, float]]:
        """The variables of a row (in the model's columns) outside the envelope by more than a
        tenth of its width: name, value, learned low and high."""
        width = np.maximum(self.high - self.low, 1e-9)
        margin = 0.1 * width
        off = (row < self.low - margin) | (row > self.high + margin)
        return [
            (name, float(value), float(low), float(high))
            for name, value, low, high, out in zip(self.names, row, self.low, self.high, off, strict=True)
            if out
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "plantwarden.watched-process-model",
            "version": 1,
            "model": self.model.to_dict(),
            "limits": self.limits.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "left_out": list(self.left_out),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if data.get("kind") != "plantwarden.watched-process-model" or data.get("version") != 1:
            raise InvalidInput("not a saved process model of the watch (kind/version)")
        try:
            model = ProcessModel.from_dict(dict(data["model"]))
            found = cls(
                model,
                np.array(data["limits"], dtype=np.float64),
                np.array(data["low"], dtype=np.float64),
                np.array(data["high"], dtype=np.float64),
                [str(name) for name in data["left_out"]],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"saved process model is incomplete: {error}") from None
        width = len(model.names)
        if {found.limits.shape, found.low.shape, found.high.shape} != {(width,)}:
            raise InvalidInput("saved process model: limits do not match its variables")
        return found
