"""The published protocols of SKAB and BATADAL, and the same scoring for any labelled CSV.

Each run keeps the per-point predictions (`Prediction`) so that anyone can score them again
with their own code, and summarises them per subset (`Summary`).
"""

from __future__ import annotations

import csv
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.errors import InvalidInput
from plantwarden.core.files import atomic_open
from plantwarden.detection.process import metrics
from plantwarden.detection.process.config import SKAB_DEVELOPMENT, ModelConfig
from plantwarden.detection.process.datasets import (
    Series,
    read_batadal,
    read_ipal_attacks,
    read_skab_file,
    read_table,
    skab_files,
)
from plantwarden.detection.process.model import ProcessModel

SKAB_TRAINING_ROWS = 400
NAB_WINDOW_NS = 60 * 1_000_000_000
IPAL_CLOCK = "Europe/Berlin"
"""The IPAL conversion read BATADAL's wall-clock times as German local time (CEST until
2016-10-30, CET after), hence its 1-2 h shift; we map its epochs back onto that clock."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Prediction:
    """One file's test points: what the model said, and the label when there is one."""

    dataset: str
    file: str
    times_ns: NDArray[np.int64]
    score: NDArray[np.float64]
    threshold: float
    flag: NDArray[np.bool_]
    label: NDArray[np.int8] | None
    top: list[str]


@dataclass
class Summary:
    """Pooled figures of a subset of files."""

    subset: str
    files: int
    points: int
    binary: metrics.Binary | None = None
    nab: metrics.NabCounts | None = None
    batadal: metrics.Batadal | None = None


@dataclass
class Run:
    dataset: str
    summaries: list[Summary] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    return None


def score_series(
    model: ProcessModel, series: Series, start: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[str]]:
    """Stream every row of `series` through a fresh scorer; keep the rows from `start` on."""
    scorer = model.scorer()
    now = scorer.score(series.times_ns, series.values)
    rest = scorer.flush()  # the rows a reorder buffer still holds
    if not np.array_equal(np.concatenate([now.times_ns, rest.times_ns]), series.times_ns):
        raise InvalidInput(f"{series.name}: rows out of time order (sort the file first)")
    score = np.concatenate([now.score, rest.score])
    flag = np.concatenate([now.flag, rest.flag])
    return score[start:], flag[start:], (now.top_variable() + rest.top_variable())[start:]


def evaluate_skab(
    root: Path,
    config: ModelConfig,
    *,
    files: Sequence[str] | None = None,
    anomaly_free: bool = False,
    progress: Progress = _quiet,
) -> Run:
    """SKAB's current leaderboard protocol: per file, the first 400 rows train, the rest is test."""
    names = list(files) if files else skab_files(root)
    extra = read_skab_file(root / "anomaly-free" / "anomaly-free.csv") if anomaly_free else None
    run = Run("skab")
    counts: dict[str, tuple[metrics.Binary, metrics.NabCounts, int]] = {}
    for number, name in enumerate(names, start=1):
        progress(f"skab {number}/{len(names)} {name}")
        series = read_skab_file(root / name, name)
        train = series.head(SKAB_TRAINING_ROWS)
        values, times = train.values, train.times_ns
        if extra is not None:
            values, times = np.concatenate([extra.values, values]), np.concatenate([extra.times_ns, times])
        model = ProcessModel.fit(values, series.names, config, times)
        score, flag, top = score_series(model, series, SKAB_TRAINING_ROWS)
        test = series.tail(SKAB_TRAINING_ROWS)
        assert test.labels is not None
        assert test.changepoints is not None
        run.predictions.append(
            Prediction("skab", name, test.times_ns, score, model.threshold, flag, test.labels, top)
        )
        nab = metrics.nab_file(test.times_ns, test.changepoints, metrics.changepoints_of(flag), NAB_WINDOW_NS)
        counts[name] = (metrics.binary(test.labels, flag), nab, len(flag))
    development = [n for n in names if n in SKAB_DEVELOPMENT]
    subsets = {
        "development": development,
        "test": [n for n in names if n not in SKAB_DEVELOPMENT],
        "all": names,
    }
    for subset, members in subsets.items():
        if members:
            run.summaries.append(_pooled(subset, [counts[n] for n in members]))
    run.notes.append(
        f"training: first {SKAB_TRAINING_ROWS} rows of each file"
        + (" plus anomaly-free/anomaly-free.csv" if anomaly_free else " (anomaly-free.csv not used)")
    )
    return run


def _pooled(subset: str, parts: list[tuple[metrics.Binary, metrics.NabCounts, int]]) -> Summary:
    binary, nab, points = parts[0]
    for more_binary, more_nab, more_points in parts[1:]:
        binary, nab, points = binary + more_binary, nab + more_nab, points + more_points
    return Summary(subset, len(parts), points, binary, nab)


def ipal_shift_hours(epoch_ns: int) -> float:
    """Hours to add to an IPAL epoch to land on BATADAL's wall clock (the German UTC offset then)."""
    moment = from_nanoseconds(epoch_ns).astimezone(zoneinfo.ZoneInfo(IPAL_CLOCK))
    offset = moment.utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600


def batadal_attacks(path: Path) -> list[tuple[int, int]]:
    """IPAL attack windows moved onto the CSV clock, each end by the offset in force at that moment."""
    return [(_on_csv_clock(start), _on_csv_clock(end)) for start, end in read_ipal_attacks(path, 0.0)]


