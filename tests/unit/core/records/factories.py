"""Seeded record batches for the records-plane tests."""

from __future__ import annotations

import numpy as np

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import PROTOCOL_RECORDS, TELEMETRY, Operation, ipv4_addresses

BASE_NS = 1_789_999_200_000_000_000  # 2026-09-21T14:00Z: hour-aligned, so partitions start with it


def protocol_batch(
    n: int, *, seed: int = 0, start_ns: int = BASE_NS, step_ns: int = 1_000_000, read_share: float = 0.5
) -> RecordBatch:
    """`n` Modbus-like records from 15 clients to 7 PLCs, `step_ns` apart."""
    rng = np.random.default_rng(seed)
    operations = np.where(rng.random(n) < read_share, Operation.READ, rng.choice([2, 4, 5, 6], n))
    return RecordBatch.build(
        PROTOCOL_RECORDS,
        {
            "ts": start_ns + np.arange(n, dtype=np.int64) * step_ns,
            "site": "plant-a",
            "segment": rng.choice(np.array(["default", "cell-1"], dtype=object), n),
            "src_addr": ipv4_addresses(rng.integers(0x0A000001, 0x0A000010, n).astype(np.uint32)),
            "dst_addr": ipv4_addresses(rng.integers(0x0A000100, 0x0A000107, n).astype(np.uint32)),
            "src_port": rng.integers(1024, 1030, n),
            "dst_port": 502,
            "transport": 6,
            "protocol": rng.choice([1, 2], n),
            "operation": operations,
            "function": rng.choice([3, 6, 16], n),
            "unit": 1,
            "address": rng.integers(0, 5, n) * 100,
            "quantity": 10,
            "status": rng.choice([0, 0, 0, 2], n),
            "value": rng.random(n),
            "response_ns": rng.integers(1_000_000, 20_000_000, n),
        },
    )


def telemetry_batch(n: int, *, seed: int = 0, start_ns: int = BASE_NS) -> RecordBatch:
    rng = np.random.default_rng(seed)
    return RecordBatch.build(
        TELEMETRY,
        {
            "ts": start_ns + np.arange(n, dtype=np.int64) * 1_000_000_000,
            "site": "plant-a",
            "device": rng.choice(np.array(["pump-1", "tank-2"], dtype=object), n),
            "variable": rng.choice(np.array(["pressure", "level", "flow"], dtype=object), n),
            "value": rng.normal(5.0, 1.0, n),
            "quality": 0,
        },
    )
