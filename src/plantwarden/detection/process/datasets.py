"""Readers for process time series: SKAB files, the BATADAL sets, and any CSV of numbers.

Every reader returns a `Series` (times in UTC nanoseconds, a float matrix with NaN for an empty
or unreadable cell, the variable names, and labels when the file has them) and raises
`InvalidInput` naming the file, the line and the column when the file is not what it claims.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plantwarden.core.errors import InvalidInput, NotFound

SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_LABELS = ("anomaly", "changepoint")
SECOND_NS = 1_000_000_000


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
) -> tuple[NDArray[np.int64], NDArray[np.float64], tuple[str, ...], dict[str, NDArray[np.float64]]]:
    """Times, the value columns and their names, and those of `label_columns` the file has."""
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [cell.strip() for cell in next(reader, [])]
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    if time_column not in header:
        raise InvalidInput(f"{path}: no time column {time_column!r} (columns: {', '.join(header)})")
    labels = [name for name in label_columns if name in header]
    numeric = [name for name in header if name != time_column and name not in label_columns]
    if not numeric:
        raise InvalidInput(f"{path}: no value columns besides the time and label columns")
    if not rows:
        raise InvalidInput(f"{path}: no data rows")
    at = header.index(time_column)
    times = np.array([_time(path, line, row, at, time_format) for line, row in enumerate(rows, start=2)])
    columns = [header.index(name) for name in [*numeric, *labels]]
    matrix = np.array([[_number(row, index) for index in columns] for row in rows], dtype=np.float64)
    extra = {name: matrix[:, len(numeric) + i] for i, name in enumerate(labels)}
    return times.astype(np.int64), matrix[:, : len(numeric)], tuple(numeric), extra


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
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * SECOND_NS + moment.microsecond * 1000


def _number(row: list[str], index: int) -> float:
    cell = row[index].strip() if index < len(row) else ""
    try:
        return float(cell) if cell else float("nan")
    except ValueError:
        return float("nan")


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


def read_ipal_attacks(path: Path, shift_hours: float) -> list[tuple[int, int]]:
    """IPAL attack windows [start, end] in ns, moved by `shift_hours` onto the CSV's clock."""
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    try:
        attacks = json.loads(path.read_text(encoding="utf-8"))
        shift = int(shift_hours * 3600) * SECOND_NS
        return sorted(
            (int(a["start"]) * SECOND_NS + shift, int(a["end"]) * SECOND_NS + shift) for a in attacks
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"{path}: not an IPAL attack list ({error})") from None