def _on_csv_clock(epoch_ns: int) -> int:
    return epoch_ns + int(ipal_shift_hours(epoch_ns) * 3600) * 1_000_000_000


def evaluate_batadal(root: Path, config: ModelConfig, progress: Progress = _quiet) -> Run:
    """Train on dataset03 (normal operation), score dataset04 against the full attack windows."""
    progress("batadal: training on BATADAL_dataset03.csv")
    train = read_batadal(root / "BATADAL_dataset03.csv")
    model = ProcessModel.fit(train.values, train.names, config, train.times_ns)
    progress("batadal: scoring BATADAL_dataset04.csv")
    test = read_batadal(root / "BATADAL_dataset04.csv")
    if test.names != train.names:
        raise InvalidInput("BATADAL_dataset04.csv has other columns than BATADAL_dataset03.csv")
    attacks = batadal_attacks(root / "ipal-attacks-dataset04.json")
    truth = np.zeros(len(test.times_ns), dtype=np.int8)
    for start, end in attacks:
        truth[(test.times_ns >= start) & (test.times_ns <= end)] = 1
    assert test.labels is not None
    flagged = int(test.labels.sum())
    truth |= test.labels
    score, flag, top = score_series(model, test, 0)
    run = Run("batadal")
    run.predictions.append(
        Prediction("batadal", test.name, test.times_ns, score, model.threshold, flag, truth, top)
    )
    summary = Summary("dataset04", 1, len(flag), metrics.binary(truth, flag))
    summary.batadal = metrics.batadal_score(test.times_ns, truth, flag, attacks)
    run.summaries.append(summary)
    run.notes += [
        f"training: BATADAL_dataset03.csv ({len(train.times_ns)} h, no attacks);"
        " scored: BATADAL_dataset04.csv",
        f"attack hours: {int(truth.sum())} (ATT_FLAG marks {flagged}; the rest from the IPAL windows,"
        f" moved onto the CSV clock by the {IPAL_CLOCK} UTC offset)",
        "the published BATADAL ranking was computed on the official test set (held out), not on dataset04",
    ]
    return run


def evaluate_csv(
    path: Path,
    config: ModelConfig,
    *,
    time_column: str,
    time_format: str | None,
    label_column: str | None,
    delimiter: str,
    train_rows: int | None,
    train_until_ns: int | None,
) -> Run:
    """Any CSV: train on the first rows (or up to a time), score the rest."""
    times, values, names, extra = read_table(
        path,
        time_column=time_column,
        time_format=time_format,
        delimiter=delimiter,
        label_columns=() if label_column is None else (label_column,),
        binary_labels=True,
    )
    if label_column is not None and label_column not in extra:
        raise InvalidInput(f"{path}: no label column {label_column!r}")
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    labels = None if label_column is None else (extra[label_column][order] == 1).astype(np.int8)
    if train_rows is not None and train_until_ns is None:
        start = train_rows
    elif train_until_ns is not None and train_rows is None:
        start = int(np.searchsorted(times, np.int64(train_until_ns), side="left"))
    else:
        raise InvalidInput("give either a number of training rows or a training end time")
    if not 0 < start < len(times):
        raise InvalidInput(f"{path}: the training part must leave rows to score ({start} of {len(times)})")
    series = Series(path.name, times, values, names, labels)
    model = ProcessModel.fit(values[:start], names, config, times[:start])
    score, flag, top = score_series(model, series, start)
    test_labels = None if labels is None else labels[start:]
    run = Run("csv")
    run.predictions.append(
        Prediction("csv", path.name, times[start:], score, model.threshold, flag, test_labels, top)
    )
    summary = Summary("test", 1, len(flag))
    if test_labels is not None:
        summary.binary = metrics.binary(test_labels, flag)
    run.summaries.append(summary)
    run.notes.append(f"training: {start} rows; scored: {len(flag)} rows")
    if summary.binary is not None and summary.binary.tp + summary.binary.fn == 0:
        run.notes.append(
            "the scored rows hold no anomalous label: recall, MAR and F1 have nothing to measure"
            " (shown as 0); FAR and the predictions file still say how often normal rows were flagged"
        )
    return run


PREDICTION_HEADER = ("dataset", "file", "time", "score", "threshold", "prediction", "label", "top_variable")


def write_predictions(path: Path, predictions: Sequence[Prediction]) -> int:
    """The per-point predictions as CSV (one row per test point), replacing `path` only when every
    row is written; returns the number of rows."""
    rows = 0
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_HEADER)
        for p in predictions:
            stamps = np.datetime_as_string(p.times_ns.astype("datetime64[ns]"), unit=_time_unit(p.times_ns))
            labels = [""] * len(stamps) if p.label is None else [str(int(v)) for v in p.label]
            for stamp, score, flag, label, top in zip(stamps, p.score, p.flag, labels, p.top, strict=True):
                writer.writerow(
                    (
                        p.dataset,
                        p.file,
                        f"{stamp}Z",
                        f"{score:.6g}",
                        f"{p.threshold:.6g}",
                        int(flag),
                        label,
                        top,
                    )
                )
                rows += 1
    return rows


def _time_unit(times_ns: NDArray[np.int64]) -> Literal["s", "ms", "us", "ns"]:
    """The coarsest of s, ms, us and ns that writes every time of a file exactly."""
    if not (times_ns % 1_000_000_000).any():
        return "s"
    if not (times_ns % 1_000_000).any():
        return "ms"
    return "us" if not (times_ns % 1_000).any() else "ns"
