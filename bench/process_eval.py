"""Process anomaly models on SKAB and BATADAL: our model next to a PCA T-squared + Q reference.

Both run the same protocol on the same input in the same run (SKAB: per file the first 400 rows
train, the rest is test; BATADAL: train on dataset03, score dataset04). The reference is the
textbook PCA monitor behind SKAB's "T-squared+Q" baseline, written here in numpy: standardise
by the training rows, keep the principal components explaining 95 % of the training variance,
alarm when Hotelling's T-squared or the squared prediction error Q exceeds its 99th training
percentile (empirical limits: scipy is not a dependency). Figures: F1/FAR/MAR/NAB (SKAB) and
S (BATADAL), plus scoring rate in samples/s (fit + score, one core) and our/reference ratio.
Needs /work/shared/datasets (or PW_DATASETS); prints what it skips.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plantwarden.detection.process import metrics
from plantwarden.detection.process.config import BATADAL, SKAB, SKAB_DEVELOPMENT
from plantwarden.detection.process.datasets import Series, read_batadal, read_skab_file, skab_files
from plantwarden.detection.process.evaluate import SKAB_TRAINING_ROWS, batadal_attacks, score_series
from plantwarden.detection.process.model import ProcessModel

DATASETS = Path(os.environ.get("PW_DATASETS", "/work/shared/datasets"))
VARIANCE = 0.95
LIMIT_QUANTILE = 0.99


def reference_flags(train: NDArray[np.float64], test: NDArray[np.float64]) -> NDArray[np.bool_]:
    """PCA T-squared + Q with empirical 99th-percentile limits from the training rows."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z_train, z_test = (train - mean) / std, (test - mean) / std
    _, singular, vt = np.linalg.svd(z_train, full_matrices=False)
    variance = singular**2 / max(len(z_train) - 1, 1)
    keep = int(np.searchsorted(np.cumsum(variance) / variance.sum(), VARIANCE) + 1)
    loadings, eigen = vt[:keep].T, np.maximum(variance[:keep], 1e-12)

    def statistics(z: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        scores = z @ loadings
        residual = z - scores @ loadings.T
        return (scores**2 / eigen).sum(axis=1), (residual**2).sum(axis=1)

    t2_train, q_train = statistics(z_train)
    t2, q = statistics(z_test)
    return np.asarray(
        (t2 > np.quantile(t2_train, LIMIT_QUANTILE)) | (q > np.quantile(q_train, LIMIT_QUANTILE)), dtype=bool
    )


def _ours(series: Series, start: int, train: Series) -> NDArray[np.bool_]:
    config = BATADAL if series.name.startswith("BATADAL") else SKAB
    model = ProcessModel.fit(train.values, train.names, config, train.times_ns)
    return score_series(model, series, start)[1]


def _skab_line(name: str, parts: list[tuple[Series, NDArray[np.bool_]]], seconds: float) -> str:
    counts, nab, points = metrics.Binary(0, 0, 0, 0), None, 0
    for test, flags in parts:
        assert test.labels is not None
        assert test.changepoints is not None
        counts = counts + metrics.binary(test.labels, flags)
        more = metrics.nab_file(test.times_ns, test.changepoints, metrics.changepoints_of(flags))
        nab = more if nab is None else nab + more
        points += len(flags)
    assert nab is not None
    scores = nab.normalised()
    return (
        f"{name:<26} F1 {counts.f1:.4f}  FAR {counts.far:6.2f} %  MAR {counts.mar:6.2f} %"
        f"  NAB {scores['standard']:6.2f}"
        f" / {scores['low_fp']:6.2f} / {scores['low_fn']:6.2f}  {points / seconds:>10,.0f} samples/s"
    )


def run_skab(quick: bool) -> None:
    root = DATASETS / "skab"
    if not root.is_dir():
        print(f"## skab: skipped, no {root}")
        return
    names = skab_files(root)[:: 4 if quick else 1]
    files = [read_skab_file(root / name, name) for name in names]
    print(f"## skab: {len(files)} files, first {SKAB_TRAINING_ROWS} rows of each train, the rest is test")
    rates = {}
    warm = files[0]  # one untimed pass of each: first-call imports (numpy.ma in quantile) are not speed
    _ours(warm, SKAB_TRAINING_ROWS, warm.head(SKAB_TRAINING_ROWS))
    reference_flags(warm.head(SKAB_TRAINING_ROWS).values, warm.tail(SKAB_TRAINING_ROWS).values)
    for label, method in (("ours", "ours"), ("reference T2+Q", "reference")):
        started = time.perf_counter()
        results = []
        for series in files:
            train, test = series.head(SKAB_TRAINING_ROWS), series.tail(SKAB_TRAINING_ROWS)
            if method == "ours":
                flags = _ours(series, SKAB_TRAINING_ROWS, train)
            else:
                flags = reference_flags(train.values, test.values)
            results.append((series.name, test, flags))
        seconds = time.perf_counter() - started
        rates[method] = sum(len(s.times_ns) for s in files) / seconds
        for subset, keep in (("development", True), ("test", False)):
            chosen = [(t, f) for n, t, f in results if (n in SKAB_DEVELOPMENT) == keep]
            if chosen:
                print(_skab_line(f"{label} {subset}", chosen, seconds * len(chosen) / len(results)))
        print(_skab_line(f"{label} all", [(t, f) for _, t, f in results], seconds))
    print(f"ratio ours/reference (samples/s): {rates['ours'] / rates['reference']:.2f}")


def run_batadal() -> None:
    root = DATASETS / "batadal"
    if not root.is_dir():
        print(f"## batadal: skipped, no {root}")
        return
    train, test = read_batadal(root / "BATADAL_dataset03.csv"), read_batadal(root / "BATADAL_dataset04.csv")
    attacks = batadal_attacks(root / "ipal-attacks-dataset04.json")
    truth = np.zeros(len(test.times_ns), dtype=np.int8)
    for start, end in attacks:
        truth[(test.times_ns >= start) & (test.times_ns <= end)] = 1
    assert test.labels is not None
    truth |= test.labels
    print("## batadal: train dataset03, score dataset04 (full attack windows; not the official test set)")
    rates = {}
    for label, method in (("ours", "ours"), ("reference T2+Q", "reference")):
        started = time.perf_counter()
        flags = _ours(test, 0, train) if method == "ours" else reference_flags(train.values, test.values)
        seconds = time.perf_counter() - started
        rates[method] = (len(train.times_ns) + len(test.times_ns)) / seconds
        s = metrics.batadal_score(test.times_ns, truth, flags, attacks)
        counts = metrics.binary(truth, flags)
        print(
            f"{label:<22} S {s.s:.3f}  S_TTD {s.s_ttd:.3f}  S_CM {s.s_cm:.3f}  F1 {counts.f1:.4f}"
            f"  FAR {counts.far:6.2f} %  {rates[method]:>10,.0f} samples/s"
        )
    print(f"ratio ours/reference (samples/s): {rates['ours'] / rates['reference']:.2f}")


def run(*, quick: bool = False) -> None:
    """Print both models' figures on SKAB and BATADAL, and their speed ratio."""
    run_skab(quick)
    run_batadal()
