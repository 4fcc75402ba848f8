"""Readers for process time series: SKAB files, the BATADAL sets, and any CSV of numbers.

Every reader returns a `Series` (times in UTC nanoseconds, a float matrix with NaN for an empty
or `nan` cell, the variable names, and labels when the file has them) and raises
`InvalidInput` naming the file, the line and the column when the file is not what it claims.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.clock import SECOND_NS, nanoseconds
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.core.parsing import NUMBER, NotUtf8Text, utf8_text

SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_LABELS = ("anomaly", "changepoint")

"""A decimal number in ASCII (`float()` also takes '1_000' and other scripts' digits), or nan/inf."""


@dataclass(frozen=True)
class Series:
    """One file: rows in time order."""

    name: str
    times_ns: NDArray[np.int64]
    values: NDArray[np.float64]
    names: tuple[str, ...]
    labels: NDArray[np.int8] | None = None
    changepoints: NDArray[np.int8] | None = None

    def head(self, rows: int) -> Series:
        return self._slice(slice(0, rows))

    def tail(self, start: int) -> Series:
        return self._slice(slice(start, None))

    def _slice(self, part: slice) -> Series:
        return Series(
            self.name,
            self.times_ns[part],
            self.values[part],
            self.names,
            None if self.labels is None else self.labels[part],
            None if self.changepoints is None else self.changepoints[part],
        )


def read_table(
    path: Path,
    *,
    time_column: str,
    time_format: str | None,
    label_columns: Sequence[str] = (),
    delimiter: str = ",",
    binary_labels: bool = False,
) -> tuple[NDArray[np.int64], NDArray[np.float64], tuple[str, ...], dict[str, NDArray[np.float64]]]:
    """Times, the value columns and their names, and those of `label_columns` the file has.

    A value cell is a finite decimal number, or missing (empty or `nan`); anything else is refused
    with its line and column. With `binary_labels`, every label cell is 0 or 1.
    """
    _require_file(path)
    if time_column in label_columns:
        raise InvalidInput(f"{path}: {time_column!r} cannot be both the time column and a label column")
    if time_format is not None:
        check_time_format(time_format)
    header, lines, rows = _read_rows(path, delimiter)
    if time_column not in header:
        raise InvalidInput(f"{path}: no time column {time_column!r} (columns: {', '.join(header)})")
    labels = [name for name in label_columns if name in header]
    numeric = [name for name in header if name != time_column and name not in label_columns]
    if not numeric:
        raise InvalidInput(f"{path}: no value columns besides the time and label columns")
    if not rows:
        raise InvalidInput(f"{path}: no data rows")
    at = header.index(time_column)
    times = np.array([_time(path, line, row, at, time_format) for line, row in zip(lines, rows, strict=True)])
    columns = [header.index(name) for name in [*numeric, *labels]]
    matrix = np.array(
        [
            [_number(path, line, row, index, header) for index in columns]
            for line, row in zip(lines, rows, strict=True)
        ],
        dtype=np.float64,
    )
    extra = {name: matrix[:, len(numeric) + i] for i, name in enumerate(labels)}
    if binary_labels:
        for name, values in extra.items():
            wrong = np.flatnonzero((values != 0) & (values != 1))
            if len(wrong):
                row = rows[wrong[0]]
                cell = row[header.index(name)].strip() if header.index(name) < len(row) else ""
                raise InvalidInput(
                    f"{path}, line {lines[wrong[0]]}, column {name}: "
                    + (f"label {cell!r} is not 0 or 1" if cell else "the label is empty (0 or 1)")
                )
    return times.astype(np.int64), matrix[:, : len(numeric)], tuple(numeric), extra


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[int], list[list[str]]]:
    """The header, and the non-blank rows with the line each ends on."""
    try:
        text = utf8_text(path.read_bytes()).removeprefix("\ufeff")  # a byte-order mark, as Excel writes
    except NotUtf8Text as error:
        raise InvalidInput(f"{path}: {error}") from None
    if not text.strip():
        raise InvalidInput(f"{path}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)  # one character: the CLI checks
    lines, rows = [], []
    try:
        header = [cell.strip() for cell in next(reader, [])]
        if not header:
            raise InvalidInput(f"{path}, line 1: blank (the header is expected there)")
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) != len(header):  # a cut last line, or a cell split by a stray delimiter
                    raise InvalidInput(
                        f"{path}, line {reader.line_num}: {len(row)} fields where the header has "
                        f"{len(header)} (leave a missing value's cell empty, not out)"
                    )
                lines.append(reader.line_num)
                rows.append(row)
    except csv.Error as error:
        too_long = "field limit" in str(error)
        problem = f"a field is longer than {csv.field_size_limit()} characters (an unclosed quote?)"
        raise InvalidInput(f"{path}, line {reader.line_num}: {problem if too_long else error}") from None
    return header, lines, rows


