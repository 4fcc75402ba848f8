"""Plantwarden's alerts and protocol records as OCSF events (the pinned version; see docs/ocsf.md).

An alert becomes a Detection Finding (class 2004) and each protocol record a Network Activity
event (class 4001). What OCSF has no attribute for travels in Plantwarden's extension (declared
in `metadata.extensions`): `site_uid` on both classes and the `ics` object (the industrial
request: protocol, operation, function code, unit, address, quantity, answer status, value).
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from plantwarden import __version__
from plantwarden.alerts.models import Alert, AlertStatus, Severity
from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import (
    NO_ANSWER_EXPECTED,
    PROTOCOL_RECORDS,
    Operation,
    Protocol,
    address_text,
)
from plantwarden.exports.validate import OCSF_VERSION, pinned_schema, validate_event

DETECTION_FINDING = "detection_finding"
NETWORK_ACTIVITY = "network_activity"
ICS_REQUEST = "plantwarden/ics_request"
PRODUCT = "Plantwarden"

# Enum values of OCSF 1.3.0 (their captions are read from the pinned schema).
SEVERITY_IDS = {  # Informational, Low, Medium, High, Critical
    Severity.INFO: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}
STATUS_IDS = {  # New, In Progress, Resolved (1.3.0 has no "Closed"; Suppressed would claim a false positive)
    AlertStatus.NEW: 1,
    AlertStatus.ACKNOWLEDGED: 2,
    AlertStatus.CLOSED: 4,
}
FINDING_CREATE, FINDING_UPDATE, FINDING_CLOSE = 1, 2, 3
NETWORK_TRAFFIC = 6
INFORMATIONAL = 1
RULE_ANALYTIC = 1
DIRECTION_UNKNOWN = 0
REQUEST_SUCCESS, REQUEST_FAILURE, REQUEST_UNKNOWN = 1, 2, 0
OTHER = 99
TRANSPORT_NAMES = {6: "tcp", 17: "udp"}
ATTACK_URL = "https://attack.mitre.org/techniques/"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidExport(PlantwardenError):
    """An event does not validate against the pinned OCSF schema, so it is not exported."""

    code = "export_invalid"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (OCSF `timestamp_t`) of a timezone-aware time."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def alert_to_ocsf(alert: Alert) -> dict[str, Any]:
    """A Detection Finding (class 2004) describing the alert as it stands now."""
    event: dict[str, Any] = {
        **_classification(DETECTION_FINDING, _finding_activity(alert)),
        **_enum_pair(DETECTION_FINDING, "severity_id", SEVERITY_IDS[Severity(alert.severity)]),
        **_alert_status(alert),
        "time": epoch_ms(alert.updated_at),
        "timezone_offset": 0,
        "message": alert.title,
        "count": alert.occurrences,
        "start_time": epoch_ms(alert.first_seen),
        "end_time": epoch_ms(alert.last_seen),
        "finding_info": _finding_info(alert),
        "metadata": _metadata("alerts", feature=alert.detector),
        "site_uid": alert.site,
    }
    if alert.evidence:
        event["evidences"] = [_evidence(item) for item in alert.evidence]
    if alert.assets:
        event["resources"] = [{"uid": asset, "type": "asset"} for asset in alert.assets]
    return event


def _finding_activity(alert: Alert) -> int:
    if alert.status == AlertStatus.CLOSED:
        return FINDING_CLOSE
    unchanged = alert.occurrences == 1 and alert.updated_at == alert.created_at
    return FINDING_CREATE if unchanged else FINDING_UPDATE


def _alert_status(alert: Alert) -> dict[str, Any]:
    status = _enum_pair(DETECTION_FINDING, "status_id", STATUS_IDS[alert.status])
    if alert.status_note:
        status["status_detail"] = alert.status_note
    return status


def _finding_info(alert: Alert) -> dict[str, Any]:
    info: dict[str, Any] = {
        "uid": str(alert.id),
        "title": alert.title,
        "analytic": {"uid": alert.rule_id, "name": alert.rule_name, **_analytic_type()},
        "created_time": epoch_ms(alert.created_at),
        "modified_time": epoch_ms(alert.updated_at),
        "first_seen_time": epoch_ms(alert.first_seen),
        "last_seen_time": epoch_ms(alert.last_seen),
    }
    if alert.description:
        info["desc"] = alert.description
    if alert.techniques:
        info["attacks"] = [attack(technique) for technique in alert.techniques]
    return info


def _analytic_type() -> dict[str, Any]:
    return {"type_id": RULE_ANALYTIC, "type": pinned_schema().caption("analytic", "type_id", RULE_ANALYTIC)}


def attack(technique: str) -> dict[str, Any]:
    """The OCSF `attack` object of a MITRE ATT&CK technique id ("T0855", or "T1059.001" with its parent)."""
    parent, _, sub = technique.partition(".")
    mapped: dict[str, Any] = {"technique": {"uid": parent, "src_url": f"{ATTACK_URL}{parent}/"}}
    if sub:
        mapped["sub_technique"] = {"uid": technique, "src_url": f"{ATTACK_URL}{parent}/{sub}/"}
    return mapped


def _evidence(item: Mapping[str, Any]) -> dict[str, Any]:
    """An `evidences` object: the item itself as `data`, its `src`/`dst` addresses as endpoints."""
    evidence: dict[str, Any] = {"data": dict(item)}
    for key, attribute in (("src", "src_endpoint"), ("dst", "dst_endpoint")):
        if _is_ip(item.get(key)):
            evidence[attribute] = {"ip": item[key]}
    return evidence


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value if isinstance(value, str) else "")
    except ValueError:
        return False
    return True


def protocol_records_to_ocsf(batch: RecordBatch) -> list[dict[str, Any]]:
    """One Network Activity event (class 4001, activity Traffic) per record of a protocol batch."""
    if batch.kind.name != PROTOCOL_RECORDS.name:
        raise InvalidInput(
            f"only {PROTOCOL_RECORDS.name} records map to Network Activity, not {batch.kind.name}"
        )
    return [_network_activity(row) for row in batch.rows()]


def _network_activity(row: Mapping[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        **_classification(NETWORK_ACTIVITY, NETWORK_TRAFFIC),
        **_enum_pair(NETWORK_ACTIVITY, "severity_id", INFORMATIONAL),
        **_request_status(row["status"]),
        "time": row["ts"] // 1_000_000,
        "timezone_offset": 0,
        "message": _request_message(row),
        "src_endpoint": _endpoint(row["src_addr"], row["src_port"], row["segment"]),
        "dst_endpoint": _endpoint(row["dst_addr"], row["dst_port"], row["segment"]),
        "connection_info": _connection(row["transport"]),
        "metadata": _metadata("protocol"),
        "ics": ics_request(row),
    }
    if row["site"]:
        event["site_uid"] = str(row["site"])
    return event


def _request_status(status: int) -> dict[str, Any]:
    """0: answered normally (Success); > 0: the protocol's exception code (Failure); -2: a
    one-way request, which expects no answer (Other, with `status` saying so: neither a success
    nor a failure); any other value below 0: no answer seen (Unknown)."""
    one_way = status == NO_ANSWER_EXPECTED
    if one_way:
        pair: dict[str, Any] = {"status_id": OTHER, "status": "No answer expected"}
    else:
        status_id = REQUEST_SUCCESS if status == 0 else REQUEST_FAILURE if status > 0 else REQUEST_UNKNOWN
        pair = _enum_pair(NETWORK_ACTIVITY, "status_id", status_id)
    pair["status_code"] = str(status)
    if status > 0:
        pair["status_detail"] = f"exception code {status}"
    elif status < 0:
        pair["status_detail"] = "no answer expected (one-way request)" if one_way else "no answer seen"
    return pair


def _endpoint(packed: bytes, port: int, segment: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"ip": address_text(packed)}
    if port:
        endpoint["port"] = port
    if segment:
        endpoint["zone"] = str(segment)
    return endpoint


def _connection(transport: int) -> dict[str, Any]:
    info = _enum_pair("network_connection_info", "direction_id", DIRECTION_UNKNOWN)
    if transport:
        info["protocol_num"] = transport
    if transport in TRANSPORT_NAMES:
        info["protocol_name"] = TRANSPORT_NAMES[transport]
    return info


def ics_request(row: Mapping[str, Any]) -> dict[str, Any]:
    """The extension's `ics` object of one protocol record (row of a `PROTOCOL_RECORDS` batch)."""
    ics: dict[str, Any] = {
        "protocol": protocol_name(row["protocol"]),
        **_operation(row["operation"]),
        "function_code": row["function"],
        "quantity": row["quantity"],
        "answered": row["status"] >= 0,
    }
    optional = {
        "unit_id": row["unit"] if row["unit"] >= 0 else None,
        "data_address": row["address"] if row["address"] >= 0 else None,
        "exception_code": row["status"] if row["status"] > 0 else None,
        "write_value": row["value"] if math.isfinite(row["value"]) else None,
    }
    ics.update({key: value for key, value in optional.items() if value is not None})
    return ics


