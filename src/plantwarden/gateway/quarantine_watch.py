"""The site's quarantine list, applied to the gateway's deny overlay.

At start the gateway loads the site's active quarantine (`incidents.quarantine.active`); then,
every tick, it reads the quarantine events after its position in the event log (as it reads
revocations, `revocations.py`) and applies them: a subject goes into or out of the overlay (the
decider denies it everything, the supervisor closes its sessions), an asset likewise (nothing is
forwarded to it), a certificate by serial into `certificates` (its sessions close, its
handshakes are refused). The position is taken before the list is read, so a change that commits
in between is applied twice, which changes nothing, rather than lost.
"""

from __future__ import annotations

import logging

from plantwarden.core.db import Store
from plantwarden.core.eventlog import head_position, read_after
from plantwarden.incidents.events import ASSET, QuarantineChange, change_of
from plantwarden.incidents.quarantine import CERTIFICATE, active
from plantwarden.policy.errors import InvalidPolicy
from plantwarden.policy.model import SUBJECT_KINDS, Subject
from plantwarden.policy.overlay import DenyOverlay

log = logging.getLogger(__name__)
_BATCH = 500


class QuarantineWatch:
    """Keeps a deny overlay (and the quarantined certificates) in step with the site's list.
    Blocking: call `start` and `poll` from a thread."""

    def __init__(self, store: Store, site: str) -> None:
        self.store, self.site = store, site
        self.position: int | None = None
        self.certificates: frozenset[str] = frozenset()
        """Serials (hex, as the inventory keeps them) of the quarantined certificates."""

    def start(self, overlay: DenyOverlay) -> int:
        """Load the site's active quarantine into `overlay`; returns how many entries."""
        with self.store.transaction() as session:
            position = head_position(session)
            rows = active(session, self.site)
            changes = [QuarantineChange(r.site, r.kind, r.target, r.reason, True) for r in rows]
        for change in changes:
            self.apply(overlay, change)
        self.position = position
        return len(changes)

    def poll(self, overlay: DenyOverlay) -> int:
        """Apply the site's quarantine changes since the last call; returns how many (before
        `start` succeeded, it starts)."""
        if self.position is None:
            return self.start(overlay)
        applied = 0
        with self.store.transaction() as session:
            while True:
                events = read_after(session, self.position, _BATCH)
                for position, event in events:
                    change = change_of(event)
                    if change is not None and change.site == self.site:
                        self.apply(overlay, change)
                        applied += 1
                    self.position = position
                if len(events) < _BATCH:
                    return applied

    def apply(self, overlay: DenyOverlay, change: QuarantineChange) -> None:
        """One change, whatever state it finds (applying it twice changes nothing)."""
        reason = change.reason or "quarantined"
        try:
            if change.kind == ASSET:
                if change.quarantined:
                    overlay.quarantine_asset(change.site, change.id, reason)
                else:
                    overlay.release_asset(change.site, change.id)
            elif change.kind == CERTIFICATE:
                held = set(self.certificates)
                (held.add if change.quarantined else held.discard)(change.id)
                self.certificates = frozenset(held)  # one assignment: readers see old or new
            elif change.kind in SUBJECT_KINDS:
                subject = Subject(change.kind, change.id)
                if change.quarantined:
                    overlay.quarantine_subject(subject, reason)
                else:
                    overlay.release_subject(subject)
            else:
                log.warning("skipped a quarantine of unknown kind %r (%s)", change.kind, change.id)
        except InvalidPolicy as error:
            log.warning("skipped a quarantine change the overlay refuses: %s", error)
