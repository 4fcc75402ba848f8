"""The sensor's rule tee with a real store; maintenance windows from the plant model; alert drafts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.records.plane import WriteReport
from plantwarden.detection.rules.alerts import detection_reporter
from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.format import RuleFileError
from plantwarden.detection.rules.live import RuleTee
from plantwarden.detection.rules.loader import RuleSet
from plantwarden.detection.rules.providers import PlantMaintenance, RoleMap
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, ns, plant_site, protocol_records

STOP = """\
id: pw-s7-program
title: S7 program download
description: A program block was written to the PLC.
severity: high
confidence: high
techniques: [T0843]
detection:
  s: {protocol: s7comm, operation: program}
  condition: s
severity_in_maintenance: low
dedup: [src_addr, dst_addr]
examples:
  positive: [{protocol: s7comm, operation: program}]
  negative: [{protocol: s7comm, operation: read}]
"""
FRIDAY_NIGHT = ns("2026-11-27T23:00:00+01:00")


def program(ts: int, src: str = "10.1.0.50", operation: str = "program") -> dict[str, object]:
    return {"src": src, "protocol": "s7comm", "port": 102, "operation": operation, "ts": ts}


def test_maintenance_is_a_window_of_a_channel_that_carries_the_record_whatever_its_operation() -> None:
    records = protocol_records(
        [
            program(FRIDAY_NIGHT),
            program(WEDNESDAY_NOON),
            program(FRIDAY_NIGHT, operation="write"),
            {"ts": FRIDAY_NIGHT},  # Modbus: its channel has no maintenance window
            program(FRIDAY_NIGHT, src="10.1.0.5"),  # not eng-ws: the channel does not carry it
            {**program(FRIDAY_NIGHT), "site": "elsewhere"},
        ]
    )
    assert PlantMaintenance([plant_site()])(records).tolist() == [True, False, True, False, False, False]


class Kept:
    def __init__(self) -> None:
        self.records = 0

    def write(self, batch: object) -> WriteReport:
        self.records += len(batch)  # type: ignore[arg-type]
        return WriteReport(records=len(batch))  # type: ignore[arg-type]


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def test_the_tee_stores_alerts_when_due_with_maintenance_severity_and_evidence(
    ready: Store, ctx: Context, tmp_path: Path
) -> None:
    (tmp_path / "stop.yaml").write_text(STOP)
    now = [0.0]
    inner = Kept()
    providers = Providers(roles=RoleMap({}), maintenance=PlantMaintenance([plant_site()]))
    tee = RuleTee(
        RuleSet.load(tmp_path),
        inner,
        detection_reporter(ready, ctx),
        providers=providers,
        flush_seconds=1.0,
        reload_seconds=5.0,
        monotonic=lambda: now[0],
    )
    tee.write(protocol_records([program(FRIDAY_NIGHT), program(FRIDAY_NIGHT + 10**9)]))
    tee.write(protocol_records([program(FRIDAY_NIGHT + 2 * 10**9), {"ts": FRIDAY_NIGHT}]))
    assert inner.records == 4 and tee.reported == 0 and len(tee.pending) == 1
    now[0] = 1.5
    tee.write(protocol_records([program(WEDNESDAY_NOON)]))
    with ready.transaction() as session:
        alerts = session.scalars(select(Alert).order_by(Alert.first_seen)).all()
        found = [(a.rule_id, a.severity_name, a.occurrences, a.techniques) for a in alerts]
        night = alerts[1]
        evidence = night.evidence
    assert found == [("pw-s7-program", "high", 1, ["T0843"]), ("pw-s7-program", "low", 1, ["T0843"])]
    assert evidence[0]["records"] == 3 and evidence[0]["in_maintenance"] is True
    assert evidence[1]["src_addr"] == "10.1.0.50" and evidence[1]["protocol_name"] == "s7comm"
    assert evidence[-1]["kind"] == "pcap" and evidence[-1]["hosts"] == ["10.1.0.50", "10.2.0.10"]
    assert evidence[-1]["site"] == SITE and evidence[-1]["since_ns"] == FRIDAY_NIGHT - 10**9
    assert night.assets == ["10.1.0.50", "10.2.0.10"] and tee.reported == 2
    tee.write(protocol_records([program(FRIDAY_NIGHT + 60 * 10**9)]))
    tee.close()
    with ready.transaction() as session:
        counts = sorted(a.occurrences for a in session.scalars(select(Alert)))
    assert counts == [1, 2]  # the same hour, source and destination: one alert, counted again


def test_the_tee_reloads_a_changed_directory_and_keeps_the_counts_of_unchanged_rules(tmp_path: Path) -> None:
    scan = STOP.replace("pw-s7-program", "pw-count").replace(
        "  condition: s\n", "  condition: s\n  count: {window: 1h, min: 3}\n"
    )
    (tmp_path / "count.yaml").write_text(
        scan.replace(
            "  positive: [{protocol: s7comm, operation: program}]",
            "  positive: [{records: [" + ", ".join(["{protocol: s7comm, operation: program}"] * 3) + "]}]",
        )
    )
    now = [0.0]
    reported: list[object] = []
    tee = RuleTee(RuleSet.load(tmp_path), None, reported.extend, monotonic=lambda: now[0])
    tee.write(protocol_records([program(WEDNESDAY_NOON)] * 2))
    (tmp_path / "stop.yaml").write_text(STOP)
    (tmp_path / "broken.yaml").write_text("id: [")
    now[0] = 6.0
    tee.write(protocol_records([program(WEDNESDAY_NOON)]))
    assert tee.reloads == 1 and sorted(tee.engine.by_id()) == ["pw-count", "pw-s7-program"]
    assert len(tee.rules.refused) == 1 and "broken.yaml:1:6: not valid YAML" in str(tee.rules.refused[0])
    now[0] = 7.5
    tee.write(protocol_records([program(WEDNESDAY_NOON)]))
    tee.close()
    assert sorted(d.rule.id for d in reported) == ["pw-count", "pw-s7-program"]  # type: ignore[attr-defined]
    assert "3 rules" not in tee.summary() and "2 rules" in tee.summary()


def test_a_rule_file_broken_while_the_sensor_runs_keeps_its_rules_as_last_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An edit with a typo must not take a rule out of a running sensor unseen: the file's rules stay
    as last loaded, the refusal is logged, and the fixed file is taken at the next reload."""
    (tmp_path / "stop.yaml").write_text(STOP)
    now = [0.0]
    reported: list[object] = []
    tee = RuleTee(RuleSet.load(tmp_path), None, reported.extend, monotonic=lambda: now[0])
    (tmp_path / "stop.yaml").write_text(STOP.replace("severity: high", "severity: [high"))
    now[0] = 6.0
    tee.write(protocol_records([program(WEDNESDAY_NOON)]))
    assert tee.reloads == 1 and sorted(tee.engine.by_id()) == ["pw-s7-program"]
    assert "rule file refused (its rules as last loaded stay in use)" in caplog.text
    assert "stop.yaml" in caplog.text
    tee.flush()
    assert [d.rule.id for d in reported] == ["pw-s7-program"]  # type: ignore[attr-defined]
    (tmp_path / "stop.yaml").unlink()  # a file taken away takes its rules with it
    now[0] = 12.0
    tee.write(protocol_records([]))
    assert tee.reloads == 2 and tee.engine.by_id() == {}
    tee.close()