def protocol_name(code: int) -> str:
    """The lower-case name of a `Protocol` code ("protocol N" for a code this version does not know)."""
    try:
        return Protocol(code).name.lower()
    except ValueError:
        return f"protocol {code}"


def _operation(code: int) -> dict[str, Any]:
    """`operation_id` and its caption; OTHER and unknown codes map to 99 (Other)."""
    try:
        operation = Operation(code)
    except ValueError:
        return {"operation_id": OTHER, "operation": f"operation {code}"}
    operation_id = OTHER if operation == Operation.OTHER else int(operation)
    return _enum_pair(ICS_REQUEST, "operation_id", operation_id)


def _request_message(row: Mapping[str, Any]) -> str:
    parts = [f"{protocol_name(row['protocol'])} {_operation(row['operation'])['operation'].lower()}"]
    parts.append(f"function {row['function']}")
    if row["unit"] >= 0:
        parts.append(f"unit {row['unit']}")
    if row["address"] >= 0:
        parts.append(f"address {row['address']}")
    if row["quantity"]:
        parts.append(f"quantity {row['quantity']}")
    return ", ".join(parts)


def _classification(class_name: str, activity_id: int) -> dict[str, Any]:
    """class, category, activity and type, ids with their captions, from the pinned schema."""
    definition = pinned_schema().definition(class_name)
    activity = pinned_schema().caption(class_name, "activity_id", activity_id)
    return {
        "class_uid": definition["uid"],
        "class_name": definition["caption"],
        "category_uid": definition["category_uid"],
        "category_name": definition["category_name"],
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": definition["uid"] * 100 + activity_id,
        "type_name": f"{definition['caption']}: {activity}",
    }


def _enum_pair(owner: str, attribute: str, value: int) -> dict[str, Any]:
    """`{attribute: value, sibling: caption}`, the sibling as the pinned schema names it."""
    schema = pinned_schema()
    sibling = schema.definition(owner)["attributes"][attribute]["sibling"]
    return {attribute: value, sibling: schema.caption(owner, attribute, value)}


def _metadata(log_name: str, *, feature: str | None = None) -> dict[str, Any]:
    product: dict[str, Any] = {"name": PRODUCT, "vendor_name": PRODUCT, "version": __version__}
    if feature:
        product["feature"] = {"name": feature}
    return {
        "version": OCSF_VERSION,
        "product": product,
        "log_name": log_name,
        "extensions": [pinned_schema().extension.declaration()],
    }


def checked_line(event: Mapping[str, Any], what: str) -> str:
    """`event` as one line of JSON, or `InvalidExport` naming `what` and every problem."""
    problems = validate_event(event)
    if problems:
        raise InvalidExport(
            f"{what} does not validate against OCSF {OCSF_VERSION}: {'; '.join(problems)}",
            details={"problems": problems},
        )
    return json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
