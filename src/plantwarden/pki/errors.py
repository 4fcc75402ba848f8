"""Errors of the PKI domain."""

from __future__ import annotations

from plantwarden.core.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PermissionDenied


class NoCertificateAuthority(ConfigurationError):
    """The data directory holds no platform CA yet."""

    code = "pki_not_initialised"


class CertificateAuthorityExists(Conflict):
    """`pki init` would overwrite an existing CA."""

    code = "pki_ca_exists"


class WrongPassphrase(InvalidInput):
    """A key does not decrypt with the passphrase given, or it is in clear and a passphrase was given
    (encrypted, and none was). A damaged key file is `InvalidInput` (`keys.load_key`)."""

    code = "pki_wrong_passphrase"


class InvalidRequest(InvalidInput):
    """A certificate signing request (or a certificate presented to us) is malformed or unfit."""

    code = "pki_invalid_request"


class EnrolmentRefused(PermissionDenied):
    """An enrolment token is unknown, expired or already used; a renewal's certificate is unfit."""

    code = "pki_enrolment_refused"


class CertificateNotFound(NotFound):
    code = "pki_certificate_not_found"


class CertificateStateConflict(Conflict):
    """The certificate's state forbids the action (revoking a revoked one, renewing a superseded one)."""

    code = "pki_certificate_state"