def test_a_rule_directory_gone_while_the_sensor_runs_keeps_every_rule_as_last_loaded(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stop.yaml").write_text(STOP)
    now = [0.0]
    tee = RuleTee(RuleSet.load(rules), None, lambda _found: None, monotonic=lambda: now[0])
    (rules / "stop.yaml").unlink()
    rules.rmdir()  # a directory moved away (a deploy), not a rule taken out: nothing loads at all
    now[0] = 6.0
    tee.write(protocol_records([]))
    assert tee.reloads == 1 and sorted(tee.engine.by_id()) == ["pw-s7-program"]
    assert "is not a directory of rule files" in str(tee.rules.refused[0])
    tee.close()


def test_a_directory_with_a_refused_file_or_no_rule_is_not_run(tmp_path: Path) -> None:
    (tmp_path / "stop.yaml").write_text(STOP)
    assert RuleSet.load(tmp_path).usable().rules
    (tmp_path / "broken.yaml").write_text("id: [")
    with pytest.raises(RuleFileError, match=r"broken\.yaml:1:6: not valid YAML"):
        RuleSet.load(tmp_path).usable()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuleFileError, match="empty:1:1: holds no rule file"):
        RuleSet.load(empty).usable()


HMI_PROGRAM = STOP.replace("id: pw-s7-program", "id: pw-hmi-program").replace(
    "  s: {protocol: s7comm, operation: program}\n  condition: s\n",
    "  s: {protocol: s7comm, operation: program, src_role: hmi}\n  condition: s\n",
)


def test_the_tee_refreshes_its_providers_and_keeps_them_when_the_refresh_fails(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "hmi.yaml").write_text(HMI_PROGRAM)
    found: list[str] = []
    clock = [0.0]
    roles = {"now": Providers()}

    def refresh() -> Providers:
        if roles["now"] is None:
            raise ConfigurationError("the store is down")
        return roles["now"]

    tee = RuleTee(
        RuleSet.load(directory),
        None,
        lambda detections: found.extend(d.rule.id for d in detections),
        refresh=refresh,
        refresh_seconds=60,
        monotonic=lambda: clock[0],
    )
    batch = protocol_records([program(WEDNESDAY_NOON)])
    tee.write(batch)
    tee.flush()
    assert found == []  # the HMI's role is not known yet
    roles["now"] = Providers(roles=RoleMap({(SITE, "10.1.0.50"): "hmi"}))
    clock[0] = 61.0
    tee.write(batch)  # due: the providers are read again before the next check
    tee.write(batch)
    tee.flush()
    assert found == ["pw-hmi-program"]
    roles["now"] = None  # type: ignore[assignment]
    clock[0] = 200.0
    tee.write(batch)
    tee.flush()
    assert found == ["pw-hmi-program", "pw-hmi-program"]  # the last good providers stay in use
