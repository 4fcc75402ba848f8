"""Sample records of a detection as plain JSON objects (the alert's evidence)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.schema import Operation, Protocol
from plantwarden.detection.rules.compile import BatchView
from plantwarden.detection.violations import sample_records

Array = npt.NDArray[Any]


def sample_rows(view: BatchView, rows: Array) -> list[dict[str, Any]]:
    """The records at `rows` as JSON objects: times ISO 8601, addresses as text, and the protocol
    and operation by name beside their codes."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return []
    found = sample_records(view.batch.take(rows), tuple(rows.tolist()))
    for record in found:
        if "protocol" in record:
            record["protocol_name"] = _name(Protocol, record["protocol"])
        if "operation" in record:
            record["operation_name"] = _name(Operation, record["operation"])
    return found


def hosts_of(samples: Sequence[dict[str, Any]], limit: int = 8) -> tuple[str, ...]:
    """The addresses the samples name (source and destination), in order, without repeats."""
    hosts: dict[str, None] = {}
    for record in samples:
        for name in ("src_addr", "dst_addr"):
            text = record.get(name)
            if text and text != "::":
                hosts.setdefault(text, None)
    return tuple(hosts)[:limit]


def _name(enumeration: type[Protocol] | type[Operation], code: int) -> str:
    try:
        return enumeration(code).name.lower()
    except ValueError:
        return str(code)
