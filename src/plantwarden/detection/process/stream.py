"""Streaming scoring: rows in (possibly late, possibly with gaps and NaNs), scores and alarms out.

Telemetry does not arrive in perfect order. The scorer keeps a reorder buffer: a row is held
until a row `reorder_seconds` newer has been seen (or `flush()` is called), then released in
time order. A row older than one already released is too late to put back: it is dropped and
counted in `late`, never scored out of order (that would corrupt the smoothed score).
With `reorder_seconds = 0` every row in order is released at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process import alarm
from plantwarden.detection.process.model import FloatArray, ProcessModel


@dataclass(frozen=True)
class Scores:
    """Per released row: time, smoothed score, alarm flag, and per-variable deviations (T, V).

    `deviation` is signed, in residual standard deviations of each variable given the others;
    NaN where the value was missing. `reset` marks rows after a gap that cleared the state.
    """

    times_ns: NDArray[np.int64]
    raw: FloatArray
    score: FloatArray
    flag: NDArray[np.bool_]
    deviation: FloatArray
    reset: NDArray[np.bool_]
    measured: FloatArray
    threshold: float
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.times_ns)

    def top_variable(self) -> list[str]:
        """Per row, the variable furthest from what the others imply ('' when none is present)."""
        if not len(self.names):
            return [""] * len(self)
        magnitude = np.nan_to_num(np.abs(self.deviation), nan=-1.0)
        best = magnitude.argmax(axis=1)
        labels = np.array(self.names, dtype=object)[best]
        labels[magnitude[np.arange(len(best)), best] < 0] = ""
        return list(labels)


class Scorer:
    """Streaming state over one model; not shared between threads."""

    def __init__(self, model: ProcessModel) -> None:
        self.model = model
        self.state = alarm.AlarmState()
        self.late = 0
        self._reorder_ns = int(model.config.reorder_seconds * SECOND_NS)
        self._newest: int | None = None
        self._released: int | None = None
        self._previous: tuple[int, FloatArray] | None = None
        self._times = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, len(model.names)))

    def score(self, times_ns: NDArray[np.int64], values: NDArray[np.float64]) -> Scores:
        """Add rows; return scores for the rows the reorder buffer releases now."""
        times = np.asarray(times_ns, dtype=np.int64).ravel()
        data = np.asarray(values, dtype=np.float64)
        if data.ndim != 2 or data.shape != (len(times), len(self.model.names)):
            raise InvalidInput(
                f"expected {len(times)} rows of {len(self.model.names)} values, got shape {data.shape}"
            )
        self._times = np.concatenate([self._times, times])
        self._values = np.concatenate([self._values, data])
        if len(times):
            newest = int(times.max())
            self._newest = newest if self._newest is None else max(self._newest, newest)
        cutoff = None if self._newest is None else self._newest - self._reorder_ns
        return self._release(cutoff)

    def flush(self) -> Scores:
        """Release and score every buffered row (end of a file, or shutdown)."""
        return self._release(self._newest)

    def _release(self, cutoff: int | None) -> Scores:
        ready = np.zeros(len(self._times), dtype=bool) if cutoff is None else self._times <= cutoff
        times, values = self._times[ready], self._values[ready]
        self._times, self._values = self._times[~ready], self._values[~ready]
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        if self._released is not None:
            on_time = times >= self._released
            self.late += int((~on_time).sum())
            times, values = times[on_time], values[on_time]
        if len(times):
            self._released = int(times[-1])
        return self._scored(times, values)

    def _scored(self, times: NDArray[np.int64], values: FloatArray) -> Scores:
        model = self.model
        measured = model.measure(times, values, self._previous)
        if len(times):
            self._previous = (int(times[-1]), values[-1])
        raw, deviation = model.residuals(times, measured)
        smoothed, flag, reset = alarm.run(
            raw,
            times,
            smoothing=model.config.smoothing,
            gap_ns=model.gap_ns,
            threshold=model.threshold,
            hold_ns=int(model.config.hold_seconds * SECOND_NS),
            state=self.state,
        )
        return Scores(times, raw, smoothed, flag, deviation, reset, measured, model.threshold, model.names)
