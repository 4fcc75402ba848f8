"""Alerts and protocol record batches to export."""

from __future__ import annotations

from typing import Any

from plantwarden.alerts import services
from plantwarden.alerts.models import Severity
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Operation, Protocol, address


def draft(**overrides: Any) -> services.AlertDraft:
    """An alert as a detector would raise it: a write across a read-only conduit."""
    values: dict[str, Any] = {
        "site": "plant-a",
        "title": "Write to PLC from the IT zone",
        "description": "A Modbus write crossed the conduit IT -> cell-1, which allows reads only.",
        "severity": Severity.HIGH,
        "detector": "detection.rules",
        "rule_id": "PW-ZONE-001",
        "rule_name": "Write across a conduit that allows reads only",
        "assets": ["10.0.1.3", "10.9.0.7"],
        "evidence": [{"kind": "protocol", "ts": 1, "src": "10.9.0.7", "dst": "10.0.1.3", "function": 6}],
        "techniques": ["T0855", "T0836"],
    }
    values.update(overrides)
    return services.AlertDraft(**values)


def protocol_batch() -> RecordBatch:
    """Three requests: a Modbus write answered normally, an S7 read answered with an exception
    (IPv6), and an unanswered request of an unknown protocol and operation without unit or address."""
    return RecordBatch.build(
        "protocol",
        {
            "ts": [1_795_680_000_123_456_789, 1_795_680_001_000_000_000, 1_795_680_002_999_999_999],
            "site": "plant-a",
            "segment": ["cell-1", "cell-2", ""],
            "src_addr": [address("10.9.0.7"), address("2001:db8::5"), address("10.0.0.1")],
            "dst_addr": [address("10.0.1.3"), address("2001:db8::10"), address("10.0.0.2")],
            "src_port": [49152, 50000, 0],
            "dst_port": [502, 102, 0],
            "transport": [6, 6, 0],
            "protocol": [int(Protocol.MODBUS), int(Protocol.S7COMM), 200],
            "operation": [int(Operation.WRITE), int(Operation.READ), 77],
            "function": [16, 4, 9],
            "unit": [1, 2, -1],
            "address": [40001, 0, -1],
            "quantity": [2, 10, 0],
            "status": [0, 5, -1],
            "value": [12.5, float("nan"), float("nan")],
            "response_ns": [4_200_000, 9_000_000, -1],
        },
    )
