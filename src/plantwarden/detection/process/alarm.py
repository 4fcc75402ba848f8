"""Short-term state of a process model: the smoothed score, the held alarm, and gap resets.

Kept apart from the model (the learned, long-term state) because it is what a restart loses
and what a gap in the data clears: a gap longer than the allowed number of sampling periods
starts the average afresh and drops a held alarm (the plant may have been stopped). A row with
no value at all (a NaN score) is not evidence of normal operation: it leaves the average and the
time of the last measured row as they were, and only a held alarm covers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass
class AlarmState:
    """Carried from one block of rows to the next."""

    level: float | None = None
    last_time_ns: int | None = None
    hold_until_ns: int | None = None


def run(
    raw: NDArray[np.float64],
    times_ns: NDArray[np.int64],
    *,
    smoothing: float,
    gap_ns: int,
    threshold: float,
    hold_ns: int,
    state: AlarmState,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Smoothed scores, alarm flags and gap resets for rows in time order; updates `state`."""
    count = len(raw)
    smoothed = np.empty(count)
    flags = np.zeros(count, dtype=bool)
    resets = np.zeros(count, dtype=bool)
    level, last, hold = state.level, state.last_time_ns, state.hold_until_ns
    keep = 1.0 - smoothing
    for i, (value, moment) in enumerate(zip(raw.tolist(), times_ns.tolist(), strict=True)):
        if last is not None and moment - last > gap_ns:
            level, hold = None, None
            resets[i] = True
        if value != value:  # NaN: a row with nothing measured changes neither the level nor the time
            smoothed[i] = math.nan if level is None else level
            flags[i] = hold is not None and moment <= hold
            continue
        level = value if level is None else keep * level + smoothing * value
        last = moment
        smoothed[i] = level
        if level > threshold:
            hold = moment + hold_ns
            flags[i] = True
        elif hold is not None and moment <= hold:
            flags[i] = True
    state.level, state.last_time_ns, state.hold_until_ns = level, last, hold
    return smoothed, flags, resets
