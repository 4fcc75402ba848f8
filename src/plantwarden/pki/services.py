"""The PKI's use cases in one place (each takes a session and a `Context`, and the audit log
where it acts): tokens and enrolment, issuing, renewal, revocation and the CRL, the certificate
inventory and its status, expiry alerts. They live in the modules named below; this module is
the interface the API, EST, the command line and other domains import."""

from __future__ import annotations

from plantwarden.pki.certs import DeviceIdentity, fingerprint
from plantwarden.pki.expiry import check_expiry, expiring
from plantwarden.pki.issuing import IssuedCertificate, issue, matching_asset, renew
from plantwarden.pki.queries import (
    CertificateStatus,
    certificate_by_fingerprint,
    get_certificate,
    list_certificates,
    normalise_serial,
    status,
    status_of,
)
from plantwarden.pki.revocation import crl, crl_pem, revoke, revoke_device
from plantwarden.pki.tokens import DEFAULT_TOKEN_TTL, create_token, enrol_with_token, tokens

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "CertificateStatus",
    "DeviceIdentity",
    "IssuedCertificate",
    "certificate_by_fingerprint",
    "check_expiry",
    "create_token",
    "crl",
    "crl_pem",
    "enrol_with_token",
    "expiring",
    "fingerprint",
    "get_certificate",
    "issue",
    "list_certificates",
    "matching_asset",
    "normalise_serial",
    "renew",
    "revoke",
    "revoke_device",
    "status",
    "status_of",
    "tokens",
]
