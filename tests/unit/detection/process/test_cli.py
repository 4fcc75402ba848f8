"""`detect evaluate` end to end: a synthetic CSV (always) and a fixed SKAB subset (shared data)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.detection.process import metrics
from plantwarden.detection.process.cli import detect_group
from plantwarden.detection.process.evaluate import PREDICTION_HEADER, ipal_shift_hours
from tests.output_support import files_of, full_disk

SECOND = 1_000_000_000
SKAB = Path("/work/shared/datasets/skab")
BATADAL = Path("/work/shared/datasets/batadal")
SKAB_SUBSET = ("valve1/0.csv", "valve2/1.csv", "other/9.csv")
"""Fixed by name: one file of each folder (no randomness anywhere in the model or the protocol)."""


def synthetic_csv(path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = 600
    flow = 30 + rng.normal(0, 2, rows)
    pressure = 0.05 * flow + rng.normal(0, 0.02, rows)
    label = np.zeros(rows, dtype=int)
    label[450:500] = 1
    pressure[450:500] += 0.4
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "flow", "pressure", "label"])
        for i in range(rows):
            writer.writerow([f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}", flow[i], pressure[i], label[i]])


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == PREDICTION_HEADER
        return list(reader)


def test_csv_protocol_prints_metrics_and_writes_predictions(tmp_path: Path) -> None:
    source, out = tmp_path / "plant.csv", tmp_path / "predictions.csv"
    synthetic_csv(source)
    result = CliRunner().invoke(
        detect_group,
        [
            "evaluate",
            "--dataset",
            "csv",
            str(source),
            "--label-column",
            "label",
            "--train-rows",
            "400",
            "--predictions-out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    assert len(rows) == 200
    said = np.array([int(r["prediction"]) for r in rows])
    truth = np.array([int(r["label"]) for r in rows])
    counts = metrics.binary(truth, said)
    assert counts.recall == 1.0
    assert not said[:50].any() and not said[130:].any()  # quiet before; after, only the smoothed tail
    line = next(x for x in result.output.splitlines() if x.strip().startswith("test"))
    assert f"{counts.f1:.4f}" in line and f"{counts.far:.2f}" in line
    assert {r["top_variable"] for r in rows if r["label"] == "1" and r["prediction"] == "1"} <= {
        "pressure",
        "flow",
    }


def test_csv_protocol_says_when_the_scored_rows_hold_no_anomaly(tmp_path: Path) -> None:
    """F1, recall and MAR of 0 then measure nothing; a bare 0.0000 read as a model that missed."""
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    args = ["evaluate", "--dataset", "csv", str(source), "--label-column", "label"]
    quiet = CliRunner().invoke(detect_group, [*args, "--train-rows", "510"])  # the anomaly is in training
    assert quiet.exit_code == 0, quiet.output
    assert "the scored rows hold no anomalous label" in quiet.output
    scored = CliRunner().invoke(detect_group, [*args, "--train-rows", "400"])
    assert scored.exit_code == 0 and "hold no anomalous label" not in scored.output


def test_csv_protocol_refuses_a_file_without_the_time_column(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    source.write_text("when,flow\n2026-01-01T00:00:00,1\n")
    result = CliRunner().invoke(
        detect_group, ["evaluate", "--dataset", "csv", str(source), "--train-rows", "1"]
    )
    assert isinstance(result.exception, InvalidInput)
    assert "no time column 'time'" in str(result.exception)


@pytest.mark.parametrize(
    ("dataset", "options", "problem"),
    [
        ("csv", [], "--dataset csv takes one of --train-rows N and --train-until TIME"),
        ("csv", ["--train-rows", "400", "--train-until", "2026-01-01"], "takes one of --train-rows"),
        ("skab", ["--train-rows", "400"], "--train-rows is for --dataset csv, not skab"),
        ("batadal", ["--label-column", "label"], "--label-column is for --dataset csv, not batadal"),
        ("batadal", ["--delimiter", ","], "--delimiter is for --dataset csv, not batadal"),
        ("csv", ["--train-rows", "400", "--anomaly-free"], "--anomaly-free is for --dataset skab, not csv"),
        ("batadal", ["--file", "valve1/0.csv"], "--file is for --dataset skab, not batadal"),
    ],
)
def test_options_of_another_protocol_are_refused_before_any_work(
    tmp_path: Path, dataset: str, options: list[str], problem: str
) -> None:
    """They changed nothing (SKAB's protocol fixes its own split), so a run with them was not the
    run that was asked for."""
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    result = CliRunner().invoke(detect_group, ["evaluate", "--dataset", dataset, str(source), *options])
    assert result.exit_code == 2 and problem in result.output, result.output


def test_skab_protocol_refuses_a_folder_without_skab_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(detect_group, ["evaluate", "--dataset", "skab", str(tmp_path)])
    assert isinstance(result.exception, NotFound)


@pytest.mark.skipif(not SKAB.is_dir(), reason=f"shared SKAB data not present at {SKAB}")
def test_skab_subset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "skab.csv"
    args = ["evaluate", "--dataset", "skab", str(SKAB), "--predictions-out", str(out)]
    for name in SKAB_SUBSET:
        args += ["--file", name]
    result = CliRunner().invoke(detect_group, args)
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    assert {r["file"] for r in rows} == set(SKAB_SUBSET)
    assert len(rows) == 1147 + 1063 + 1144 - 3 * 400
    counts = metrics.binary(
        np.array([int(r["label"]) for r in rows]), np.array([int(r["prediction"]) for r in rows])
    )
    table = {line.split()[0]: line.split() for line in result.output.splitlines() if line and line[0] != "#"}
    assert table["all"][1:6] == [
        "3",
        str(len(rows)),
        f"{counts.f1:.4f}",
        f"{counts.far:.2f}",
        f"{counts.mar:.2f}",
    ]
    assert table["all"][3:] == EXPECTED_ALL
    assert "anomaly-free.csv not used" in result.output
    assert table["development"][1] == "1" and table["test"][1] == "2"  # valve1/0.csv is a development file


EXPECTED_ALL = ["0.7112", "21.10", "34.36", "28.44", "22.99", "32.85", "7", "10"]
"""The subset's pooled F1, FAR %, MAR %, NAB standard/LowFP/LowFN, missed changepoints and false
positives under the committed SKAB configuration: a change to the model or the metrics shows here."""


def test_ipal_epochs_map_onto_the_batadal_clock_by_the_german_offset() -> None:
    """IPAL attack 3 starts 2016-10-09 07:00 UTC; ATT_FLAG starts at 09/10/16 09 (CEST, +2 h).
    After the switch to CET on 2016-10-30 the offset is +1 h."""
    summer = int(datetime(2016, 10, 9, 7, tzinfo=UTC).timestamp()) * SECOND
    winter = int(datetime(2016, 11, 26, 16, tzinfo=UTC).timestamp()) * SECOND
    assert ipal_shift_hours(summer) == 2.0 and ipal_shift_hours(winter) == 1.0


def test_csv_protocol_trains_until_a_time(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    result = CliRunner().invoke(
        detect_group,
        ["evaluate", "--dataset", "csv", str(source), "--train-until", "2026-01-01T00:06:40"],
    )
    assert result.exit_code == 0, result.output
    assert "training: 400 rows; scored: 200 rows" in result.output
    both = [
        "evaluate",
        "--dataset",
        "csv",
        str(source),
        "--train-rows",
        "5",
        "--train-until",
        "2026-01-01T00:01:00",
    ]
    refused = CliRunner().invoke(detect_group, both)
    assert refused.exit_code == 2 and "takes one of --train-rows N and --train-until TIME" in refused.output
    bad = CliRunner().invoke(detect_group, [*both[:4], "--train-until", "2026-01-01T00:01:00.1234567891"])
    assert bad.exit_code == 2 and "has 10 fractional digits (nanoseconds at most: 9)" in bad.output


@pytest.mark.skipif(not BATADAL.is_dir(), reason=f"shared BATADAL data not present at {BATADAL}")
def test_batadal_protocol_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "batadal.csv"
    result = CliRunner().invoke(
        detect_group, ["evaluate", "--dataset", "batadal", str(BATADAL), "--predictions-out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    assert len(rows) == 4177
    assert sum(r["label"] == "1" for r in rows) == 492  # the 7 IPAL windows cover all 219 ATT_FLAG hours
    line = next(x.split() for x in result.output.splitlines() if x.startswith("dataset04"))
    assert line[6:9] == EXPECTED_BATADAL
    assert "official test set" in result.output


EXPECTED_BATADAL = ["0.889", "0.982", "0.797"]
"""S, S_TTD and S_CM of dataset04 under the committed BATADAL configuration."""


def test_predictions_out_keeps_the_file_it_would_replace_when_the_disk_fills_up(tmp_path: Path) -> None:
    """The rows are written as they are formatted: a failure after the first ones must not leave
    them in place of the predictions of the last run."""
    source, out = tmp_path / "plant.csv", tmp_path / "out"
    synthetic_csv(source)
    out.mkdir()
    (out / "predictions.csv").write_text("dataset,file,time\nthe last run,kept,\n" * 20, encoding="utf-8")
    before = files_of(out)
    args = ["evaluate", "--dataset", "csv", str(source), "--label-column", "label", "--train-rows", "400"]
    with pytest.raises(OSError, match="File too large"), full_disk(room=4096):
        CliRunner().invoke(
            detect_group, [*args, "--predictions-out", str(out / "predictions.csv")], catch_exceptions=False
        )
    assert files_of(out) == before
