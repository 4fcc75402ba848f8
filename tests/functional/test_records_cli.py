from __future__ import annotations

import json
from pathlib import Path

from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.schema import Operation
from plantwarden.exports.validate import validate_event
from tests.helpers import plantwarden
from tests.unit.core.records.factories import protocol_batch

SINCE, UNTIL = "2026-09-21T14:00:00Z", "2026-09-21T15:00:00Z"


def write_records(data_dir: Path) -> int:
    """Write 2,000 records into the data directory's records plane; returns how many are reads."""
    batch = protocol_batch(2000, read_share=0.5)
    with RecordWriter(SQLitePartitions(data_dir / "records"), "sensor-1") as writer:
        writer.write(batch)
    return int((batch["operation"] == Operation.READ).sum())


def test_partitions_query_and_retention(tmp_path: Path) -> None:
    reads = write_records(tmp_path)
    base = ("--data-dir", str(tmp_path), "records")
    partitions = plantwarden(*base, "partitions", cwd=tmp_path)
    assert partitions.returncode == 0, partitions.stderr
    assert {line.split()[0] for line in partitions.stdout.splitlines()} == {
        "protocol",
        "protocol_read_minutes",
    }
    found = plantwarden(
        *base,
        "query",
        "protocol",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--asset",
        "10.0.1.2",
        "--operation",
        "write",
        "--format",
        "json",
        "--limit",
        "5",
        cwd=tmp_path,
    )
    rows = json.loads(found.stdout)
    assert len(rows) == 5
    assert all(r["operation"] == "write" and "10.0.1.2" in (r["src_addr"], r["dst_addr"]) for r in rows)
    assert rows[0]["ts"] > rows[-1]["ts"]  # newest first
    minutes = json.loads(
        plantwarden(
            *base,
            "query",
            "protocol_read_minutes",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--format",
            "json",
            "--limit",
            "1000",
            cwd=tmp_path,
        ).stdout
    )
    assert sum(r["requests"] for r in minutes) == reads
    table = plantwarden(
        *base, "query", "protocol", "--since", SINCE, "--until", UNTIL, "--limit", "3", cwd=tmp_path
    )
    assert table.stdout.splitlines()[0].split()[:3] == ["ts", "segment", "src_addr"]
    kept = plantwarden("--set", "records.retention_days=30", *base, "retention", cwd=tmp_path)
    assert "2 partitions dropped" in kept.stdout
    assert plantwarden(*base, "partitions", cwd=tmp_path).stdout.strip() == "no partitions yet"


def test_bad_query_input_gets_clear_errors(tmp_path: Path) -> None:
    base = ("--data-dir", str(tmp_path), "records", "query", "protocol")
    assert "is not an IP address" in plantwarden(*base, "--asset", "10.0.0.300", cwd=tmp_path).stderr
    assert "is not an ISO 8601 time" in plantwarden(*base, "--since", "yesterday", cwd=tmp_path).stderr


def test_protocol_records_export_as_valid_ocsf(tmp_path: Path) -> None:
    write_records(tmp_path)
    out = tmp_path / "records.jsonl"
    result = plantwarden(
        "--data-dir",
        str(tmp_path),
        "export",
        "ocsf",
        "records",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "-o",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) > 900  # the half that is not read polling
    assert all(e["class_uid"] == 4001 for e in events)
    assert all(validate_event(e) == [] for e in events)
