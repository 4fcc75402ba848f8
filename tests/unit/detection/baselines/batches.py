"""Record batches for the baseline tests: the zone-check tests' builders, with values written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from plantwarden.core.records.batch import RecordBatch
from tests.unit.detection.plant_models import WEDNESDAY_NOON, protocol_records

SECOND = 1_000_000_000


def records(rows: Sequence[Mapping[str, Any]]) -> RecordBatch:
    """Protocol records (see `plant_models.protocol_records`), with `value` when a row gives one."""
    batch = protocol_records(rows)
    values = np.array([float(r.get("value", np.nan)) for r in rows])
    return RecordBatch(batch.kind, {**batch.columns, "value": values})


def polls(count: int, period_s: float, start: int = WEDNESDAY_NOON, **row: Any) -> RecordBatch:
    """`count` reads of one register, `period_s` apart."""
    return records([{"ts": start + int(i * period_s * SECOND), **row} for i in range(count)])


def write(ts: int = WEDNESDAY_NOON, **row: Any) -> dict[str, Any]:
    """A Modbus write single register (function 6) row."""
    return {"operation": "write", "function": 6, "address": 100, "quantity": 1, "value": 50, "ts": ts, **row}
