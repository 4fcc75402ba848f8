"""The model's settings, and the configurations committed for the public benchmarks.

A configuration is data (a frozen dataclass that survives JSON), so the one chosen on a
benchmark's development files is written down here, in the repository, before the test files
are scored: `SKAB` and `BATADAL` below, with the names of the files they were chosen on.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from dataclasses import dataclass
from typing import Any

from plantwarden.core.errors import InvalidInput


@dataclass(frozen=True)
class ModelConfig:
    """How a process model learns, scores and decides.

    - `shrinkage`: weight of the identity in the correlation matrix (0..1); keeps the inverse
      stable with few training rows and near-collinear sensors.
    - `smoothing`: EWMA factor of the row score (1.0 = no smoothing); faults are collective,
      so a short average separates them from single noisy rows.
    - `quantile`, `factor`: the threshold is `factor` times this quantile of the smoothed
      scores of the training rows (fixed at fit time, from training data only).
    - `hold_seconds`: an alarm stays raised this long after the score last exceeded the
      threshold (a fault is a segment, not a point).
    - `seasonal`: learn a per-hour-of-day baseline (hourly plant data with daily cycles).
    - `gap_periods`: a gap longer than this many learned sampling periods resets the
      short-term state (the smoothed score and the hold).
    - `reorder_seconds`: samples may arrive this late and are still put back in time order.
    - `slow_autocorrelation`: a variable whose lag-1 autocorrelation over the training rows
      reaches this (a slowly drifting state such as a temperature) is judged by its change from
      one sample to the next, not by its level (None: every variable by its level).

    Every way in (the constructor, `from_dict`, a saved model, `--config`) refuses a setting of the
    wrong type by name: a number must be a finite int or float (not a bool), a flag true or false,
    and None is taken only by `slow_autocorrelation`.
    """

    shrinkage: float = 0.05
    smoothing: float = 0.1
    quantile: float = 0.99
    factor: float = 1.5
    hold_seconds: float = 0.0
    seasonal: bool = False
    gap_periods: float = 10.0
    reorder_seconds: float = 0.0
    slow_autocorrelation: float | None = None

    def __post_init__(self) -> None:
        kinds = _setting_types()
        mistyped = [
            problem
            for field in dataclasses.fields(self)
            if (problem := _type_problem(field.name, kinds[field.name], getattr(self, field.name)))
        ]
        if mistyped:
            raise InvalidInput("; ".join(mistyped))
        checks = {
            "shrinkage": 0.0 <= self.shrinkage <= 1.0,
            "smoothing": 0.0 < self.smoothing <= 1.0,
            "quantile": 0.0 < self.quantile <= 1.0,
            "factor": self.factor > 0.0,
            "hold_seconds": self.hold_seconds >= 0.0,
            "gap_periods": self.gap_periods > 0.0,
            "reorder_seconds": self.reorder_seconds >= 0.0,
            "slow_autocorrelation": self.slow_autocorrelation is None
            or -1.0 <= self.slow_autocorrelation <= 1.0,
        }
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            raise InvalidInput(f"model configuration out of range: {', '.join(wrong)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown model settings: {', '.join(unknown)}")
        return cls(**data)


@functools.cache
def _setting_types() -> dict[str, Any]:
    return typing.get_type_hints(ModelConfig)


def _type_problem(name: str, kind: object, value: object) -> str | None:
    """Why `value` does not have the setting's type (a finite number, true/false, or None), or None."""
    allowed = typing.get_args(kind) or (kind,)
    if value is None and type(None) in allowed:
        return None
    if bool in allowed and isinstance(value, bool):
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if float in allowed and number and math.isfinite(typing.cast(float, value)):
        return None
    expected = "true or false" if bool in allowed else "a finite number"
    if type(None) in allowed:
        expected += " or null"
    return f"model setting {name!r} must be {expected}, not {_shown(value)}"


def _shown(value: object) -> str:
    """The value as JSON spells it (the settings come from JSON files), else as Python does."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


SKAB_DEVELOPMENT = (
    "valve1/0.csv",
    "valve1/1.csv",
    "valve1/2.csv",
    "valve1/3.csv",
    "valve2/0.csv",
    "other/1.csv",
    "other/2.csv",
    "other/3.csv",
    "other/4.csv",
)
"""SKAB files the configuration was chosen on: the lowest-numbered files of each folder (fixed
by name, before any result was seen); every other file is test."""

SKAB_FIRST_ATTEMPT = ModelConfig(
    shrinkage=0.05, smoothing=0.1, quantile=0.99, factor=1.15, hold_seconds=60.0, slow_autocorrelation=0.9
)
"""Attempt 1, kept for the record (`--config` can reproduce it). Chosen on `SKAB_DEVELOPMENT` only:
of 576 configurations (smoothing 0.03/0.05/0.1/0.2, quantile 0.99/0.995/1.0, factor 0.9-1.2, hold
0/10/30/60 s, shrinkage 0.05/0.2, slow variables at lag-1 autocorrelation 0.9), the highest
development F1 among those with pooled development FAR < 13.554 % and NAB (standard) > 32.42, the
published bests. Development: F1 0.836, FAR 12.89 %, NAB 33.57; test (scored once): F1 0.794,
FAR 42.13 %, NAB 17.10. The pooled development FAR hid files far above it (valve1/1.csv 41 %,
other/1.csv 39 %): the choice sat on the edge of the constraint and did not generalise."""

SKAB = ModelConfig(
    shrinkage=0.05, smoothing=0.05, quantile=0.99, factor=1.15, hold_seconds=0.0, slow_autocorrelation=0.9
)
"""Attempt 2, the second and last, chosen on the same `SKAB_DEVELOPMENT` files only (test labels
not read) by a rule written down before the test files were scored: shrinkage 0.05 and slow
variables at autocorrelation 0.9 kept from attempt 1; over 162 configurations (smoothing
0.05/0.1/0.2; threshold 0.99-quantile x 1.0/1.15/1.3/1.5 of the smoothed training scores, or their
median + k x 1.4826 MAD with k 2/3/4/5/6/8/10 and release at 1 or 0.5 of that margin; hold
0/30/60 s), keep those whose **second-worst** development file has FAR < 13.554 % (at most one of
the nine files above the target, instead of the pooled FAR), then the highest pooled development
F1. Development: F1 0.748, FAR 5.0 %, NAB 36.2. Leave-one-file-out over the nine files (the rule
applied to eight, the pick scored on the ninth, pooled): F1 0.723, FAR 12.8 %, NAB 34.8."""

BATADAL = ModelConfig(shrinkage=0.05, smoothing=0.3, quantile=0.99, factor=1.0, seasonal=True)
"""Chosen on dataset03 alone (no attack label seen): hour-of-day baseline and a smoothing over a
few hours fixed beforehand (hourly data with daily cycles); the factor is the smallest of
0.8/0.9/1.0/1.1/1.2/1.3/1.5 whose model, fitted on the first 75 % of dataset03, raises alarms on at
most 1 % of the last 25 % (0.9: 2.01 %, 1.0: 0.37 %). The model is then fitted on all of dataset03."""
