"""One-time enrolment tokens: an operator creates one for a device's identity (the secret is
shown once; only its SHA-256 is kept), the device presents it with its CSR, once, before it
expires. Every refusal is in the audit log as `pki.enrolment_refused`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context
from plantwarden.core.errors import InvalidInput
from plantwarden.core.ids import new_id
from plantwarden.pki.auditing import audit_action, audit_refusal
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import DeviceIdentity, check_csr
from plantwarden.pki.errors import EnrolmentRefused, InvalidRequest
from plantwarden.pki.issuing import IssuedCertificate, issue
from plantwarden.pki.models import EnrolmentToken

DEFAULT_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_TTL = timedelta(days=30)
TOKEN_BYTES = 24  # 192 bits of secret


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    *,
    identity: DeviceIdentity,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
) -> str:
    """A new one-time token for `identity`, valid for `ttl`; the secret is returned once."""
    if not timedelta(0) < ttl <= MAX_TOKEN_TTL:
        raise InvalidInput(f"a token's lifetime must be positive and at most {MAX_TOKEN_TTL.days} days")
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    now = ctx.clock.now()
    row = EnrolmentToken(
        id=new_id(),
        token_hash=token_hash(secret),
        site=identity.site,
        device=identity.device,
        zone=identity.zone,
        role=identity.role,
        asset_id=identity.asset_id,
        expires_at=now + ttl,
        created_by=ctx.actor or ctx.source,
        created_at=now,
    )
    session.add(row)
    session.flush()
    details = {
        "token_id": str(row.id),
        "device": identity.device,
        "zone": identity.zone,
        "role": identity.role,
        "expires_at": row.expires_at.isoformat(),
    }
    audit_action(
        session, ctx, audit, "pki.token.created", site=identity.site, target=identity.device, details=details
    )
    return secret


def enrol_with_token(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    ca: CertificateAuthority,
    *,
    token: str,
    csr: x509.CertificateSigningRequest,
    via: str = "token",
) -> IssuedCertificate:
    """Issue a certificate for the identity the token names; the token is used up. An unknown,
    expired or used token is `EnrolmentRefused`; a bad CSR `InvalidRequest` (the token is kept).
    Call it in a transaction that has written nothing yet (a refusal is audited on its own)."""
    row = _find(session, token)
    now = ctx.clock.now()
    reason = None
    if row is None:
        reason = "the enrolment token is unknown"
    elif row.used_at is not None:
        used = f"at {row.used_at.isoformat()}, certificate {row.used_serial}"
        reason = f"the enrolment token was already used ({used})"
    elif now >= row.expires_at:
        reason = f"the enrolment token expired at {row.expires_at.isoformat()}: ask for a new one"
    else:
        try:
            check_csr(csr)
        except InvalidRequest as error:
            reason = error.message
            _refuse(session, ctx, audit, row, reason, via)
            raise
    if reason is not None or row is None:
        _refuse(session, ctx, audit, row, reason or "", via)
        raise EnrolmentRefused(reason or "the enrolment token is unknown")
    identity = DeviceIdentity(row.site, row.device, row.zone, row.role, row.asset_id)
    issued = issue(session, ctx, audit, ca, identity=identity, csr=csr, via=via, issued_by=f"token:{row.id}")
    row.used_at, row.used_serial = now, issued.record.serial
    session.flush()
    return issued


def _find(session: Session, token: str) -> EnrolmentToken | None:
    """The token's row (locked against a concurrent use), compared in constant time."""
    if not token or len(token) > 200:
        return None
    wanted = token_hash(token)
    row = session.scalars(
        select(EnrolmentToken).where(EnrolmentToken.token_hash == wanted).with_for_update()
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    return row


def _refuse(
    session: Session, ctx: Context, audit: AuditLog | None, row: EnrolmentToken | None, reason: str, via: str
) -> None:
    details = {"reason": reason, "via": via, "token_id": str(row.id) if row is not None else None}
    audit_refusal(
        session,
        ctx,
        audit,
        "pki.enrolment_refused",
        site=row.site if row is not None else None,
        target=row.device if row is not None else "unknown token",
        details=details,
    )


def tokens(session: Session, *, site: str | None = None, unused_only: bool = False) -> list[EnrolmentToken]:
    """Tokens, newest first (never their secret)."""
    statement = select(EnrolmentToken).order_by(EnrolmentToken.created_at.desc())
    if site is not None:
        statement = statement.where(EnrolmentToken.site == site)
    if unused_only:
        statement = statement.where(EnrolmentToken.used_at.is_(None))
    return list(session.scalars(statement))
