"""`detect evaluate --dataset csv`: a reorder buffer, sub-second times, and the options' one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process.cli import detect_group
from tests.unit.detection.process.test_cli import read_predictions, synthetic_csv


def evaluate(source: Path, *args: str) -> Result:
    return CliRunner().invoke(detect_group, ["evaluate", "--dataset", "csv", str(source), *args])


def predictions(tmp_path: Path, *args: str) -> list[dict[str, str]]:
    source, out = tmp_path / "plant.csv", tmp_path / "predictions.csv"
    if not source.exists():
        synthetic_csv(source)
    result = evaluate(source, "--label-column", "label", "--predictions-out", str(out), *args)
    assert result.exit_code == 0, result.output
    return read_predictions(out)


def test_a_reorder_buffer_scores_a_sorted_file_as_without_it(tmp_path: Path) -> None:
    """The rows the buffer holds until the end are released by flush(), not lost ("out of time order")."""
    config = tmp_path / "reorder.json"
    config.write_text(json.dumps({"reorder_seconds": 5}))
    plain = predictions(tmp_path, "--train-rows", "400")
    assert predictions(tmp_path, "--train-rows", "400", "--config", str(config)) == plain


def test_training_ends_at_a_sub_second_time(tmp_path: Path) -> None:
    """Rows each second from 00:00:00: those before 00:06:39.5 are the 400 first."""
    rows = predictions(tmp_path, "--train-until", "2026-01-01T00:06:39.500")
    assert len(rows) == 200 and rows[0]["time"] == "2026-01-01T00:06:40Z"  # whole seconds stay so


def test_predictions_keep_sub_second_times(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    lines = source.read_text().splitlines()
    tenths = [f"2026-01-01T00:00:{i // 10:02d}.{i % 10}00{line[19:]}" for i, line in enumerate(lines[1:])]
    source.write_text("\n".join([lines[0], *tenths]) + "\n")
    rows = predictions(tmp_path, "--train-rows", "400")
    assert [r["time"] for r in rows[:2]] == ["2026-01-01T00:00:40.000Z", "2026-01-01T00:00:40.100Z"]
    micro = [f"2026-01-01T00:00:{i // 10:02d}.{i % 10}00001{line[19:]}" for i, line in enumerate(lines[1:])]
    source.write_text("\n".join([lines[0], *micro]) + "\n")
    assert predictions(tmp_path, "--train-rows", "400")[1]["time"] == "2026-01-01T00:00:40.100001Z"


@pytest.mark.parametrize("delimiter", ["\\t", "\t"])
def test_a_tab_delimiter_is_given_as_a_tab_or_its_escape(tmp_path: Path, delimiter: str) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    source.write_text(source.read_text().replace(",", "\t"))
    result = evaluate(source, "--delimiter", delimiter, "--train-rows", "400")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_a_delimiter_that_is_not_one_character_is_refused(tmp_path: Path, delimiter: str) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    result = evaluate(source, "--delimiter", delimiter, "--train-rows", "400")
    assert result.exit_code == 2 and result.exception is not None
    assert "Invalid value for --delimiter" in result.output and "Traceback" not in result.output


def test_predictions_out_in_a_missing_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    missing = tmp_path / "no" / "p.csv"
    result = evaluate(source, "--train-rows", "400", "--predictions-out", str(missing))
    assert result.exit_code == 2
    assert (
        f"Invalid value for '--predictions-out': '{missing}' is not in an existing directory" in result.output
    )
    assert "training:" not in result.output  # nothing was computed


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"factor": "x"}, "model setting 'factor' must be a finite number, not \"x\""),
        ({"hold_seconds": None}, "model setting 'hold_seconds' must be a finite number, not null"),
        ({"reorder_seconds": float("inf")}, "model setting 'reorder_seconds' must be a finite number"),
        ({"smoothing": float("nan")}, "model setting 'smoothing' must be a finite number, not NaN"),
        ({"factor": True}, "model setting 'factor' must be a finite number, not true"),
        ({"seasonal": 1}, "model setting 'seasonal' must be true or false, not 1"),
        ({"slow_autocorrelation": "high"}, "'slow_autocorrelation' must be a finite number or null"),
        ({"smoothing": 0}, "model configuration out of range: smoothing"),
        ({"colour": "red"}, "unknown model settings: colour"),
    ],
)
def test_a_wrong_setting_is_named(tmp_path: Path, settings: dict[str, object], problem: str) -> None:
    source, config = tmp_path / "plant.csv", tmp_path / "config.json"
    synthetic_csv(source)
    config.write_text(json.dumps(settings))
    result = evaluate(source, "--train-rows", "400", "--config", str(config))
    assert isinstance(result.exception, InvalidInput)
    assert str(result.exception).startswith(f"{config}: ") and problem in str(result.exception)


def test_a_configuration_that_is_not_text_is_named_so(tmp_path: Path) -> None:
    source, config = tmp_path / "plant.csv", tmp_path / "config.json"
    synthetic_csv(source)
    config.write_bytes(b'{\n  "factor": 2\xff\n}')
    result = evaluate(source, "--train-rows", "400", "--config", str(config))
    assert isinstance(result.exception, InvalidInput)
    assert str(result.exception) == f"{config}: not UTF-8 text (line 2, byte 0xff at offset 15)"


def test_a_setting_of_null_where_it_is_allowed_is_taken(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"slow_autocorrelation": None, "seasonal": False, "factor": 2}))
    assert len(predictions(tmp_path, "--train-rows", "400", "--config", str(config))) == 200
