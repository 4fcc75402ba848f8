"""What the PKI's HTTP routes share (the JSON API in `api.py`, EST in `est.py`): the store and the
audit log of the application, the platform CA of its data directory, the enrolment throttle, the
caller's address, and the client certificate TLS verified for the connection."""

from __future__ import annotations

import threading

from cryptography import x509
from fastapi import HTTPException, Request

from plantwarden.core.auditlog import AuditLog
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.settings import Settings
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.errors import NoCertificateAuthority
from plantwarden.pki.est_throttle import EnrolmentThrottle

NO_CA = "the platform has no CA yet: an administrator runs `plantwarden pki init`"
_throttle_lock = threading.Lock()


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def audit_of(request: Request) -> AuditLog | None:
    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    return audit


def authority(request: Request) -> CertificateAuthority:
    """The platform CA, read from `<data_dir>/pki` at each request (a CA made or renewed while the
    server runs is used at once; reading it costs well under a millisecond). No CA: 503."""
    settings: Settings = request.app.state.settings
    try:
        return CertificateAuthority.load(pki_directory(settings[CoreSettings].data_path))
    except NoCertificateAuthority:
        raise HTTPException(503, NO_CA) from None


def throttle_of(request: Request) -> EnrolmentThrottle:
    """The application's enrolment throttle (made at its first use)."""
    with _throttle_lock:
        throttle = getattr(request.app.state, "enrolment_throttle", None)
        if not isinstance(throttle, EnrolmentThrottle):
            throttle = request.app.state.enrolment_throttle = EnrolmentThrottle()
        return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def tls_client_certificate(request: Request) -> tuple[bool, x509.Certificate | None]:
    """(whether the connection carries the ASGI TLS extension, the client certificate TLS
    verified). The server adds the extension only when it speaks TLS and has a platform CA
    (`web/tls.py`); the chain is empty when the client sent no certificate."""
    tls = (request.scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return False, None
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return True, None
    return True, x509.load_pem_x509_certificate(str(chain[0]).encode())
