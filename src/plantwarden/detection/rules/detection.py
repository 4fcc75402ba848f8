"""What the engine reports: a `Detection`, one rule firing for one group of records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plantwarden.alerts.models import Severity
from plantwarden.detection.rules.model import Rule


@dataclass(frozen=True)
class Detection:
    """A rule that fired: for a count rule, one group in one window that reached the minimum; for
    any other rule, the matching records of one dedup group in one batch.

    `group` holds the group's values (the count's `by`, else the rule's `dedup` fields) as text
    or numbers; `outside` counts the records outside a maintenance window (`severity` is already
    lowered when the rule says so and none was outside); `hosts` the addresses of the samples."""

    rule: Rule
    site: str
    segment: str
    group: tuple[tuple[str, Any], ...]
    count: int
    records: int
    first_ns: int
    last_ns: int
    samples: tuple[dict[str, Any], ...]
    severity: Severity
    outside: int
    window_start_ns: int | None = None
    hosts: tuple[str, ...] = ()

    @property
    def in_maintenance(self) -> bool:
        return self.outside == 0


def severity_of(rule: Rule, outside: int) -> Severity:
    """The rule's severity, or its maintenance severity when no record was outside a window."""
    if rule.severity_in_maintenance is not None and outside == 0:
        return rule.severity_in_maintenance
    return rule.severity