def check_time_format(time_format: str) -> None:
    """Refuse an empty strptime format, or one with an unknown directive (not the data's fault)."""
    if not time_format.strip():
        raise InvalidInput("the time format is empty: leave --time-format out for ISO 8601 times")
    try:
        datetime.strptime("", time_format)  # noqa: DTZ007 - only the format is checked
    except ValueError as error:
        if "directive" in str(error) or "stray %" in str(error):
            raise InvalidInput(f"time format {time_format!r} is invalid: {error}") from None


def _time(path: Path, line: int, row: list[str], index: int, time_format: str | None) -> int:
    cell = row[index].strip() if index < len(row) else ""
    try:
        moment = (
            datetime.fromisoformat(cell) if time_format is None else datetime.strptime(cell, time_format)  # noqa: DTZ007 - naive times are made UTC below
        )
    except ValueError:
        raise InvalidInput(
            f"{path}, line {line}: {cell!r} is not a time ({time_format or 'ISO 8601'})"
        ) from None
    return nanoseconds(moment)


def _number(path: Path, line: int, row: list[str], index: int, header: list[str]) -> float:
    cell = row[index].strip() if index < len(row) else ""
    if not cell:
        return float("nan")
    if not NUMBER.fullmatch(cell):
        raise InvalidInput(f"{path}, line {line}, column {header[index]}: {cell[:40]!r} is not a number")
    value = float(cell)
    if math.isinf(value):
        raise InvalidInput(
            f"{path}, line {line}, column {header[index]}: {cell[:40]!r} is not a finite number"
            " (leave the cell empty for a missing value)"
        )
    return value


def read_skab_file(path: Path, name: str | None = None) -> Series:
    """One SKAB file: `;`-separated, `datetime`, eight sensors, then `anomaly` and `changepoint`
    (both absent from anomaly-free.csv)."""
    times, values, names, labels = read_table(
        path,
        time_column="datetime",
        time_format="%Y-%m-%d %H:%M:%S",
        delimiter=";",
        label_columns=SKAB_LABELS,
    )
    if labels and set(labels) != set(SKAB_LABELS):
        raise InvalidInput(f"{path}: a labelled SKAB file has both anomaly and changepoint columns")
    anomaly, changepoint = (labels.get(label) for label in SKAB_LABELS)
    return Series(
        name or path.name,
        times,
        values,
        names,
        None if anomaly is None else np.nan_to_num(anomaly).astype(np.int8),
        None if changepoint is None else np.nan_to_num(changepoint).astype(np.int8),
    )


def skab_files(root: Path) -> list[str]:
    """The 34 labelled SKAB files as `folder/name.csv`, in folder then numeric order."""
    if not root.is_dir():
        raise NotFound(f"{root}: no SKAB folder here (expected valve1/, valve2/, other/)")
    found = []
    for folder in SKAB_FOLDERS:
        files = sorted((root / folder).glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
        found += [f"{folder}/{p.name}" for p in files]
    if not found:
        raise NotFound(f"{root}: no SKAB files in valve1/, valve2/ or other/")
    return found


def read_batadal(path: Path) -> Series:
    """A BATADAL set: `DATETIME` as dd/mm/yy HH, 43 SCADA readings, `ATT_FLAG` (-999 = unknown)."""
    times, values, names, extra = read_table(
        path, time_column="DATETIME", time_format="%d/%m/%y %H", label_columns=("ATT_FLAG",)
    )
    if "ATT_FLAG" not in extra:
        raise InvalidInput(f"{path}: a BATADAL set has an ATT_FLAG column")
    flag = extra["ATT_FLAG"]
    return Series(path.name, times, values, names, (flag == 1).astype(np.int8))


def _require_file(path: Path) -> None:
    """A file to read, or a clear error: none there, or a directory where a file is meant."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory: give the file")
    if not path.is_file():
        raise NotFound(f"{path}: no such file")


def read_ipal_attacks(path: Path, shift_hours: float) -> list[tuple[int, int]]:
    """IPAL attack windows [start, end] in ns, moved by `shift_hours` onto the CSV's clock."""
    _require_file(path)
    try:
        attacks = json.loads(utf8_text(path.read_bytes()))
        shift = int(shift_hours * 3600) * SECOND_NS
        return sorted(
            (int(a["start"]) * SECOND_NS + shift, int(a["end"]) * SECOND_NS + shift) for a in attacks
        )
    except NotUtf8Text as error:
        raise InvalidInput(f"{path}: {error}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"{path}: not an IPAL attack list ({error})") from None
