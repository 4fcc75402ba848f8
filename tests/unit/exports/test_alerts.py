"""Alerts map to Detection Findings (2004) that validate against the pinned schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plantwarden.alerts import services
from plantwarden.alerts.models import Severity
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.exports.ocsf import alert_to_ocsf, attack, epoch_ms
from plantwarden.exports.validate import validate_event
from tests.unit.exports.samples import draft

NOW_MS = epoch_ms(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))


def test_a_new_alert_is_a_created_detection_finding(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft())
        event = alert_to_ocsf(alert)
    assert validate_event(event) == []
    assert (event["class_uid"], event["class_name"], event["category_uid"]) == (2004, "Detection Finding", 2)
    assert (event["activity_id"], event["activity_name"], event["type_uid"]) == (1, "Create", 200401)
    assert (event["severity_id"], event["severity"]) == (4, "High")
    assert (event["status_id"], event["status"]) == (1, "New")
    assert event["time"] == NOW_MS == event["finding_info"]["created_time"]
    assert event["site_uid"] == "plant-a"
    info = event["finding_info"]
    assert (info["uid"], info["title"]) == (str(alert.id), "Write to PLC from the IT zone")
    assert info["analytic"] == {
        "uid": "PW-ZONE-001",
        "name": "Write across a conduit that allows reads only",
        "type_id": 1,
        "type": "Rule",
    }
    assert [a["technique"]["uid"] for a in info["attacks"]] == ["T0855", "T0836"]
    assert event["evidences"][0]["src_endpoint"] == {"ip": "10.9.0.7"}
    assert event["evidences"][0]["data"]["function"] == 6
    assert event["resources"] == [{"uid": "10.0.1.3", "type": "asset"}, {"uid": "10.9.0.7", "type": "asset"}]
    assert event["metadata"]["version"] == "1.3.0"
    assert event["metadata"]["extensions"] == [{"name": "plantwarden", "uid": "1000", "version": "0.1.0"}]


@pytest.mark.parametrize(
    ("severity", "severity_id", "caption"),
    [
        (Severity.INFO, 1, "Informational"),
        (Severity.LOW, 2, "Low"),
        (Severity.MEDIUM, 3, "Medium"),
        (Severity.HIGH, 4, "High"),
        (Severity.CRITICAL, 5, "Critical"),
    ],
)
def test_every_severity_maps_to_its_ocsf_severity(
    ready: Store, ctx: Context, severity: Severity, severity_id: int, caption: str
) -> None:
    with ready.transaction() as session:
        event = alert_to_ocsf(services.raise_alert(session, ctx, draft(severity=severity)))
    assert (event["severity_id"], event["severity"]) == (severity_id, caption)
    assert validate_event(event) == []


def test_the_lifecycle_maps_to_finding_status_and_activity(
    ready: Store, ctx: Context, clock: FixedClock
) -> None:
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft(dedup_key="k"))
        clock.advance(timedelta(minutes=1))
        services.raise_alert(session, ctx, draft(dedup_key="k"))
        repeated = alert_to_ocsf(alert)
        clock.advance(timedelta(minutes=1))
        acknowledged = alert_to_ocsf(services.acknowledge(session, ctx, alert.id, "looking"))
        clock.advance(timedelta(minutes=1))
        closed = alert_to_ocsf(
            services.close(session, ctx, alert.id, "engineer's laptop, approved", verdict="benign")
        )
    assert (repeated["activity_name"], repeated["status"], repeated["count"]) == ("Update", "New", 2)
    assert (acknowledged["activity_id"], acknowledged["status_id"], acknowledged["status"]) == (
        2,
        2,
        "In Progress",
    )
    assert acknowledged["status_detail"] == "looking"
    assert (closed["activity_id"], closed["type_uid"], closed["status_id"]) == (3, 200403, 4)
    assert (closed["status"], closed["status_detail"]) == ("Resolved", "engineer's laptop, approved")
    assert closed["time"] == NOW_MS + 3 * 60_000
    assert closed["finding_info"]["created_time"] == NOW_MS
    for event in (repeated, acknowledged, closed):
        assert validate_event(event) == []


def test_a_bare_alert_leaves_optional_parts_out(ready: Store, ctx: Context) -> None:
    bare = draft(description="", assets=(), evidence=(), techniques=())
    with ready.transaction() as session:
        event = alert_to_ocsf(services.raise_alert(session, ctx, bare))
    assert validate_event(event) == []
    assert {"evidences", "resources"}.isdisjoint(event)
    assert {"desc", "attacks"}.isdisjoint(event["finding_info"])


def test_evidence_without_addresses_is_kept_as_data(ready: Store, ctx: Context) -> None:
    evidence = [{"kind": "telemetry", "device": "plc-1", "src": "not an address"}]
    with ready.transaction() as session:
        event = alert_to_ocsf(services.raise_alert(session, ctx, draft(evidence=evidence)))
    assert event["evidences"] == [{"data": evidence[0]}]
    assert validate_event(event) == []


def test_attack_techniques_and_sub_techniques() -> None:
    assert attack("T0855") == {
        "technique": {"uid": "T0855", "src_url": "https://attack.mitre.org/techniques/T0855/"}
    }
    assert attack("T1059.001")["sub_technique"] == {
        "uid": "T1059.001",
        "src_url": "https://attack.mitre.org/techniques/T1059/001/",
    }
