"""Notifications as RFC 5424 syslog messages (pure: values in, bytes out).

    <PRI>1 TIMESTAMP HOSTNAME plantwarden PROCID MSGID [plantwarden@32473 ...][origin ...] BOM MSG

The structured data element `plantwarden@32473` carries the event and the alert as parameters;
32473 is the enterprise number RFC 5612 reserves for documentation (Plantwarden has none of its
own), so receivers match the SD-ID `plantwarden@32473` exactly. MSG is UTF-8 text (with the BOM
RFC 5424 asks for), shortened so the whole message stays within the configured size.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from plantwarden import __version__
from plantwarden.workers.notify.document import GUARANTEE, Notification

APP_NAME = "plantwarden"
SD_ID = "plantwarden@32473"
BOM = b"\xef\xbb\xbf"
NIL = "-"
# Alert severity -> syslog severity (RFC 5424 table 2): critical 2, error 3, warning 4, notice 5, info 6.
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
UNKNOWN_SEVERITY = 5
# Alert fields carried as structured data parameters (parameter name -> field of the API's alert).
ALERT_PARAMETERS = {
    "alertId": "id",
    "severity": "severity",
    "status": "status",
    "ruleId": "rule_id",
    "detector": "detector",
    "zone": "zone",
    "occurrences": "occurrences",
    "verdict": "verdict",
    "assignee": "assignee",
}
EVENT_LABELS = {
    "alerts.AlertRaised": "alert raised",
    "alerts.AlertRepeated": "alert raised again",
    "alerts.AlertAcknowledged": "alert acknowledged",
    "alerts.AlertClosed": "alert closed",
}


def header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, or `-`."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or NIL


def parameter_value(value: object) -> str:
    """A structured-data parameter value with `\\`, `"` and `]` escaped (RFC 5424 6.3.3)."""
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def element(sd_id: str, parameters: Mapping[str, object]) -> str:
    """One structured data element; parameters whose value is None are left out."""
    pairs = "".join(f' {name}="{parameter_value(v)}"' for name, v in parameters.items() if v is not None)
    return f"[{sd_id}{pairs}]"


def parameters(notification: Notification) -> dict[str, object]:
    """The parameters of the `plantwarden@32473` element."""
    event, alert = notification.event, notification.alert or {}
    found: dict[str, object] = {
        "eventId": event.id,
        "eventType": event.type,
        "position": notification.position,
        "site": event.site,
        "alertId": event.payload.get("alert_id"),
    }
    found |= {
        name: alert.get(field) for name, field in ALERT_PARAMETERS.items() if alert.get(field) is not None
    }
    return found | {"guarantee": GUARANTEE, "duplicateKey": event.id}


def text(notification: Notification) -> str:
    """MSG: what happened, in words, then the alert's title and description."""
    event, alert = notification.event, notification.alert or {}
    label = EVENT_LABELS.get(event.type, event.type)
    payload = event.payload
    label += f" by {payload['by']}" if payload.get("by") else ""
    label += f" as {payload['verdict']}" if payload.get("verdict") else ""
    label += f" ({payload['reason']})" if payload.get("reason") else ""
    named = f"alert {payload['alert_id']}" if payload.get("alert_id") else ""
    title = alert.get("title") or payload.get("title") or named
    description = alert.get("description") or ""
    return label + (f": {title}" if title else "") + (f" - {description}" if description else "")


def message(
    notification: Notification, *, facility: int, hostname: str, procid: int, max_bytes: int
) -> bytes:
    """The whole RFC 5424 message, at most `max_bytes` long (MSG is shortened when needed)."""
    severity_name = notification.severity or ""
    priority = facility * 8 + SYSLOG_SEVERITY.get(severity_name, UNKNOWN_SEVERITY)
    timestamp = notification.event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    msgid = header_token(notification.event.type.rpartition(".")[2], 32)
    structured = element(SD_ID, parameters(notification)) + element(
        "origin", {"software": APP_NAME, "swVersion": __version__}
    )
    head = (
        f"<{priority}>1 {timestamp} {header_token(hostname, 255)} {APP_NAME} {procid} {msgid} {structured} "
    )
    room = max_bytes - len(head.encode()) - len(BOM)
    return head.encode() + BOM + shortened(text(notification), room)


def shortened(value: str, limit: int) -> bytes:
    """`value` in UTF-8, cut to at most `limit` bytes on a character boundary (marked with ...)."""
    encoded = value.encode()
    if len(encoded) <= limit:
        return encoded
    cut = encoded[: max(0, limit - 3)].decode("utf-8", "ignore").encode()
    return cut + b"..." if limit >= 3 else b""


def frame(data: bytes) -> bytes:
    """RFC 5425 (and RFC 6587) octet-counting framing: `LENGTH SP MESSAGE`."""
    return str(len(data)).encode() + b" " + data
