"""The zone check over stored records: protocol records, read aggregates and flows from the records
plane (SQLite partitions), violations raised as alerts once, counted again on a second run; the
`zones check` command; the live tee in front of the records plane."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from plantwarden.alerts.models import Alert
from plantwarden.cli.state import CliState
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.runtime import Runtime
from plantwarden.detection.cli import zones_group
from plantwarden.detection.live import open_zone_check
from plantwarden.detection.zone_check import check_stored, raise_alerts
from plantwarden.zones.plant.load import load_plant
from tests.conftest import make_settings
from tests.unit.detection.plant_models import WEDNESDAY_NOON, flows, protocol_records

PLANT = """\
version: 1
sites:
  - id: plant-a
    timezone: Europe/Berlin
    zones:
      - {id: office, purdue_level: 4, subnets: [10.9.0.0/24], security_level: 1}
      - {id: scada, purdue_level: 2, subnets: [10.1.0.0/24], security_level: 2}
      - {id: cell, purdue_level: 1, subnets: [10.2.0.0/24], security_level: 2}
    conduits:
      - id: scada-cell
        zones: [scada, cell]
        channels:
          - {protocol: modbus, from: scada, to: cell, operations: [read, write]}
"""
SECOND = 1_000_000_000
HOUR = 3600 * SECOND
SINCE, UNTIL = "2026-11-25T11:00:00Z", "2026-11-25T13:00:00Z"


@pytest.fixture
def plant(tmp_path: Path) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT)
    return path


def traffic() -> tuple[RecordBatch, RecordBatch]:
    """Reads and writes from the office to the PLC (no conduit), program from SCADA (not allowed),
    allowed reads, and an SMB flow from the office."""
    rows = [{"src": "10.9.0.4", "ts": WEDNESDAY_NOON + i * SECOND} for i in range(30)]
    rows += [{"src": "10.9.0.4", "operation": "write", "ts": WEDNESDAY_NOON + i * SECOND} for i in range(4)]
    rows += [{"operation": "program", "ts": WEDNESDAY_NOON + HOUR // 2 + i} for i in range(3)]
    rows += [{"ts": WEDNESDAY_NOON + i * SECOND} for i in range(50)]
    return protocol_records(rows), flows([{"src": "10.9.0.4", "port": 445}])


def store_records(records_dir: Path) -> None:
    with RecordWriter(SQLitePartitions(records_dir), "sensor") as writer:
        for batch in traffic():
            writer.write(batch)


EXPECTED = [
    ("zone.no-conduit", "10.9.0.4", "flow", 1, "flows"),
    ("zone.no-conduit", "10.9.0.4", "read", 30, "protocol_read_minutes"),
    ("zone.no-conduit", "10.9.0.4", "write", 4, "protocol"),
    ("zone.operation-not-allowed", "10.1.0.5", "program", 3, "protocol"),
]


def test_stored_records_raise_alerts_once_then_count_again(
    tmp_path: Path, plant: Path, store: Store, ctx: Context
) -> None:
    store_records(tmp_path / "records")
    migrate.ensure_ready(store)
    site = load_plant(plant).site("plant-a")
    start, end = WEDNESDAY_NOON - HOUR, WEDNESDAY_NOON + HOUR
    report = check_stored(SQLitePartitions(tmp_path / "records"), site, start, end)
    found = sorted((v.rule, v.src, v.operation, v.count, v.kind) for v in report.violations)
    assert found == EXPECTED
    assert report.records == {"protocol": 7, "protocol_read_minutes": 2, "flows": 1}
    with store.transaction() as session:
        first = raise_alerts(session, ctx, report.violations)
    with store.transaction() as session:
        again = raise_alerts(
            session, ctx, check_stored(SQLitePartitions(tmp_path / "records"), site, start, end).violations
        )
    assert (first.opened, first.repeated, again.opened, again.repeated) == (4, 0, 0, 4)
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 4
        alert = session.scalars(select(Alert).where(Alert.rule_id == "zone.operation-not-allowed")).one()
        assert alert.occurrences == 2 and alert.detector == "detection.segmentation"
        assert (
            alert.dedup_key
            == "zone.operation-not-allowed|plant-a|default|10.1.0.5|10.2.0.10|program|2026-11-25T11:00:00Z"
        )
        summaries = [e for e in alert.evidence if e["kind"] == "zone-check"]
        assert [s["records"] for s in summaries] == [3, 3]
        records = [e for e in alert.evidence if e["kind"] == "protocol"]
        assert len(records) == 6 and records[0]["operation"] == 3 and records[0]["src_addr"] == "10.1.0.5"
        assert "does not allow program" in alert.description and alert.zone == "cell"


def test_the_zones_check_command(tmp_path: Path, plant: Path) -> None:
    store_records(tmp_path / "records")
    state = CliState()
    state.add_overrides({"data_dir": str(tmp_path)})
    runner = CliRunner()
    args = ["check", "--plant", str(plant), "--since", SINCE, "--until", UNTIL]
    shown = runner.invoke(zones_group, args, obj=state)
    assert shown.exit_code == 0, shown.output
    assert (
        "site plant-a: 2026-11-25T11:00:00.000000+00:00 to 2026-11-25T13:00:00.000000+00:00" in shown.output
    )
    assert shown.output.count("zone.no-conduit") == 3 and "4 violations" in shown.output
    assert "alerts:" not in shown.output
    raised = runner.invoke(zones_group, [*args, "--raise-alerts", "--format", "json"], obj=state)
    assert raised.exit_code == 0, raised.output
    assert "alerts: 4 opened, 0 already open (counted again)" in raised.output
    again = runner.invoke(zones_group, [*args, "--raise-alerts"], obj=state)
    assert "alerts: 0 opened, 4 already open (counted again)" in again.output
    state.close()
    wrong = runner.invoke(zones_group, [*args, "--site", "plant-z"], obj=CliState())
    assert wrong.exit_code == 2 and "the plant has no site 'plant-z' (its sites: plant-a)" in wrong.output
    both = runner.invoke(zones_group, [*args, "--last", "1h"], obj=CliState())
    assert both.exit_code == 2 and "give --since or --last, not both" in both.output
    bad = runner.invoke(zones_group, ["check", "--plant", str(plant), "--last", "soon"], obj=CliState())
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output


def test_the_live_tee_checks_records_on_their_way_to_the_records_plane(tmp_path: Path, plant: Path) -> None:
    runtime = Runtime(make_settings(tmp_path))
    writer = RecordWriter(runtime.records(), "sensor")
    tee = open_zone_check(runtime, plant, "plant-a", writer, flush_seconds=3600)
    for batch in traffic():
        tee.write(batch)
    assert tee.reported == 0 and len(tee.pending) == 4  # read, write, program and flow
    tee.close()
    writer.close()
    assert tee.reported == 4 and not tee.pending
    with runtime.ready_store().transaction() as session:
        raised = sorted((a.rule_id, a.occurrences) for a in session.scalars(select(Alert)))
    assert raised == [("zone.no-conduit", 1)] * 3 + [("zone.operation-not-allowed", 1)]
    stored = check_stored(
        runtime.records(), load_plant(plant).site("plant-a"), WEDNESDAY_NOON - HOUR, WEDNESDAY_NOON + HOUR
    )
    assert len(stored.violations) == 4  # the records went on to the records plane
    runtime.close()
