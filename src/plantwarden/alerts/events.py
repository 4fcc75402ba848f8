"""Events of the alerts domain."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.events import event_type


@event_type("alerts.AlertRaised")
@dataclass(frozen=True)
class AlertRaised:
    """A detector raised a new alert."""

    alert_id: str
    title: str
    severity: str
    rule_id: str
    detector: str


@event_type("alerts.AlertRepeated")
@dataclass(frozen=True)
class AlertRepeated:
    """An open alert was raised again (same deduplication key): its count went up."""

    alert_id: str
    occurrences: int


@event_type("alerts.AlertAcknowledged")
@dataclass(frozen=True)
class AlertAcknowledged:
    """Someone took ownership of an alert."""

    alert_id: str
    by: str | None
    note: str


@event_type("alerts.AlertClosed")
@dataclass(frozen=True)
class AlertClosed:
    """An alert was closed, with the reason."""

    alert_id: str
    by: str | None
    reason: str
    verdict: str = ""


@event_type("alerts.AlertAssigned")
@dataclass(frozen=True)
class AlertAssigned:
    """An alert was given to someone (`assignee`), or taken back (`assignee` None)."""

    alert_id: str
    assignee: str | None
    previous: str | None
    by: str | None


@event_type("alerts.SuppressionCreated")
@dataclass(frozen=True)
class SuppressionCreated:
    """Alerts of a rule (at a site, about an asset) are stored suppressed until a time."""

    suppression_id: str
    rule_id: str
    site: str | None
    asset: str | None
    until: str
    by: str | None
