"""`RecordBatch`: equal-length numpy columns of one record kind, in and out of the records plane."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.schema import KINDS, TEXT, RecordKind

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class RecordBatch:
    """A batch of records: one numpy array per column of `kind`, all of the same length."""

    kind: RecordKind
    columns: Mapping[str, Array]

    @classmethod
    def build(
        cls, kind: RecordKind | str, columns: Mapping[str, Any], length: int | None = None
    ) -> RecordBatch:
        """Check and convert columns to the kind's dtypes; a scalar is repeated `length` times."""
        kind = KINDS[kind] if isinstance(kind, str) else kind
        missing = [name for name in kind.names if name not in columns]
        extra = [name for name in columns if name not in kind.names]
        if missing or extra:
            raise InvalidInput(f"{kind.name} batch: missing columns {missing}, unknown columns {extra}")
        if length is None:
            lengths = {len(v) for v in columns.values() if isinstance(v, np.ndarray | list | tuple)}
            if len(lengths) > 1:
                raise InvalidInput(f"{kind.name} batch: columns differ in length: {sorted(lengths)}")
            length = lengths.pop() if lengths else 1
        converted = {
            c.name: _column(columns[c.name], c.dtype, length, kind.name, c.name) for c in kind.columns
        }
        return cls(kind, converted)

    @classmethod
    def empty(cls, kind: RecordKind | str) -> RecordBatch:
        kind = KINDS[kind] if isinstance(kind, str) else kind
        return cls(kind, {c.name: np.empty(0, dtype=c.dtype) for c in kind.columns})

    def __len__(self) -> int:
        first = self.columns[self.kind.columns[0].name]
        return len(first)

    def __getitem__(self, name: str) -> Array:
        return self.columns[name]

    def take(self, selector: Array | slice) -> RecordBatch:
        """The rows picked by a boolean mask, an index array or a slice."""
        return RecordBatch(self.kind, {name: column[selector] for name, column in self.columns.items()})

    def sorted_by_time(self) -> RecordBatch:
        """The same rows in time order (stable)."""
        times = self.columns[self.kind.time_column]
        if len(times) < 2 or bool(np.all(times[1:] >= times[:-1])):
            return self
        return self.take(np.argsort(times, kind="stable"))

    def rows(self) -> Iterator[dict[str, Any]]:
        """Row dictionaries (for display and export, not for the hot path)."""
        names = self.kind.names
        lists = [self.columns[name].tolist() for name in names]
        for values in zip(*lists, strict=True):
            yield dict(zip(names, values, strict=True))

    @staticmethod
    def concat(kind: RecordKind, batches: Sequence[RecordBatch]) -> RecordBatch:
        """One batch holding the rows of all `batches`, in order."""
        if not batches:
            return RecordBatch.empty(kind)
        if len(batches) == 1:
            return batches[0]
        return RecordBatch(
            kind, {c.name: np.concatenate([b.columns[c.name] for b in batches]) for c in kind.columns}
        )


def _column(value: Any, dtype: np.dtype[Any], length: int, kind: str, name: str) -> Array:
    if not isinstance(value, np.ndarray | list | tuple):
        if dtype == TEXT:
            column = np.empty(length, dtype=TEXT)
            column[:] = value
            return column
        return np.full(length, value, dtype=dtype)
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"{kind} batch: column {name} cannot be {dtype}: {error}") from error
    if array.ndim != 1 or len(array) != length:
        raise InvalidInput(f"{kind} batch: column {name} has shape {array.shape}, expected ({length},)")
    return array
