"""PKI routes of the JSON API (under /api/v1/pki).

- Enrolment tokens (`platform:pki.manage`, at the caller's sites): the secret is answered once.
- Enrolment (no session: the one-time token is the credential): a device sends the token and a
  PEM CSR and gets its certificate and the chain. Refusals (unknown, used or expired token) are
  403 and slow the source down (`est_throttle`); a bad CSR is 422.
- The certificate inventory (`platform:pki.read`, only the caller's sites and zones) and
  revocation (`platform:pki.manage`).
- The CRL and the CA chain are public, as CRLs and CA certificates are meant to be.
EST (RFC 7030) for devices that speak it is in `est.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from plantwarden.core.access import PUBLIC, Actor, Requires
from plantwarden.core.context import Context
from plantwarden.core.errors import InvalidInput, NotFound, PermissionDenied
from plantwarden.pki import est_wire, services
from plantwarden.pki.errors import EnrolmentRefused
from plantwarden.pki.est_common import audit_of, authority, client_address, store_of, throttle_of
from plantwarden.pki.est_throttle import EnrolmentThrottled
from plantwarden.pki.models import CertificateRecord, EnrolmentToken
from plantwarden.pki.services import DeviceIdentity, IssuedCertificate
from plantwarden.pki.tokens import MAX_TOKEN_TTL, token_hash

router = APIRouter(prefix="/pki", tags=["pki"])
READ = Requires("platform:pki.read")
MANAGE = Requires("platform:pki.manage")
PEM_CHAIN = "application/pem-certificate-chain"  # RFC 8555 9.1
PKIX_CRL = "application/pkix-crl"  # RFC 2585
PEM_FILE = "application/x-pem-file"
_NAME = Field(min_length=1, max_length=63)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = _NAME
    device: str = _NAME
    zone: str = _NAME
    role: str | None = Field(default=None, max_length=255, description="Modbus/TCP Security role.")
    asset: uuid.UUID | None = Field(default=None, description="The inventory asset; unset: found by name.")
    ttl_seconds: int = Field(
        default=int(services.DEFAULT_TOKEN_TTL.total_seconds()),
        ge=60,
        le=int(MAX_TOKEN_TTL.total_seconds()),
    )


class TokenOut(BaseModel):
    token: str = Field(description="The one-time secret; shown only in this answer.")
    expires_at: datetime
    site: str
    device: str
    zone: str
    role: str | None


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)
    csr: str = Field(min_length=1, max_length=est_wire.MAX_CSR_BYTES, description="PEM PKCS#10 request.")


class EnrolOut(BaseModel):
    certificate: str = Field(description="The device certificate, PEM.")
    chain: str = Field(description="The issuing CA, then the root, PEM.")
    serial: str
    fingerprint: str
    not_after: datetime


class CertificateOut(BaseModel):
    serial: str
    fingerprint: str
    site: str
    device: str
    zone: str
    role: str | None
    asset_id: uuid.UUID | None
    subject: str
    not_before: datetime
    not_after: datetime
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    issued_via: str
    issued_by: str
    replaces: str | None

    @classmethod
    def of(cls, row: CertificateRecord) -> CertificateOut:
        return cls.model_validate(row, from_attributes=True)


class CertificateDetail(CertificateOut):
    pem: str


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=400)


def _context(actor: Actor | None) -> Context:
    return Context(source="server", actor=actor.username if actor else None)


def _visible(actor: Actor, row: CertificateRecord) -> CertificateRecord:
    if not actor.may_see(row.site, row.zone):
        raise NotFound(f"no certificate with serial {row.serial}")
    return row


@router.post("/tokens", response_model=TokenOut, status_code=201)
def create_token_route(request: Request, actor: Annotated[Actor, Depends(MANAGE)], body: TokenIn) -> TokenOut:
    """A one-time enrolment token for a device of one of the caller's sites."""
    if not actor.may_see(body.site, body.zone):
        raise PermissionDenied(
            f"{actor.username} may not manage certificates in zone {body.zone} of site {body.site}"
        )
    identity = DeviceIdentity(body.site, body.device, body.zone, body.role, body.asset)
    ttl, ctx, audit = timedelta(seconds=body.ttl_seconds), _context(actor), audit_of(request)
    with store_of(request).transaction() as session:
        secret = services.create_token(session, ctx, audit, identity=identity, ttl=ttl)
        row = session.scalars(
            select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash(secret))
        ).one()
        return TokenOut(
            token=secret,
            expires_at=row.expires_at,
            site=row.site,
            device=row.device,
            zone=row.zone,
            role=row.role,
        )


