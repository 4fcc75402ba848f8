"""Benchmark metrics against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from plantwarden.detection.process import metrics

SECOND = 1_000_000_000
HOUR = 3600 * SECOND


def test_binary_counts_and_rates() -> None:
    counts = metrics.binary(np.array([1, 1, 0, 0, 1]), np.array([True, False, True, False, True]))
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (2, 1, 1, 1)
    assert counts.f1 == pytest.approx(2 / 3)  # 2 / (2 + (1 + 1) / 2)
    assert counts.far == pytest.approx(50.0)
    assert counts.mar == pytest.approx(100 / 3)
    assert counts.precision == pytest.approx(2 / 3) and counts.recall == pytest.approx(2 / 3)
    assert (counts + counts).tp == 4
    assert metrics.binary(np.zeros(3, dtype=int), np.zeros(3, dtype=bool)).f1 == 0.0


def test_predicted_changepoints_are_the_edges_of_the_alarm() -> None:
    assert metrics.changepoints_of(np.array([0, 1, 1, 0, 0, 1])).tolist() == [0, 1, 0, 1, 0, 1]
    assert metrics.changepoints_of(np.array([1, 1, 0])).tolist() == [1, 0, 1]


def nab_case(alarm_seconds: list[int], changepoints: list[int]) -> metrics.NabCounts:
    times = np.arange(200, dtype=np.int64) * SECOND
    truth = np.isin(np.arange(200), changepoints).astype(int)
    predicted = np.isin(np.arange(200), alarm_seconds).astype(int)
    return metrics.nab_file(times, truth, predicted, 60 * SECOND)


def test_nab_worked_example() -> None:
    """Changepoints at 10 s and 100 s (windows [10, 70] and [100, 160]); alarms at 10 s and 80 s.

    First window hit at its start: A_tp = 1. The alarm at 80 s is a false positive. The second
    window is missed. Standard: 1 - 0.11 - 1 = -0.11 against null -2 and perfect 2:
    100 * 1.89 / 4 = 47.25. LowFP: 1 - 0.22 - 1 -> 100 * 1.78 / 4 = 44.5.
    LowFN: 1 - 0.11 - 2 = -1.11 against null -4, perfect 2 -> 100 * 2.89 / 6.
    """
    counts = nab_case([10, 80], [10, 100])
    assert (counts.detected, counts.missed, counts.false_positives) == (1, 1, 1)
    scores = counts.normalised()
    assert scores["standard"] == pytest.approx(47.25)
    assert scores["low_fp"] == pytest.approx(44.5)
    assert scores["low_fn"] == pytest.approx(100 * 2.89 / 6)


def test_nab_late_detection_earns_less_and_only_the_first_alarm_counts() -> None:
    """Hit at 40 s in [10, 70]: SKAB's tanh at step int(30/60 * 1000) = 500 of 1000 gives 0.444049."""
    counts = nab_case([40, 50, 60], [10])
    assert counts.score["standard"] == pytest.approx(0.4440485, abs=1e-6)
    assert counts.false_positives == 0
    perfect = nab_case([10], [10]).normalised()
    null = nab_case([], [10]).normalised()
    assert perfect["standard"] == pytest.approx(100.0) and null["standard"] == pytest.approx(0.0)


def test_nab_overlapping_windows_are_cut_on_the_right() -> None:
    times = np.arange(200, dtype=np.int64) * SECOND
    truth = np.isin(np.arange(200), [10, 40]).astype(int)
    assert metrics.nab_windows(times, truth, 60 * SECOND) == [
        [10 * SECOND, 70 * SECOND],
        [70 * SECOND, 100 * SECOND],
    ]


def test_nab_pools_files_before_normalising() -> None:
    pooled = (nab_case([10], [10]) + nab_case([], [10, 100])).normalised()
    assert pooled["standard"] == pytest.approx(100 * (-1 - -3) / (3 - -3))  # scores 1 and -2


def test_batadal_score_worked_example() -> None:
    """Attacks [2 h, 5 h] and [7 h, 8 h]; alarms at 3 h and 4 h. TTD 1 h of 3 h; the second
    attack is missed (ratio 1): S_TTD = 1 - (1/3 + 1) / 2 = 1/3. TPR 2/6, TNR 4/4:
    S_CM = 2/3. S = 0.5 * 1/3 + 0.5 * 2/3 = 0.5."""
    times = np.arange(10, dtype=np.int64) * HOUR
    truth = np.isin(np.arange(10), [2, 3, 4, 5, 7, 8]).astype(int)
    said = np.isin(np.arange(10), [3, 4])
    result = metrics.batadal_score(times, truth, said, [(2 * HOUR, 5 * HOUR), (7 * HOUR, 8 * HOUR)])
    assert result.s_ttd == pytest.approx(1 / 3)
    assert result.s_cm == pytest.approx(2 / 3)
    assert result.s == pytest.approx(0.5)
    assert result.ttd_hours == (1.0, None)
