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


NOTE_LENGTH = 2000
"""The longest note or reason kept with an alert's status or a suppression (the API's limit)."""


def check_note(note: str, what: str = "the note") -> None:
    """Refuse a note the API would refuse (the command line takes the same services)."""
    if len(note) > NOTE_LENGTH:
        raise InvalidAlert(f"{what} has {len(note)} characters; at most {NOTE_LENGTH}")
