"""Errors of the alerts domain."""

from __future__ import annotations

from plantwarden.core.errors import Conflict, InvalidInput, NotFound


class AlertNotFound(NotFound):
    code = "alert_not_found"


class InvalidAlert(InvalidInput):
    code = "invalid_alert"


class AlertTransitionRefused(Conflict):
    code = "alert_transition_refused"


class EvidenceNotKept(NotFound):
    code = "evidence_not_kept"


class SuppressionNotFound(NotFound):
    code = "suppression_not_found"
