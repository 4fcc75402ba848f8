"""API shapes of alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from plantwarden.alerts.models import Alert, Suppression


class AlertOut(BaseModel):
    id: uuid.UUID
    site: str
    zone: str | None
    title: str
    description: str
    severity: str
    status: str
    detector: str
    rule_id: str
    rule_name: str
    techniques: list[str]
    assets: list[str]
    evidence: list[dict[str, Any]]
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    status_note: str
    status_by: str | None
    confidence: str
    verdict: str | None
    assignee: str | None
    severity_reason: str
    suppressed: bool
    rate_limited: bool

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            id=alert.id,
            site=alert.site,
            zone=alert.zone,
            title=alert.title,
            description=alert.description,
            severity=alert.severity_name,
            status=alert.status.value,
            detector=alert.detector,
            rule_id=alert.rule_id,
            rule_name=alert.rule_name,
            techniques=list(alert.techniques),
            assets=list(alert.assets),
            evidence=list(alert.evidence),
            occurrences=alert.occurrences,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            status_note=alert.status_note,
            status_by=alert.status_by,
            confidence=alert.confidence,
            verdict=alert.verdict,
            assignee=alert.assignee,
            severity_reason=alert.severity_reason,
            suppressed=alert.suppressed,
            rate_limited=alert.rate_limited,
        )


class AlertList(BaseModel):
    alerts: list[AlertOut]
    count: int
    suppressed: int = 0  # suppressed alerts matching the same filters, left out unless asked for


class SuppressionOut(BaseModel):
    id: uuid.UUID
    rule_id: str
    site: str | None
    asset: str | None
    reason: str
    created_by: str | None
    created_at: datetime
    until: datetime

    @classmethod
    def of(cls, suppression: Suppression) -> SuppressionOut:
        return cls(
            id=suppression.id,
            rule_id=suppression.rule_id,
            site=suppression.site,
            asset=suppression.asset,
            reason=suppression.reason,
            created_by=suppression.created_by,
            created_at=suppression.created_at,
            until=suppression.until,
        )
