"""What a notification holds: the event that announced a change of an alert, and the alert as the
API shows it, read from the store when the notification is built.

The same notification goes to every target: whole as signed JSON to the webhook, condensed into
structured data to syslog. A notification may be delivered more than once (after a restart or a
failed acknowledgement); receivers recognise a copy by the event id, `delivery.duplicate_key`.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plantwarden.alerts.models import Alert, Severity
from plantwarden.alerts.schemas import AlertOut
from plantwarden.core.events import Event

SCHEMA = "plantwarden.notification/1"
GUARANTEE = "at-least-once"


@dataclass(frozen=True)
class Notification:
    """One event of the log to deliver, with the alert it concerns (None if it no longer exists)."""

    position: int
    event: Event
    alert: dict[str, Any] | None
    alert_as_of: datetime

    @property
    def severity(self) -> str | None:
        """The alert's severity now (`high`), or None when the alert is not in the store."""
        return None if self.alert is None else str(self.alert.get("severity"))

    def document(self) -> dict[str, Any]:
        """The JSON document: the event, the alert, and how to recognise a copy."""
        return {
            "schema": SCHEMA,
            "event": {
                "id": str(self.event.id),
                "type": self.event.type,
                "schema_version": self.event.schema_version,
                "position": self.position,
                "site": self.event.site,
                "occurred_at": self.event.occurred_at.isoformat(),
                "source": self.event.source,
                "payload": dict(self.event.payload),
            },
            "alert": self.alert,
            "alert_as_of": self.alert_as_of.isoformat(),
            "delivery": {"guarantee": GUARANTEE, "duplicate_key": str(self.event.id)},
        }

    def body(self) -> bytes:
        """The document as compact UTF-8 JSON with sorted keys (the bytes the signature covers)."""
        return json.dumps(self.document(), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def matches(event_type: str, patterns: Sequence[str]) -> bool:
    """True when the event type matches one of the patterns (`alerts.*`, `alerts.AlertRaised`)."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def alert_id_of(event: Event) -> uuid.UUID | None:
    """The alert an event concerns, from its payload's `alert_id` (None when absent or malformed)."""
    value = event.payload.get("alert_id")
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def build(session: Session, position: int, event: Event, now: datetime) -> Notification:
    """The notification of one event, with the alert read from the store as of `now`."""
    alert_id = alert_id_of(event)
    alert = session.get(Alert, alert_id) if alert_id is not None else None
    shown = AlertOut.of(alert).model_dump(mode="json") if alert is not None else None
    return Notification(position, event, shown, now)


def severe_enough(notification: Notification, minimum: str) -> bool:
    """True when the alert is at `minimum` severity or worse; an alert no longer in the store
    (or with a severity this version does not know) is always delivered."""
    severity = notification.severity
    if severity is None or severity.upper() not in Severity.__members__:
        return True
    return Severity[severity.upper()] >= Severity[minimum.upper()]


def suppressed(notification: Notification) -> bool:
    """True for an alert an analyst suppressed: it is stored and counted, not sent."""
    return bool(notification.alert and notification.alert.get("suppressed"))
