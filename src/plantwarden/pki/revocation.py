"""Revocation: a revoked certificate is announced by an event in the same transaction (running
services refuse it from then on), and listed in the CRL the issuing CA signs. The CRL number
grows whenever the set of revoked serials changes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import sqlite_write_lock
from plantwarden.core.events import envelope
from plantwarden.core.parsing import one_line
from plantwarden.pki.auditing import audit_action
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.errors import CertificateNotFound, CertificateStateConflict
from plantwarden.pki.events import CertificateRevoked
from plantwarden.pki.models import REVOKED, CertificateRecord, PkiState
from plantwarden.pki.queries import normalise_serial

# How long a CRL is valid (its nextUpdate is thisUpdate + this). Whoever serves the CRL from a
# file (Mosquitto's crlfile, a gateway) must refresh it within this time, or verifiers that check
# nextUpdate refuse every client; docs/pki.md says so (keep the two in step).
CRL_VALIDITY = timedelta(days=1)
# RFC 5280 reason codes a revocation reason may name (case and separators do not matter)
_REASONS = {flag.name.replace("_", ""): flag for flag in x509.ReasonFlags if flag.name != "remove_from_crl"}


def revoke(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    *,
    serial: str,
    reason: str,
    check: Callable[[CertificateRecord], object] | None = None,
) -> CertificateRecord:
    """Revoke one certificate (valid or superseded): its status, the `pki.CertificateRevoked`
    event and the audit entry, all in the caller's transaction. The certificate is read once and
    held to the end of it (the row locked; on SQLite the store's write lock, taken before the
    read), so that `check`, the caller's condition (its site, the actor's grants; it raises to
    refuse), and the revocation see the same row, and no other change comes in between."""
    why = revocation_reason(reason)
    sqlite_write_lock(session, CertificateRecord.__tablename__, "status")
    # populate_existing: the row as locked, even when the session read it before
    record = session.get(
        CertificateRecord, normalise_serial(serial), with_for_update=True, populate_existing=True
    )
    if record is None:
        raise CertificateNotFound(f"no certificate with serial {serial} (plantwarden pki list)")
    if check is not None:
        check(record)
    if record.status == REVOKED:
        raise CertificateStateConflict(
            f"certificate {record.serial} was already revoked ({record.revocation_reason})"
        )
    record.status, record.revoked_at, record.revocation_reason = (
        REVOKED,
        ctx.clock.now(),
        why,
    )
    session.flush()
    payload = CertificateRevoked(
        record.serial, record.fingerprint, record.site, record.device, record.revocation_reason
    )
    eventlog.record(
        session,
        envelope(
            payload,
            clock=ctx.clock,
            source=ctx.source,
            site=record.site,
            idempotency_key=f"pki-revoked:{record.serial}",
        ),
        clock=ctx.clock,
    )
    details = {"serial": record.serial, "fingerprint": record.fingerprint, "device": record.device,
               "reason": record.revocation_reason}  # fmt: skip
    audit_action(
        session,
        ctx,
        audit,
        "pki.certificate.revoked",
        site=record.site,
        target=record.serial,
        details=details,
    )
    return record


REASON_LENGTH = 400
"""The longest revocation reason (the store's column, and the API's limit)."""


def revocation_reason(reason: str) -> str:
    """A revocation reason without spaces at its ends, or `InvalidInput`: one cut to fit its column
    would lose its end unseen, and a line break or a control character would break the lines of
    `pki show` and of the error a second revocation answers with."""
    return one_line(
        reason, "the revocation reason", REASON_LENGTH, empty="say why the certificate is revoked (--reason)"
    )


def revoke_device(
    session: Session, ctx: Context, audit: AuditLog | None, *, site: str, device: str, reason: str
) -> list[CertificateRecord]:
    """Revoke every certificate of a device that is not revoked yet (a superseded one is still
    usable until it expires, so it goes too)."""
    sqlite_write_lock(session, CertificateRecord.__tablename__, "status")  # held from the list to the end
    serials = session.scalars(
        select(CertificateRecord.serial).where(
            CertificateRecord.site == site,
            CertificateRecord.device == device,
            CertificateRecord.status != REVOKED,
        )
    ).all()
    if not serials:
        raise CertificateNotFound(f"device {device} of site {site} has no certificate left to revoke")
    return [revoke(session, ctx, audit, serial=serial, reason=reason) for serial in serials]


def crl(session: Session, ca: CertificateAuthority, *, clock: Clock | None = None) -> bytes:
    """The DER CRL of the issuing CA: every revoked serial, valid one day."""
    now = (clock or SystemClock()).now()
    revoked = list(
        session.scalars(
            select(CertificateRecord)
            .where(CertificateRecord.status == REVOKED)
            .order_by(CertificateRecord.serial)
        )
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.issuing.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(_crl_number(session, ca, revoked, now)), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
    )
    for record in revoked:
        builder = builder.add_revoked_certificate(_entry(record, now))
    return builder.sign(ca.issuing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def crl_pem(session: Session, ca: CertificateAuthority, *, clock: Clock | None = None) -> bytes:
    """`crl` in PEM."""
    der = crl(session, ca, clock=clock)
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)


def _entry(record: CertificateRecord, now: datetime) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(int(record.serial, 16))
        .revocation_date(record.revoked_at or now)
    )
    flag = reason_flag(record.revocation_reason or "")
    if flag is not None:
        builder = builder.add_extension(x509.CRLReason(flag), critical=False)
    return builder.build()


def reason_flag(reason: str) -> x509.ReasonFlags | None:
    """The RFC 5280 reason code a free-text reason names (`keyCompromise`, `superseded` ...), if any."""
    word = "".join(c for c in reason.split(":")[0].lower() if c.isalpha())
    return _REASONS.get(word)


def _authority_key_id(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    ski = ca.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _crl_number(
    session: Session, ca: CertificateAuthority, revoked: list[CertificateRecord], now: datetime
) -> int:
    """The CRL number: the stored one, plus one when the revoked set changed since it was issued."""
    ca_id = hashlib.sha256(
        ca.issuing.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).hexdigest()
    digest = hashlib.sha256(",".join(r.serial for r in revoked).encode()).hexdigest()
    state = session.get(PkiState, ca_id, with_for_update=True)
    if state is None:
        session.add(PkiState(ca=ca_id, crl_number=1, revoked_digest=digest, updated_at=now))
        session.flush()
        return 1
    if state.revoked_digest != digest:
        state.crl_number, state.revoked_digest, state.updated_at = state.crl_number + 1, digest, now
        session.flush()
    return state.crl_number
