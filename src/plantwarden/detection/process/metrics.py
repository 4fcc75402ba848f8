"""Benchmark metrics: point-wise F1/FAR/MAR, SKAB's NAB, and BATADAL's S score.

NAB follows SKAB's own implementation (`core/metrics.py` of waico/SKAB, taken from the `tsad`
library: `chp_score(..., metric="nab", window_width="60s", anomaly_window_destination="righter")`
with its defaults: "improved" tanh scoring function, scale 1, `clear_anomalies_mode` (the first
detection in a window counts), overlapping windows cut on the right). Predicted changepoints are
the edges of the predicted alarm, as in SKAB's notebooks (`abs(prediction.diff())`, the first
point taking the first prediction). Scores are summed over files and normalised once:
100 * (score - null) / (perfect - null).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.clock import SECOND_NS

NAB_PROFILES = {"standard": (1.0, -0.11, -1.0), "low_fp": (1.0, -0.22, -1.0), "low_fn": (1.0, -0.11, -2.0)}
"""A_tp, A_fp, A_fn per profile (SKAB/tsad `table_of_coef`)."""
NAB_DETAIL = 1000


@dataclass(frozen=True)
class Binary:
    """Point-wise confusion counts over pooled points."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def f1(self) -> float:
        """SKAB's form, TP / (TP + (FN + FP) / 2), identical to 2PR / (P + R)."""
        denominator = self.tp + (self.fn + self.fp) / 2
        return self.tp / denominator if denominator else 0.0

    @property
    def far(self) -> float:
        """False alarm rate, percent of normal points flagged."""
        return 100.0 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        """Missing alarm rate, percent of anomalous points not flagged."""
        return 100.0 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def __add__(self, other: Binary) -> Binary:
        return Binary(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)


def binary(truth: NDArray[np.integer], prediction: NDArray[np.bool_] | NDArray[np.integer]) -> Binary:
    actual, said = np.asarray(truth) == 1, np.asarray(prediction) == 1
    return Binary(
        int((actual & said).sum()),
        int((~actual & said).sum()),
        int((~actual & ~said).sum()),
        int((actual & ~said).sum()),
    )


@dataclass(frozen=True)
class NabCounts:
    """One file's raw NAB sums per profile, to be pooled before normalising."""

    score: dict[str, float]
    null: dict[str, float]
    perfect: dict[str, float]
    detected: int
    missed: int
    false_positives: int

    def __add__(self, other: NabCounts) -> NabCounts:
        return NabCounts(
            {k: self.score[k] + other.score[k] for k in NAB_PROFILES},
            {k: self.null[k] + other.null[k] for k in NAB_PROFILES},
            {k: self.perfect[k] + other.perfect[k] for k in NAB_PROFILES},
            self.detected + other.detected,
            self.missed + other.missed,
            self.false_positives + other.false_positives,
        )

    def normalised(self) -> dict[str, float]:
        return {
            k: 100.0 * (self.score[k] - self.null[k]) / (self.perfect[k] - self.null[k])
            if self.perfect[k] != self.null[k]
            else 0.0
            for k in NAB_PROFILES
        }


def changepoints_of(prediction: NDArray[np.bool_] | NDArray[np.integer]) -> NDArray[np.int8]:
    """Edges of an alarm series: 1 where it switches on or off; the first point keeps its value."""
    said = np.asarray(prediction).astype(np.int8)
    edges = np.zeros(len(said), dtype=np.int8)
    if len(said):
        edges[0] = said[0]
        edges[1:] = np.abs(np.diff(said))
    return edges


def nab_windows(
    times_ns: NDArray[np.int64], truth_cp: NDArray[np.integer], window_ns: int
) -> list[list[int]]:
    """[t, t + window] to the right of each true changepoint; an overlap cuts the later window."""
    windows = [[int(t), int(t) + window_ns] for t in times_ns[np.asarray(truth_cp) == 1]]
    for left, right in itertools.pairwise(windows):
        if left[1] >= right[0]:
            right[0] = left[1]
    return windows


def nab_file(
    times_ns: NDArray[np.int64],
    truth_cp: NDArray[np.integer],
    predicted_cp: NDArray[np.integer],
    window_ns: int = 60 * SECOND_NS,
) -> NabCounts:
    """NAB sums of one file (SKAB/tsad `single_evaluate_nab`)."""
    windows = nab_windows(times_ns, truth_cp, window_ns)
    alarms = np.sort(times_ns[np.asarray(predicted_cp) == 1])
    first_hits: list[tuple[list[int], int]] = []
    missed = 0
    outside = np.ones(len(alarms), dtype=bool)
    for window in windows:
        inside = (alarms >= window[0]) & (alarms <= window[1])
        outside &= ~inside
        if inside.any():
            first_hits.append((window, int(alarms[inside][0])))
        else:
            missed += 1
    false_positives = int(outside.sum()) if windows else len(alarms)
    score, null, perfect = {}, {}, {}
    for profile, (a_tp, a_fp, a_fn) in NAB_PROFILES.items():
        total = a_fp * false_positives + a_fn * missed
        total += sum(_scaled(window, hit, a_tp, a_fp) for window, hit in first_hits)
        score[profile], null[profile], perfect[profile] = total, len(windows) * a_fn, len(windows) * a_tp
    return NabCounts(score, null, perfect, len(first_hits), missed, false_positives)


def _scaled(window: list[int], hit: int, a_tp: float, a_fp: float) -> float:
    """SKAB's "improved" scoring function: tanh from A_tp at the window start to A_fp at its end."""
    width = window[1] - window[0]
    event = min(int((hit - window[0]) / width * NAB_DETAIL), NAB_DETAIL - 1) if width else 0
    x = -math.pi / 2 + event * math.pi / (NAB_DETAIL - 1)
    half = (a_tp - a_fp) / 2
    return float(-half * math.tanh(x) / math.tanh(math.pi / 2) + half + a_fp)


@dataclass(frozen=True)
class Batadal:
    """BATADAL (Taormina et al. 2018): S = gamma S_TTD + (1 - gamma) S_CM."""

    s: float
    s_ttd: float
    s_cm: float
    tpr: float
    tnr: float
    ttd_hours: tuple[float | None, ...]


def batadal_score(
    times_ns: NDArray[np.int64],
    truth: NDArray[np.integer],
    prediction: NDArray[np.bool_],
    attacks: Sequence[tuple[int, int]],
    gamma: float = 0.5,
) -> Batadal:
    """S_TTD = 1 - mean over attacks of TTD / duration (an undetected attack: TTD = duration);
    S_CM = (TPR + TNR) / 2 over the points."""
    counts = binary(truth, prediction)
    tpr = counts.recall
    tnr = counts.tn / (counts.tn + counts.fp) if counts.tn + counts.fp else 0.0
    ratios, delays = [], []
    for start, end in attacks:
        inside = (times_ns >= start) & (times_ns <= end)
        hits = times_ns[inside & np.asarray(prediction, dtype=bool)]
        duration = max(end - start, 1)
        delay = int(hits[0] - start) if len(hits) else None
        ratios.append(1.0 if delay is None else delay / duration)
        delays.append(None if delay is None else delay / 3_600_000_000_000)
    s_ttd = 1.0 - float(np.mean(ratios)) if ratios else 0.0
    s_cm = (tpr + tnr) / 2
    return Batadal(gamma * s_ttd + (1 - gamma) * s_cm, s_ttd, s_cm, tpr, tnr, tuple(delays))
