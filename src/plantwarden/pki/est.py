"""EST (RFC 7030) under /.well-known/est, for devices that speak it.

- `GET /cacerts`: the CA chain as a certs-only PKCS#7 (4.1), no authentication.
- `POST /simpleenroll`: a base64 DER CSR (`application/pkcs10`); the device authenticates with
  HTTP Basic whose password is its one-time enrolment token (3.2.3, 3.3.2 allow HTTP-based client
  authentication; the user name is not relied on). The identity (site, device, zone, role) comes
  from the token, never from the CSR. The answer is a certs-only PKCS#7 with the new certificate.
- `POST /simplereenroll`: the device authenticates with its current certificate as the TLS client
  certificate (3.3.2; the server verified it against the platform CA in the handshake, see
  `web/tls.py`); the CSR's subject must be the certificate's (4.2.2); the PKI renews it.
Errors are plain-text bodies (4.2.3) with the HTTP status that says what went wrong: 400 a bad
CSR, 401 no credentials, 403 a refused token or certificate, 409 an already renewed certificate,
415 a body that is not `application/pkcs10`, 429 too many failures, 503 no platform CA.

The routes declare `PUBLIC`: they take no session or API token, and authenticate the device
themselves (a one-time token, a client certificate).
"""

from __future__ import annotations

import logging
from typing import Annotated

from cryptography import x509
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from plantwarden.core.access import PUBLIC
from plantwarden.core.context import Context
from plantwarden.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PlantwardenError
from plantwarden.pki import api, est_wire, services
from plantwarden.pki.errors import EnrolmentRefused
from plantwarden.pki.est_common import (
    audit_of,
    authority,
    client_address,
    store_of,
    throttle_of,
    tls_client_certificate,
)
from plantwarden.pki.est_throttle import EnrolmentThrottled
from plantwarden.pki.services import IssuedCertificate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/.well-known/est", tags=["est"])
REALM = 'Basic realm="plantwarden-est", charset="UTF-8"'
BASE64_HEADERS = {"Content-Transfer-Encoding": "base64"}
NO_TLS_CLIENT_AUTH = (
    "this server does not ask for client certificates: it does when it speaks TLS and a platform CA "
    "existed when it started (`plantwarden pki init`, then restart the server)"
)
NO_CLIENT_CERTIFICATE = (
    "simplereenroll authenticates the device by its current certificate: present it as the TLS "
    "client certificate (curl --cert device.pem --key device.key)"
)


class EstError(Exception):
    """An EST refusal: a status and a plain-text message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def plain(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message.rstrip() + "\n", status_code=status, media_type="text/plain", headers=headers)


def as_est_error(error: Exception) -> EstError:
    """The status of a domain or HTTP error, as EST answers it (malformed input is 400 here)."""
    if isinstance(error, EstError):
        return error
    if isinstance(error, HTTPException):
        return EstError(error.status_code, str(error.detail))
    if isinstance(error, EnrolmentThrottled):
        retry = str(max(1, round(error.retry_after_seconds)))
        return EstError(429, error.message, {"Retry-After": retry})
    table: tuple[tuple[type[PlantwardenError], int], ...] = (
        (InvalidInput, 400),
        (PermissionDenied, 403),
        (NotFound, 404),
        (Conflict, 409),
    )
    for cls, status in table:
        if isinstance(error, cls):
            return EstError(status, error.message)
    if isinstance(error, PlantwardenError):
        log.error("EST request failed: %s: %s", error.code, error.message)
        return EstError(500, f"{error.code}: {error.message}")
    log.exception("unexpected error in an EST request")
    return EstError(500, "an internal error occurred; the server log has the details")


def _certs_only(
    certificates: list[x509.Certificate], media_type: str = est_wire.PKCS7_CERTS_ONLY
) -> Response:
    """RFC 7030 names the media type of /cacerts `application/pkcs7-mime` (4.1.3) and that of an
    enrolment's answer `application/pkcs7-mime; smime-type=certs-only` (4.2.3); the body is the same."""
    return Response(est_wire.certs_only(certificates), media_type=media_type, headers=BASE64_HEADERS)


