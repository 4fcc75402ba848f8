"""Which device keys the telemetry ingest trusts: certificates the platform CA issued, found by
their SHA-256 fingerprint (the COSE `kid` of a device's signature), valid now and at the
message's time, not revoked, and of this site.

Looking a certificate up costs a database round trip, so what was found is kept for `ttl`
seconds; a revocation reaches the cache sooner, through the event log: `watch_revocations`
reads the new `pki.CertificateRevoked` events each time the ingest flushes and forgets those
certificates at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from plantwarden.core.clock import Clock
from plantwarden.core.db import Store
from plantwarden.core.eventlog import head_position, read_after
from plantwarden.pki.events import CERTIFICATE_REVOKED
from plantwarden.pki.queries import CertificateStatus, certificate_by_fingerprint, status_of

CACHE_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class TrustedDevice:
    """A device certificate the ingest may accept messages of."""

    kid: bytes
    serial: str
    site: str
    zone: str
    device: str
    not_before: datetime
    not_after: datetime
    public_key: ec.EllipticCurvePublicKey
    enrolled: bool
    """Issued by a new enrolment (token, EST, CLI), not by a renewal: a device starting afresh."""
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class Distrusted:
    """Why a kid is not trusted: its status (unknown, revoked, expired, not yet valid)."""

    kid: bytes
    status: CertificateStatus
    device: str | None


class DeviceKeys:
    """Device keys by fingerprint, checked against the certificate inventory and cached."""

    def __init__(self, store: Store, clock: Clock, *, ttl: float = 30.0) -> None:
        self.store, self.clock, self.ttl = store, clock, ttl
        self._cache: OrderedDict[bytes, tuple[float, TrustedDevice | Distrusted]] = OrderedDict()
        self._position: int | None = None

    def lookup(self, kid: bytes) -> TrustedDevice | Distrusted:
        """The trusted device of `kid`, or why it is not trusted (now)."""
        entry = self._cache.get(kid)
        now = time.monotonic()
        if entry is None or now - entry[0] > self.ttl:
            entry = (now, self._load(kid))
            self._cache[kid] = entry
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        found = entry[1]
        if isinstance(found, TrustedDevice) and not found.not_before <= self.clock.now() < found.not_after:
            expired = self.clock.now() >= found.not_after
            status = CertificateStatus.EXPIRED if expired else CertificateStatus.NOT_YET_VALID
            return Distrusted(kid, status, found.device)
        return found

    def _load(self, kid: bytes) -> TrustedDevice | Distrusted:
        with self.store.transaction() as session:
            record = certificate_by_fingerprint(session, kid)
            status = status_of(record, self.clock.now())
            if record is None or status is CertificateStatus.REVOKED:
                return Distrusted(kid, status, record.device if record else None)
            certificate = x509.load_pem_x509_certificate(record.pem.encode())
            key = certificate.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return Distrusted(kid, CertificateStatus.UNKNOWN, record.device)
            return TrustedDevice(
                kid,
                record.serial,
                record.site,
                record.zone,
                record.device,
                record.not_before,
                record.not_after,
                key,
                enrolled=record.issued_via != "renewal",
                issued_at=record.created_at,
            )

    def forget(self, kid: bytes) -> None:
        self._cache.pop(kid, None)

    def watch_revocations(self) -> int:
        """Forget the certificates revoked since the last call (the first call only starts
        watching); how many were forgotten."""
        with self.store.transaction() as session:
            if self._position is None:
                self._position = head_position(session)
                return 0
            forgotten = 0
            for position, event in read_after(session, self._position):
                self._position = position
                if event.type == CERTIFICATE_REVOKED:
                    fingerprint = str(event.payload.get("fingerprint", ""))
                    try:
                        self.forget(bytes.fromhex(fingerprint))
                    except ValueError:
                        continue
                    forgotten += 1
            return forgotten
