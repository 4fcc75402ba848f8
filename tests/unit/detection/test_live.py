"""The live tee: batches checked on their way, violations kept by key and reported every so often."""

from __future__ import annotations

from collections.abc import Sequence

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.detection.live import ZoneCheckTee
from plantwarden.detection.violations import Violation
from tests.unit.core.records.factories import telemetry_batch
from tests.unit.detection.plant_models import plant_site, protocol_records


class KeptBatches:
    """A record sink that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[RecordBatch] = []

    def write(self, batch: RecordBatch) -> WriteReport:
        self.batches.append(batch)
        return WriteReport(records=len(batch))


def test_the_tee_passes_batches_on_and_reports_violations_when_due() -> None:
    now = [0.0]
    reports: list[Sequence[Violation]] = []
    inner = KeptBatches()
    tee = ZoneCheckTee(plant_site(), inner, reports.append, flush_seconds=60, monotonic=lambda: now[0])
    program = protocol_records([{"operation": "program"}] * 3)
    office = protocol_records([{"src": "10.9.0.4"}, {}])
    for batch in (program, office, program, telemetry_batch(2)):
        assert tee.write(batch).records == len(batch)
    assert inner.batches[0] is program and len(inner.batches) == 4
    assert reports == [] and sorted(v.count for v in tee.pending.values()) == [1, 6]
    now[0] = 61.0
    tee.write(program)
    assert [sorted((v.rule, v.count) for v in report) for report in reports] == [
        [("zone.no-conduit", 1), ("zone.operation-not-allowed", 9)]
    ]
    tee.write(office)
    tee.close()
    assert [(v.rule, v.count) for v in reports[1]] == [("zone.no-conduit", 1)]
    assert tee.checked == 13 and tee.reported == 3
    tee.close()
    assert len(reports) == 2  # nothing left: nothing reported
