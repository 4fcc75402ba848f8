"""A multivariate process model: each variable judged against what the others say it should be.

Training rows are standardised per variable (after an hour-of-day baseline when the plant has
daily cycles). The model keeps the shrunk correlation matrix C of the standardised variables
and its inverse P. For a row z, `(P z)_j / sqrt(P_jj)` is the residual of variable j against
the linear regression of j on all the other variables, in units of that regression's residual
standard deviation: the multivariate "how far is this sensor from what the rest of the plant
implies", from one matrix product. The row score is the root mean square of those residuals over
the variables present (the same unit, so an engineer can read it: 1 is ordinary, 5 is far off).
A missing variable (NaN) is left out: the model inverts C over the present variables only (one
inverse per missing pattern, cached) and reports the variable as missing. A slowly drifting
variable (see `ModelConfig.slow_autocorrelation`) is judged by its change since the previous row.

Thresholds are fixed in `fit`, from the training rows only (see `stream.py` for the smoothing
and the alarm logic, and `config.py` for the settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process import alarm
from plantwarden.detection.process.config import ModelConfig

if TYPE_CHECKING:
    from plantwarden.detection.process.stream import Scorer

HOUR_NS = 3_600_000_000_000
DAY_HOURS = 24
MIN_TRAINING_ROWS = 10

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Deviation:
    """One variable of one row: its value, what the model expected, and how far apart they are.

    `deviation` is in residual standard deviations of that variable given the others (signed:
    positive means higher than expected); `value` and `deviation` are None when it was missing.
    """

    variable: str
    value: float | None
    expected: float
    deviation: float | None
    measure: str = "value"

    @property
    def missing(self) -> bool:
        return self.value is None

    def describe(self) -> str:
        what = self.variable if self.measure == "value" else f"{self.variable} (change per sample)"
        if self.value is None or self.deviation is None:
            return f"{what}: missing (expected about {self.expected:.4g}; scored without it)"
        return f"{what} = {self.value:.4g}, expected {self.expected:.4g} ({self.deviation:+.1f} sd)"


class ProcessModel:
    """The learned state: per-variable scale, the correlation structure, and the threshold."""

    def __init__(
        self,
        names: Sequence[str],
        config: ModelConfig,
        mean: FloatArray,
        scale: FloatArray,
        correlation: FloatArray,
        baseline: FloatArray | None,
        period_ns: int,
        threshold: float = float("inf"),
        *,
        slow: NDArray[np.bool_] | None = None,
        spread: FloatArray | None = None,
    ) -> None:
        self.names = tuple(names)
        self.config = config
        self.mean = mean
        self.scale = scale
        self.correlation = correlation
        self.baseline = baseline
        self.period_ns = period_ns
        self.threshold = threshold
        self.slow = np.zeros(len(self.names), dtype=bool) if slow is None else slow
        self.spread = np.ones(len(self.names)) if spread is None else spread
        """Each variable's root mean square residual over the training rows: with shrinkage the raw
        residual of a variable the others predict well reads small, and this brings every
        variable's deviation to one residual standard deviation = 1 (explanations, limits)."""
        self._inverses: dict[bytes, FloatArray] = {}

    @classmethod
    def fit(
        cls,
        values: NDArray[Any],
        names: Sequence[str],
        config: ModelConfig,
        times: NDArray[Any] | None = None,
    ) -> Self:
        """Learn from training rows (T, V), NaN = missing; the threshold comes from these rows only."""
        data, stamps = _checked(values, names, times, config)
        period = sampling_period(stamps)
        slow = _slow(data, config.slow_autocorrelation)
        measured = measure(stamps, data, slow, int(period * config.gap_periods), None)
        baseline = _hourly_baseline(measured, stamps) if config.seasonal else None
        centred = measured - baseline[_hours(stamps)] if baseline is not None else measured
        mean = np.nan_to_num(np.nanmean(centred, axis=0))
        scale = _scale(centred, mean)
        z = np.nan_to_num((centred - mean) / scale)
        correlation = (1.0 - config.shrinkage) * _correlation(z) + config.shrinkage * np.eye(len(names))
        model = cls(names, config, mean, scale, correlation, baseline, period, slow=slow)
        model.threshold = model.training_threshold(stamps, measured)
        _, deviation = model.residuals(stamps, measured)
        spread = np.sqrt(np.nanmean(deviation**2, axis=0))
        model.spread = np.where(np.isfinite(spread) & (spread > 1e-9), spread, 1.0)
        return model

    def measure(
        self, times_ns: NDArray[np.int64], values: FloatArray, previous: tuple[int, FloatArray] | None
    ) -> FloatArray:
        """What the model judges: the value, or for a slow variable its change since the last row."""
        return measure(times_ns, values, self.slow, self.gap_ns, previous)

    def training_threshold(self, times_ns: NDArray[np.int64], measured: FloatArray) -> float:
        """`factor` x the `quantile` of the smoothed training scores (run as the stream would)."""
        raw, _ = self.residuals(times_ns, measured)
        smoothed, _, _ = alarm.run(
            raw,
            times_ns,
            smoothing=self.config.smoothing,
            gap_ns=self.gap_ns,
            threshold=float("inf"),
            hold_ns=0,
            state=alarm.AlarmState(),
        )
        return float(np.nanquantile(smoothed, self.config.quantile) * self.config.factor)

    @property
    def gap_ns(self) -> int:
        return int(self.period_ns * self.config.gap_periods)

    def scorer(self) -> Scorer:
        """Streaming state over this model: feed rows (or blocks of rows) in time order."""
        from plantwarden.detection.process.stream import Scorer  # noqa: PLC0415 - stream imports model

        return Scorer(self)

    def standardise(self, times_ns: NDArray[np.int64], values: FloatArray) -> FloatArray:
        centred = values - self.baseline[_hours(times_ns)] if self.baseline is not None else values
        return np.asarray((centred - self.mean) / self.scale, dtype=np.float64)

    def residuals(self, times_ns: NDArray[np.int64], measured: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Row scores (T,) and signed per-variable residuals (T, V), NaN where a value is missing
        (a row with no value at all has a NaN score: nothing was measured, not "normal").

        The residuals are in each variable's training residual standard deviations (`spread`);
        the row score is the root mean square of the raw residuals (the model's own unit, which
        its threshold is in).

        `measured` comes from `measure` (values, and changes for slow variables)."""
        z = self.standardise(times_ns, measured)
        present = ~np.isnan(z)
        deviation = np.full(z.shape, np.nan)
        complete: NDArray[np.bool_] = np.all(present, axis=1)
        for rows, pattern in _patterns(present, complete):
            precision = self._precision(pattern)
            u = z[np.ix_(rows, pattern)] @ precision
            deviation[np.ix_(rows, pattern)] = u / np.sqrt(np.diag(precision))
        counts = present.sum(axis=1)
        squares = np.nansum(deviation**2, axis=1)
        score = np.sqrt(np.divide(squares, counts, out=np.full(len(z), np.nan), where=counts > 0))
        return score, deviation / self.spread

    def expected(self, time_ns: int, row: FloatArray) -> FloatArray:
        """What each measured quantity should be given the others in this (measured) row."""
        times = np.array([time_ns], dtype=np.int64)
        z = self.standardise(times, row.reshape(1, -1))[0]
        present = ~np.isnan(z)
        guess = np.zeros(len(z))
        if present.any():
            precision = self._precision(present)
            u = z[present] @ precision
            guess[present] = z[present] - u / np.diag(precision)
            missing = ~present
            guess[missing] = self.correlation[np.ix_(missing, present)] @ (precision @ z[present])
        base = self.baseline[_hours(times)][0] if self.baseline is not None else 0.0
        return np.asarray(base + self.mean + self.scale * guess, dtype=np.float64)

    def _precision(self, pattern: NDArray[np.bool_]) -> FloatArray:
        key = np.packbits(pattern).tobytes()
        if key not in self._inverses:
            inverse = np.linalg.inv(self.correlation[np.ix_(pattern, pattern)])
            self._inverses[key] = np.asarray(inverse, dtype=np.float64)
        return self._inverses[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state, so that a model survives a restart."""
        return {
            "kind": "plantwarden.process-model",
            "version": 1,
            "names": list(self.names),
            "config": self.config.to_dict(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "correlation": self.correlation.tolist(),
            "baseline": None if self.baseline is None else self.baseline.tolist(),
            "period_ns": self.period_ns,
            "threshold": self.threshold,
            "slow": self.slow.tolist(),
            "spread": self.spread.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if data.get("kind") != "plantwarden.process-model" or data.get("version") != 1:
            raise InvalidInput("not a saved process model (kind/version)")
        try:
            names = [str(name) for name in data["names"]]
            model = cls(
                names,
                ModelConfig.from_dict(dict(data["config"])),
                np.array(data["mean"], dtype=np.float64),
                np.array(data["scale"], dtype=np.float64),
                np.array(data["correlation"], dtype=np.float64),
                None if data["baseline"] is None else np.array(data["baseline"], dtype=np.float64),
                int(data["period_ns"]),
                float(data["threshold"]),
                slow=np.array(data["slow"], dtype=bool),
                spread=None if data.get("spread") is None else np.array(data["spread"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"saved process model is incomplete: {error}") from None
        width = len(names)
        shapes = (
            model.mean.shape,
            model.scale.shape,
            model.slow.shape,
            model.spread.shape,
            model.correlation.shape,
        )
        if shapes != ((width,), (width,), (width,), (width,), (width, width)):
            raise InvalidInput("saved process model: array shapes do not match the variable names")
        return model


def explain(
    model: ProcessModel, values_row: NDArray[Any], deviation_row: NDArray[Any], time_ns: int = 0
) -> list[Deviation]:
    """Each variable of a row with its expected value and deviation, the largest first, missing last.

    `values_row` is the row as the model measured it (`Scores.measured[i]`): the value, or for a
    slow variable its change since the previous row."""
    row = np.asarray(values_row, dtype=np.float64)
    expected = model.expected(time_ns, row)
    items = []
    for name, value, guess, gap, slow in zip(
        model.names, row, expected, deviation_row, model.slow, strict=True
    ):
        missing = bool(np.isnan(value))
        items.append(
            Deviation(
                name,
                None if missing else float(value),
                float(guess),
                None if missing else float(gap),
                "change" if slow else "value",
            )
        )
    return sorted(items, key=lambda d: (d.missing, -abs(d.deviation or 0.0)))


def measure(
    times_ns: NDArray[np.int64],
    values: FloatArray,
    slow: NDArray[np.bool_],
    gap_ns: int,
    previous: tuple[int, FloatArray] | None,
) -> FloatArray:
    """Values, with each slow variable replaced by its change since the row before (NaN after a gap)."""
    measured = np.array(values, dtype=np.float64, copy=True)
    if not slow.any() or not len(measured):
        return measured
    before_times = np.empty(len(times_ns), dtype=np.int64)
    before = np.empty((len(times_ns), int(slow.sum())))
    before_times[1:], before[1:] = times_ns[:-1], values[:-1][:, slow]
    if previous is None:
        before_times[0], before[0] = times_ns[0], np.nan
    else:
        before_times[0], before[0] = previous[0], previous[1][slow]
    change = values[:, slow] - before
    change[times_ns - before_times > gap_ns] = np.nan
    measured[:, slow] = change
    return measured


def _checked(
    values: NDArray[Any], names: Sequence[str], times: NDArray[Any] | None, config: ModelConfig
) -> tuple[FloatArray, NDArray[np.int64]]:
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(names):
        raise InvalidInput(f"training values must be (rows, {len(names)} variables), got {data.shape}")
    if len(set(names)) != len(names):
        raise InvalidInput("variable names must be unique")
    if len(data) < MIN_TRAINING_ROWS:
        raise InvalidInput(f"at least {MIN_TRAINING_ROWS} training rows are needed, got {len(data)}")
    empty = [name for name, column in zip(names, data.T, strict=True) if np.isnan(column).all()]
    if empty:
        raise InvalidInput(f"no training value at all for: {', '.join(empty)}")
    if times is None:
        if config.seasonal:
            raise InvalidInput("a seasonal model needs the times of the training rows")
        stamps = np.arange(len(data), dtype=np.int64) * 1_000_000_000
    else:
        stamps = np.asarray(times, dtype=np.int64)
        if stamps.shape != (len(data),):
            raise InvalidInput("one time per training row is needed")
        order = np.argsort(stamps, kind="stable")
        stamps, data = stamps[order], data[order]
    return data, stamps


def _patterns(
    present: NDArray[np.bool_], complete: NDArray[np.bool_]
) -> list[tuple[NDArray[np.intp], NDArray[np.bool_]]]:
    """Rows grouped by which variables they have (complete rows first, the common case)."""
    groups = []
    if complete.any():
        groups.append((np.flatnonzero(complete), np.ones(present.shape[1], dtype=bool)))
    partial = np.flatnonzero(~complete & present.any(axis=1))
    if len(partial):
        keys = np.packbits(present[partial], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        for index, row in enumerate(first):
            groups.append((partial[inverse.ravel() == index], present[partial[row]]))
    return groups


def _slow(data: FloatArray, limit: float | None) -> NDArray[np.bool_]:
    """Variables whose lag-1 autocorrelation over the training rows reaches `limit` (drifting states).

    Over the pairs of consecutive rows where both values are present, per column at once; a
    column with fewer than three pairs, or constant on either side, is not slow."""
    width = data.shape[1]
    if limit is None or len(data) < 2:
        return np.zeros(width, dtype=bool)
    before, after = data[:-1], data[1:]
    pairs = ~np.isnan(before) & ~np.isnan(after)
    count = pairs.sum(axis=0)
    used = np.maximum(count, 1)
    a = np.where(pairs, before, 0.0)
    b = np.where(pairs, after, 0.0)
    a = np.where(pairs, a - a.sum(axis=0) / used, 0.0)
    b = np.where(pairs, b - b.sum(axis=0) / used, 0.0)
    spread_a, spread_b = (a * a).sum(axis=0), (b * b).sum(axis=0)
    valid = (count > 2) & (spread_a > 0) & (spread_b > 0)
    product = np.where(valid, spread_a * spread_b, 1.0)
    correlation = (a * b).sum(axis=0) / np.sqrt(product)
    return np.asarray(valid & (correlation >= limit), dtype=bool)


def _hours(times_ns: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.asarray((times_ns // HOUR_NS) % DAY_HOURS, dtype=np.int64)


def _hourly_baseline(data: FloatArray, stamps: NDArray[np.int64]) -> FloatArray:
    hours = _hours(stamps)
    overall = np.nanmean(data, axis=0)
    baseline = np.tile(overall, (DAY_HOURS, 1))
    for hour in range(DAY_HOURS):
        rows = data[hours == hour]
        if len(rows):
            counts = (~np.isnan(rows)).sum(axis=0)
            sums = np.nansum(rows, axis=0)
            baseline[hour] = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    return baseline


def _scale(centred: FloatArray, mean: FloatArray) -> FloatArray:
    """Training standard deviation; a variable constant in training is measured in its own size."""
    std = np.nanstd(centred, axis=0)
    constant = std <= 1e-9 * (1.0 + np.abs(mean))
    return np.where(constant, np.maximum(np.abs(mean), 1.0), std)


def _correlation(z: FloatArray) -> FloatArray:
    cov = (z.T @ z) / max(len(z) - 1, 1)
    norm = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    corr = cov / np.outer(norm, norm)
    np.fill_diagonal(corr, 1.0)
    return np.asarray(corr, dtype=np.float64)


def sampling_period(stamps: NDArray[np.int64]) -> int:
    """The median positive step between rows (ns); one second when there is none."""
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    return int(np.median(steps)) if len(steps) else 1_000_000_000
