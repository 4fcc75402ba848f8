"""The certificates revoked since the gateway last looked, from the event log.

Like the telemetry ingest (`devices.trust`), the gateway reads `pki.CertificateRevoked` events
after its own position; it starts at the head of the log when it starts (certificates revoked
before are refused at the handshake by the inventory check).
"""

from __future__ import annotations

from plantwarden.core.db import Store
from plantwarden.core.eventlog import head_position, read_after
from plantwarden.pki.events import CERTIFICATE_REVOKED


class RevocationFeed:
    """Fingerprints of certificates revoked since the last call (blocking: call from a thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.position: int | None = None

    def start(self) -> None:
        """Begin at the head of the event log."""
        with self.store.transaction() as session:
            self.position = head_position(session)

    def revoked_since_last(self) -> set[bytes]:
        """The SHA-256 fingerprints revoked since the last call (or since `start`)."""
        if self.position is None:
            self.start()
            return set()
        found: set[bytes] = set()
        with self.store.transaction() as session:
            while True:
                events = read_after(session, self.position)
                for position, event in events:
                    self.position = position
                    if event.type == CERTIFICATE_REVOKED:
                        try:
                            found.add(bytes.fromhex(str(event.payload.get("fingerprint", ""))))
                        except ValueError:
                            continue
                if len(events) < 500:
                    return found