@router.post("/enroll", response_model=EnrolOut)
async def enrol_route(request: Request, _: Annotated[None, Depends(PUBLIC)], body: EnrolIn) -> EnrolOut:
    """Enrol with a one-time token: the certificate for the identity the token names."""
    throttle, source = throttle_of(request), client_address(request)
    try:
        throttle.check(source)
    except EnrolmentThrottled as error:
        retry = str(max(1, round(error.retry_after_seconds)))
        raise HTTPException(429, error.message, headers={"Retry-After": retry}) from None
    csr = est_wire.read_pem_csr(body.csr)
    try:
        issued = await run_in_threadpool(enrol, request, body.token, csr, "token")
    except EnrolmentRefused:
        throttle.failed(source)
        raise
    return EnrolOut(
        certificate=issued.certificate.public_bytes(Encoding.PEM).decode(),
        chain=b"".join(c.public_bytes(Encoding.PEM) for c in issued.chain).decode(),
        serial=issued.record.serial,
        fingerprint=issued.record.fingerprint,
        not_after=issued.record.not_after,
    )


def enrol(request: Request, token: str, csr: x509.CertificateSigningRequest, via: str) -> IssuedCertificate:
    """The token enrolment both the JSON API and EST's simpleenroll make (blocking: the store)."""
    ca = authority(request)
    with store_of(request).transaction() as session:
        return services.enrol_with_token(
            session, _context(None), audit_of(request), ca, token=token, csr=csr, via=via
        )


@router.get("/certificates", response_model=list[CertificateOut])
def certificates_route(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: Annotated[str | None, Query(max_length=63)] = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["valid", "revoked", "superseded"] | None = None,
) -> list[CertificateOut]:
    """Certificates of the caller's sites (and zones), filtered by site, device and status."""
    with store_of(request).transaction() as session:
        rows = services.list_certificates(session, site=site, device=device, status=status)
        return [CertificateOut.of(row) for row in rows if actor.may_see(row.site, row.zone)]


@router.get("/certificates/{serial}", response_model=CertificateDetail)
def certificate_route(
    request: Request, actor: Annotated[Actor, Depends(READ)], serial: str
) -> CertificateDetail:
    """One certificate, with its PEM."""
    with store_of(request).transaction() as session:
        row = _visible(actor, services.get_certificate(session, serial))
        return CertificateDetail.model_validate(row, from_attributes=True)


@router.post("/certificates/{serial}/revoke", response_model=CertificateOut)
def revoke_route(
    request: Request, actor: Annotated[Actor, Depends(MANAGE)], serial: str, body: RevokeIn
) -> CertificateOut:
    """Revoke a certificate: it is in the next CRL, and running services drop it at once (event)."""
    ctx, audit = _context(actor), audit_of(request)
    with store_of(request).transaction() as session:  # one read: the visibility check sees the row revoked
        row = services.revoke(
            session, ctx, audit, serial=serial, reason=body.reason, check=partial(_visible, actor)
        )
        return CertificateOut.of(row)


@router.get("/crl", response_class=Response, responses={200: {"content": {PKIX_CRL: {}, PEM_FILE: {}}}})
def crl_route(
    request: Request,
    _: Annotated[None, Depends(PUBLIC)],
    format: Annotated[str, Query(max_length=10, description="der (the default) or pem")] = "der",  # noqa: A002
) -> Response:
    """The CRL of the issuing CA (DER, or PEM with ?format=pem); public, signed, valid one day."""
    if format not in ("der", "pem"):  # (checked here, not as a Literal, to say what to ask for)
        raise InvalidInput(f"format {format!r}: ask for der (the default) or pem")
    ca = authority(request)
    with store_of(request).transaction() as session:
        if format == "pem":
            return Response(services.crl_pem(session, ca), media_type=PEM_FILE)
        return Response(services.crl(session, ca), media_type=PKIX_CRL)


@router.get("/cacerts", response_class=Response, responses={200: {"content": {PEM_CHAIN: {}}}})
def cacerts_route(request: Request, _: Annotated[None, Depends(PUBLIC)]) -> Response:
    """The CA chain (issuing CA, then root) in PEM: what a device trusts."""
    return Response(authority(request).chain_pem(), media_type=PEM_CHAIN)
