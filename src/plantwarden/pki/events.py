"""Events of the PKI: a revoked certificate, for the services that hold live sessions or accept
data signed by it (telemetry ingest, gateway) to act on."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.events import event_type


@event_type("pki.CertificateRevoked")
@dataclass(frozen=True)
class CertificateRevoked:
    """A device certificate was revoked: its serial (hex), SHA-256 fingerprint (hex), site, device
    and the reason. Refuse it from now on and close live sessions that authenticated with it."""

    serial: str
    fingerprint: str
    site: str
    device: str
    reason: str


CERTIFICATE_REVOKED = "pki.CertificateRevoked"