async def _csr_of(request: Request) -> x509.CertificateSigningRequest:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != est_wire.PKCS10:
        raise EstError(
            415,
            f"send the CSR as {est_wire.PKCS10} (base64 DER), not {media_type or 'without a content type'}",
        )
    return est_wire.read_csr(await request.body())


@router.get("/cacerts", response_class=Response, responses={200: {"content": {est_wire.PKCS7: {}}}})
def cacerts(request: Request, _: Annotated[None, Depends(PUBLIC)]) -> Response:
    """The CA chain (issuing CA and root), certs-only PKCS#7 in base64 (RFC 7030 4.1.3)."""
    try:
        return _certs_only(authority(request).chain(), est_wire.PKCS7)
    except (PlantwardenError, HTTPException) as error:
        refusal = as_est_error(error)
        return plain(refusal.status, refusal.message, refusal.headers)


@router.post("/simpleenroll", response_class=Response, responses={200: {"content": {est_wire.PKCS7: {}}}})
async def simpleenroll(request: Request, _: Annotated[None, Depends(PUBLIC)]) -> Response:
    """Enrol with a one-time token as the HTTP Basic password; the new certificate (4.2)."""
    throttle, source = throttle_of(request), client_address(request)
    try:
        credentials = est_wire.basic_credentials(request.headers.get("authorization"))
        if credentials is None or not credentials[1]:
            raise EstError(
                401,
                "authenticate with HTTP Basic: any user name (the device's), the one-time enrolment token "
                "as the password (curl --user plc-7:TOKEN)",
                {"WWW-Authenticate": REALM},
            )
        throttle.check(source)
        csr = await _csr_of(request)
        try:
            issued = await run_in_threadpool(api.enrol, request, credentials[1], csr, "est")
        except EnrolmentRefused:
            throttle.failed(source)
            raise
    except Exception as error:  # every failure is answered in EST's plain text
        refusal = as_est_error(error)
        return plain(refusal.status, refusal.message, refusal.headers)
    log.info("EST enrolment of %s (serial %s) from %s", issued.record.device, issued.record.serial, source)
    return _certs_only([issued.certificate])


@router.post("/simplereenroll", response_class=Response, responses={200: {"content": {est_wire.PKCS7: {}}}})
async def simplereenroll(request: Request, _: Annotated[None, Depends(PUBLIC)]) -> Response:
    """Renew the certificate the device presents as its TLS client certificate (4.2.2)."""
    try:
        speaks_tls, current = tls_client_certificate(request)
        if current is None:
            raise EstError(403, NO_CLIENT_CERTIFICATE if speaks_tls else NO_TLS_CLIENT_AUTH)
        csr = await _csr_of(request)
        check_same_names(current, csr)
        issued = await run_in_threadpool(_renew, request, current, csr)
    except Exception as error:  # every failure is answered in EST's plain text
        refusal = as_est_error(error)
        return plain(refusal.status, refusal.message, refusal.headers)
    log.info(
        "EST renewal of %s: %s replaces %s",
        issued.record.device,
        issued.record.serial,
        issued.record.replaces,
    )
    return _certs_only([issued.certificate])


def check_same_names(current: x509.Certificate, csr: x509.CertificateSigningRequest) -> None:
    """RFC 7030 4.2.2: the CSR's subject (and its subjectAltName, when it has one) must be those of
    the certificate renewed."""
    if csr.subject != current.subject:
        raise InvalidInput(
            f"the CSR's subject {csr.subject.rfc4514_string() or '(empty)'} is not the certificate's "
            f"{current.subject.rfc4514_string()}: a re-enrolment keeps the subject (RFC 7030 4.2.2)"
        )
    try:
        wanted = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return
    try:
        held = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        held = None
    if held is None or set(wanted) != set(held):
        raise InvalidInput("the CSR's subjectAltName is not the certificate's (RFC 7030 4.2.2)")


def _renew(
    request: Request, current: x509.Certificate, csr: x509.CertificateSigningRequest
) -> IssuedCertificate:
    ca = authority(request)
    with store_of(request).transaction() as session:
        return services.renew(
            session, Context(source="server"), audit_of(request), ca, current=current, csr=csr
        )
