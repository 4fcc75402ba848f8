"""`detect evaluate --dataset csv` refuses a file that is not what it claims, with one line naming
the file, the line and the column, instead of scoring NaN or 0 in place of what it could not read."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process.cli import detect_group
from plantwarden.detection.process.datasets import read_ipal_attacks, read_table
from tests.unit.detection.process.test_cli import synthetic_csv


def edited(path: Path, line: int, column: str, cell: str) -> Path:
    """The synthetic CSV with one cell (`line` counted from 1, the header is line 1) replaced."""
    synthetic_csv(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][rows[0].index(column)] = cell
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def refusal(path: Path, *args: str) -> str:
    """The message of `detect evaluate --dataset csv PATH --label-column label ...`, which must fail."""
    command = ["evaluate", "--dataset", "csv", str(path), "--label-column", "label", *args]
    result = CliRunner().invoke(detect_group, command)
    assert isinstance(result.exception, InvalidInput), result.output
    return str(result.exception)


def table(path: Path) -> tuple[object, ...]:
    return read_table(path, time_column="time", time_format=None, label_columns=("label",))


@pytest.mark.parametrize(
    ("line", "cell", "problem"),
    [
        (102, "abc", "'abc' is not a number"),
        (102, "1_000", "'1_000' is not a number"),  # float() takes it
        (102, "١٢", "'١٢' is not a number"),  # so are other scripts' digits
        (102, "inf", "'inf' is not a finite number"),  # in training: the variable was dropped
        (502, "-inf", "'-inf' is not a finite number"),  # scored: the alarm stayed raised for good
        (502, "1e999", "'1e999' is not a finite number"),
    ],
)
def test_a_cell_that_is_not_a_finite_number_is_refused_with_its_line_and_column(
    tmp_path: Path, line: int, cell: str, problem: str
) -> None:
    source = edited(tmp_path / "plant.csv", line, "flow", cell)
    assert refusal(source, "--train-rows", "400") == f"{source}, line {line}, column flow: {problem}" + (
        " (leave the cell empty for a missing value)" if "finite" in problem else ""
    )


def test_a_text_column_is_refused_at_its_first_cell(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    source.write_text("time,flow,valve\n2026-01-01T00:00:00,1.5,open\n")
    with pytest.raises(InvalidInput, match=r"line 2, column valve: 'open' is not a number"):
        table(source)


@pytest.mark.parametrize("cell", ["", "nan", "NaN", " -nan "])
def test_an_empty_or_nan_cell_is_a_missing_value(tmp_path: Path, cell: str) -> None:
    source = edited(tmp_path / "plant.csv", 102, "flow", cell)
    _, values, names, _ = read_table(source, time_column="time", time_format=None, label_columns=("label",))
    assert names == ("flow", "pressure")
    assert math.isnan(values[100, 0]) and not math.isnan(values[100, 1])


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("2", "label '2' is not 0 or 1"),
        ("-1", "label '-1' is not 0 or 1"),
        ("0.5", "label '0.5' is not 0 or 1"),
        ("", "the label is empty (0 or 1)"),
    ],
)
def test_a_label_other_than_0_or_1_is_refused(tmp_path: Path, cell: str, said: str) -> None:
    source = edited(tmp_path / "plant.csv", 472, "label", cell)
    message = refusal(source, "--train-rows", "400")
    assert message == f"{source}, line 472, column label: {said}"


def test_a_label_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    source = edited(tmp_path / "plant.csv", 472, "label", "yes")
    assert (
        refusal(source, "--train-rows", "400") == f"{source}, line 472, column label: 'yes' is not a number"
    )


def test_the_label_column_cannot_be_the_time_column(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    result = CliRunner().invoke(
        detect_group,
        ["evaluate", "--dataset", "csv", str(source), "--label-column", "time", "--train-rows", "9"],
    )
    assert isinstance(result.exception, InvalidInput)
    assert str(result.exception) == f"{source}: 'time' cannot be both the time column and a label column"


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    source.write_bytes(b"time,flow\n2026-01-01T00:00:00,1\n2026-01-01T00:00:01,\xff\n")
    with pytest.raises(InvalidInput) as caught:
        table(source)
    assert caught.value.message == f"{source}: not UTF-8 text (line 3, byte 0xff at offset 52)"
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())  # the offset counts a byte-order mark
    with pytest.raises(InvalidInput) as caught:
        table(source)
    assert caught.value.message == f"{source}: not UTF-8 text (line 3, byte 0xff at offset 55)"


def test_a_byte_order_mark_before_the_header_is_taken_off(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    names = table(source)[2]
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())  # as Excel saves CSV
    assert table(source)[2] == names


def test_an_ipal_attack_list_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    attacks = tmp_path / "attacks.json"
    attacks.write_bytes(b'[{"start": 1476000000, "end": 1476003600},\n {"name": "Ventil \xd6ffnen"}]\n')
    with pytest.raises(InvalidInput) as caught:
        read_ipal_attacks(attacks, 0.0)
    assert caught.value.message == f"{attacks}: not UTF-8 text (line 2, byte 0xd6 at offset 61)"


def test_a_field_over_the_csv_limit_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "plant.csv"
    source.write_text('time,flow\n2026-01-01T00:00:00,1\n2026-01-01T00:00:01,"2\n' + "3\n" * 70_000)
    with pytest.raises(InvalidInput, match=r"line \d+: a field is longer than 131072 characters"):
        table(source)


@pytest.mark.parametrize(("row", "fields"), [("2026-01-01T00:00:01", 1), ("2026-01-01T00:00:01,2,3", 3)])
def test_a_row_with_another_number_of_fields_than_the_header_is_refused(
    tmp_path: Path, row: str, fields: int
) -> None:
    source = tmp_path / "plant.csv"
    source.write_text(f"time,flow\n2026-01-01T00:00:00,1\n{row}")  # a cut last line, a stray comma
    with pytest.raises(InvalidInput, match=rf"plant.csv, line 3: {fields} fields where the header has 2"):
        table(source)


@pytest.mark.parametrize("text", ["", "\n \n"])
def test_an_empty_file_is_said_to_be_empty(tmp_path: Path, text: str) -> None:
    source = tmp_path / "plant.csv"
    source.write_text(text)
    with pytest.raises(InvalidInput, match=r"plant.csv: the file is empty$"):
        table(source)


def test_a_directory_given_as_the_csv_is_said_to_be_one(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r" is a directory: give the file$"):
        table(tmp_path)


@pytest.mark.parametrize("time_format", ["%Q", "%Y-%m-%d %", "%:z"])
def test_an_invalid_time_format_is_named_not_the_times(tmp_path: Path, time_format: str) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    message = refusal(source, "--train-rows", "400", "--time-format", time_format)
    assert message.startswith(f"time format {time_format!r} is invalid: ")


@pytest.mark.parametrize("time_format", ["", "  "])
def test_an_empty_time_format_is_refused(tmp_path: Path, time_format: str) -> None:
    source = tmp_path / "plant.csv"
    synthetic_csv(source)
    message = refusal(source, "--train-rows", "400", "--time-format", time_format)
    assert message == "the time format is empty: leave --time-format out for ISO 8601 times"
