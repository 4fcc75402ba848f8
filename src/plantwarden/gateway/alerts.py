"""Alerts for refused requests: one alert per rule, subject and PLC, rate-limited in the gateway.

A refusal names the rule that refused. The first refusal of a (rule, subject, asset) raises an
alert at once (`pw-gateway-denied`, ATT&CK for ICS T0855 Unauthorized Command Message; T0836
Modify Parameter for a write outside the envelope); further refusals of the same key within
`interval` seconds are only counted, and the count goes with the next alert of that key. The
alerts service folds repeats into the open alert of the same dedup key, so an attacker hammering
the gateway opens one alert, not thousands (and every refusal is a record anyway).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, raise_alerts
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.gateway.decide import ENVELOPE

log = logging.getLogger(__name__)
DETECTOR = "gateway"
RULE_ID = "pw-gateway-denied"


MAX_PENDING = 10_000
"""Denial alerts kept while the store cannot take them (the oldest are dropped beyond)."""


@dataclass(frozen=True, slots=True)
class Denial:
    """One refused request, as the alert describes it."""

    site: str
    zone: str
    asset: str
    subject: str
    device: str
    source: str
    rule: str
    reason: str
    function_code: int
    address: int
    seen_ns: int


class DenialAlerts:
    """Gathers denials (cheap, any thread) and raises the due alerts on `flush` (blocking)."""

    def __init__(self, store: Store | None, ctx: Context, *, interval: float = 60.0) -> None:
        self.store, self.ctx, self.interval = store, ctx, interval
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str, str], float] = {}
        self._counts: dict[tuple[str, str, str], int] = {}
        self._due: list[tuple[Denial, int]] = []
        self.raised = 0

    def note(self, denial: Denial, now: float) -> bool:
        """Count a denial; True when it will raise an alert (the first of its key in `interval`)."""
        key = (denial.rule, denial.subject, denial.asset)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return False
            self._last[key] = now
            self._due.append((denial, self._counts.pop(key)))
            return True

    def flush(self, now: float | None = None) -> int:
        """Raise the due alerts in one transaction; how many. Keys quiet for `interval` are
        forgotten (their counts go with their next alert)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due, self._due = self._due, []
            horizon = now - self.interval
            self._last = {key: at for key, at in self._last.items() if at >= horizon}  # bounded memory
        if not due or self.store is None:
            return 0
        drafts = [_draft(denial, count) for denial, count in due]
        try:
            with self.store.transaction() as session:
                raise_alerts(session, self.ctx, drafts)
        except Exception:
            with self._lock:  # the store is down: keep them for the next flush (bounded)
                self._due = (due + self._due)[-MAX_PENDING:]
            raise
        self.raised += len(drafts)
        return len(drafts)


def _draft(denial: Denial, count: int) -> AlertDraft:
    envelope = denial.rule.startswith(ENVELOPE)
    where = f"on {denial.asset}" if denial.asset else "at the gateway"
    times = "" if count == 1 else f" ({count} refusals since the last alert)"
    return AlertDraft(
        site=denial.site,
        title=f"Gateway refused {denial.subject} {where}: {denial.rule}",
        severity=Severity.HIGH if envelope else Severity.MEDIUM,
        detector=DETECTOR,
        rule_id=RULE_ID,
        rule_name="Request refused by the Modbus/TCP security gateway",
        description=(
            f"The gateway refused function {denial.function_code} from {denial.subject}"
            f"{' (' + denial.device + ')' if denial.device else ''} at {denial.source} {where}{times}."
            f" Rule {denial.rule}: {denial.reason}. Nothing reached the PLC."
        ),
        techniques=("T0836",) if envelope else ("T0855",),
        evidence=[
            {
                "kind": "gateway_request",
                "ts_ns": denial.seen_ns,
                "src": denial.source,
                "subject": denial.subject,
                "asset": denial.asset,
                "function": denial.function_code,
                "address": denial.address,
                "rule": denial.rule,
            }
        ],
        dedup_key=f"gateway-denied:{denial.site}:{denial.rule}:{denial.subject}:{denial.asset}",
        zone=denial.zone or None,
        extra={"rule": denial.rule, "subject": denial.subject, "device": denial.device, "refusals": count},
    )
