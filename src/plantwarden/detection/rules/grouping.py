"""Records grouped by the values of some fields, vectorised: one integer key per record.

Each field's values are factorised on their own (addresses as two 64-bit words, text through a
dictionary, with a fast path for the usual batch of one site and segment), then the codes are
packed into one int64 per record and `np.unique` numbers the groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.schema import Operation, Protocol, address_text
from plantwarden.detection.rules.compile import BatchView
from plantwarden.detection.rules.fields import ROLES, FieldType

Array = npt.NDArray[Any]
_PACK_LIMIT = 1 << 62


@dataclass(frozen=True)
class Groups:
    """Rows (of the batch) in groups: `number[i]` the group of `rows[i]`; `first[g]` the position in
    `rows` of group g's first record; `count[g]` its records."""

    rows: Array
    number: Array
    first: Array
    count: Array

    def __len__(self) -> int:
        return len(self.first)


def factorise(values: Array) -> tuple[Array, int]:
    """Codes 0..n-1 for the distinct values of a column, and n."""
    if values.dtype == object:
        if not len(values) or bool(np.all(values == values[0])):
            return np.zeros(len(values), dtype=np.int64), 1
        table: dict[Any, int] = {}
        codes = np.fromiter((table.setdefault(v, len(table)) for v in values), np.int64, len(values))
        return codes, len(table)
    distinct, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), len(distinct)


def key_columns(view: BatchView, names: Sequence[str], rows: Array) -> list[Array]:
    """The columns that make the key, at `rows` (an address gives two)."""
    columns = []
    for name in names:
        if name in ("src_addr", "dst_addr"):
            high, low = view.words(name)
            columns += [high[rows], low[rows]]
        else:
            columns.append(view.column(name)[rows])
    return columns


def pack(columns: Sequence[Array], length: int) -> Array:
    """One int64 key per row from several columns (re-factorised when the codes would overflow)."""
    key = np.zeros(length, dtype=np.int64)
    size = 1
    for column in columns:
        codes, distinct = factorise(column)
        if size * distinct >= _PACK_LIMIT:
            key, size = factorise(key)
        key = key * distinct + codes
        size *= distinct
    return key


def group(view: BatchView, names: Sequence[str], rows: Array, extra: Array | None = None) -> Groups:
    """The rows grouped by the named fields (and `extra` codes, such as the window number)."""
    columns = key_columns(view, names, rows)
    if extra is not None:
        columns.append(extra)
    key = pack(columns, len(rows))
    _, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    return Groups(rows, inverse.reshape(-1), first, count)


def display(view: BatchView, name: str, row: int) -> Any:
    """A field's value at a row, as people read it (addresses and names as text)."""
    value = view.column(name)[row]
    field_type = _TYPES.get(name)
    if name in ("src_addr", "dst_addr"):
        return address_text(bytes(value))
    if field_type is FieldType.PROTOCOL:
        return _name(Protocol, int(value))
    if field_type is FieldType.OPERATION:
        return _name(Operation, int(value))
    if field_type is FieldType.ROLE:
        return ROLES[int(value)] if int(value) < len(ROLES) else "unknown"
    if isinstance(value, np.generic):
        return value.item()
    return str(value) if value is not None else ""


_TYPES = {"protocol": FieldType.PROTOCOL, "operation": FieldType.OPERATION}
_TYPES |= {"src_role": FieldType.ROLE, "dst_role": FieldType.ROLE}


def _name(enumeration: type[Protocol] | type[Operation], code: int) -> str:
    try:
        return enumeration(code).name.lower()
    except ValueError:
        return str(code)
