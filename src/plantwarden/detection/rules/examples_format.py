"""Reading a rule's `examples:`: positive and negative records, typed like the rule's values.

An example is one record (a mapping of fields) or, under `records:`, the records of one run
(count rules need several). Derived fields (`src_role`, `maintenance`, ...) may be given: the
example then says what the providers would answer for that record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plantwarden.detection.rules.fields import Field
from plantwarden.detection.rules.model import Examples
from plantwarden.detection.rules.selections import RuleReader
from plantwarden.detection.rules.values import ValueProblem, example_value
from plantwarden.zones.plant.source import Path

MAX_EXAMPLE_RECORDS = 10_000
Record = Mapping[str, Any]


def read_examples(reader: RuleReader, data: Any, fields: Mapping[str, Field], counted: bool) -> Examples:
    """Both lists of examples; a rule needs at least one of each."""
    if not isinstance(data, dict):
        reader.report(
            ("examples",) if data is not None else (), "a rule needs examples: positive: and negative:"
        )
        return Examples()
    for key in sorted(set(data) - {"positive", "negative"}):
        reader.report(("examples", key), f"unknown key {key!r} (positive, negative)", key=True)
    lists = [_list(reader, data, which, fields, counted) for which in ("positive", "negative")]
    return Examples(lists[0], lists[1])


def _list(
    reader: RuleReader, data: dict[str, Any], which: str, fields: Mapping[str, Field], counted: bool
) -> tuple[tuple[Record, ...], ...]:
    items = data.get(which)
    path: Path = ("examples", which)
    if not isinstance(items, list) or not items:
        reader.report(
            path if which in data else ("examples",), f"examples need a {which}: list (one at least)"
        )
        return ()
    found = []
    for index, item in enumerate(items):
        records = _example(reader, (*path, index), item, fields)
        if records is not None:
            found.append(records)
    return tuple(found)


def _example(
    reader: RuleReader, path: Path, item: Any, fields: Mapping[str, Field]
) -> tuple[Record, ...] | None:
    if isinstance(item, dict) and set(item) == {"records"}:
        rows = item["records"]
        path = (*path, "records")
        if not isinstance(rows, list) or not 0 < len(rows) <= MAX_EXAMPLE_RECORDS:
            reader.report(path, f"records: is a list of 1 to {MAX_EXAMPLE_RECORDS:,} records")
            return None
        parsed = [_record(reader, (*path, i), row, fields) for i, row in enumerate(rows)]
        return tuple(r for r in parsed if r is not None) if all(r is not None for r in parsed) else None
    record = _record(reader, path, item, fields)
    return (record,) if record is not None else None


def _record(reader: RuleReader, path: Path, row: Any, fields: Mapping[str, Field]) -> Record | None:
    if not isinstance(row, dict):
        reader.report(path, "an example record is a mapping of field: value")
        return None
    record: dict[str, Any] = {}
    for name, value in row.items():
        field = reader.field((*path, name), name, fields)
        if field is None:
            return None
        try:
            record[name] = example_value(field, value)
        except ValueProblem as problem:
            reader.report((*path, name), str(problem))
            return None
    return record
