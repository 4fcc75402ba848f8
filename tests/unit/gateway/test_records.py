"""The gateway's records buffer: nothing is lost when the records cannot be written for a while,
and what waits is bounded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordWriter
from plantwarden.gateway.records import Endpoints, RecordBuffer, packed, read_gateway_records

NOT_A_DIRECTORY = "Not a directory|File exists"
ENDS = Endpoints("plant-a", "default", packed("10.0.0.5"), 50_000, packed("10.0.0.1"), 802)


def _add(buffer: RecordBuffer, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        buffer.add(
            1_700_000_000_000_000_000 + index, ENDS, operation=1, function=3, unit=1, address=index,
            quantity=1, status=0, value=math.nan, response_ns=1000, allowed=True, rule="role:operator/r",
            reason="operator may read", policy_version="v1", subject="cert_role operator", device="hmi-1",
            asset="plc-1",
        )  # fmt: skip


def _stored(backend: SQLitePartitions) -> list[int]:
    return sorted(int(a) for batch in read_gateway_records(backend, 0, 2**62) for a in batch["address"])


def test_rows_that_cannot_be_written_wait_for_the_next_flush(tmp_path: Path) -> None:
    root = tmp_path / "records"
    root.write_text("not a directory: every partition fails to open")
    backend = SQLitePartitions(root)
    buffer = RecordBuffer(RecordWriter(backend, "gateway-plant-a"))
    _add(buffer, 10)
    with pytest.raises(OSError, match=NOT_A_DIRECTORY):
        buffer.flush()
    assert len(buffer) == 10 and buffer.written == 0
    _add(buffer, 5, first=10)
    root.unlink()  # the disk is back
    assert buffer.flush() == 15
    buffer.close()
    assert _stored(backend) == list(range(15))
    assert buffer.dropped == 0


def test_what_waits_is_bounded_and_the_oldest_rows_go_first(tmp_path: Path) -> None:
    root = tmp_path / "records"
    root.write_text("not a directory")
    backend = SQLitePartitions(root)
    buffer = RecordBuffer(RecordWriter(backend, "gateway-plant-a"), max_pending=8)
    _add(buffer, 6)
    with pytest.raises(OSError, match=NOT_A_DIRECTORY):
        buffer.flush()
    _add(buffer, 6, first=6)
    with pytest.raises(OSError, match=NOT_A_DIRECTORY):
        buffer.flush()
    assert len(buffer) == 8 and buffer.dropped == 4
    root.unlink()
    buffer.close()
    assert _stored(backend) == list(range(4, 12))


def test_closing_while_the_records_still_fail_loses_them_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "records"
    root.write_text("not a directory")
    buffer = RecordBuffer(RecordWriter(SQLitePartitions(root), "gateway-plant-a"))
    _add(buffer, 3)
    buffer.close()  # does not raise: the process is ending
    assert "3 gateway records could not be written and are lost" in caplog.text
