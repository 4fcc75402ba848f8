"""Issuing and renewing device certificates, each kept in the certificate inventory (linked to
the inventory's asset of the device when one matches) and in the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.zoning_inputs import SELF_NAMES
from plantwarden.pki.auditing import audit_action
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import (
    DEFAULT_LIFETIME,
    DeviceIdentity,
    check_csr,
    device_certificate,
    fingerprint,
    serial_text,
)
from plantwarden.pki.errors import CertificateStateConflict, EnrolmentRefused
from plantwarden.pki.models import ISSUED_VIA, REVOKED, SUPERSEDED, CertificateRecord


@dataclass(frozen=True)
class IssuedCertificate:
    """A new certificate, the chain above it (issuing CA, root) and its inventory record."""

    certificate: x509.Certificate
    chain: list[x509.Certificate]
    record: CertificateRecord


def issue(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    ca: CertificateAuthority,
    *,
    identity: DeviceIdentity,
    csr: x509.CertificateSigningRequest,
    via: str = "cli",
    lifetime: timedelta | None = None,
    replaces: str | None = None,
    issued_by: str | None = None,
) -> IssuedCertificate:
    """Sign the CSR's key for `identity` (the CSR's own subject is ignored: the identity comes from
    the operator, the token or the certificate renewed) and record the certificate."""
    if via not in ISSUED_VIA:
        raise ValueError(f"issued via {via!r}: expected one of {', '.join(ISSUED_VIA)}")
    key = check_csr(csr)
    if identity.asset_id is None:
        identity = replace(identity, asset_id=matching_asset(session, identity.site, identity.device))
    now = ctx.clock.now()
    certificate = device_certificate(
        identity,
        key,
        issuer=ca.issuing,
        issuer_key=ca.issuing_key,
        now=now,
        lifetime=lifetime or DEFAULT_LIFETIME,
    )
    record = CertificateRecord(
        serial=serial_text(certificate),
        fingerprint=fingerprint(certificate).hex(),
        site=identity.site,
        device=identity.device,
        zone=identity.zone,
        role=identity.role,
        asset_id=identity.asset_id,
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        status="valid",
        issued_via=via,
        issued_by=issued_by or ctx.actor or ctx.source,
        pem=certificate.public_bytes(Encoding.PEM).decode(),
        replaces=replaces,
        created_at=now,
    )
    session.add(record)
    session.flush()
    details = {
        "serial": record.serial,
        "fingerprint": record.fingerprint,
        "device": identity.device,
        "zone": identity.zone,
        "role": identity.role,
        "via": via,
        "not_after": record.not_after.isoformat(),
    }
    if replaces is not None:
        details["replaces"] = replaces
    audit_action(
        session,
        ctx,
        audit,
        "pki.certificate.issued",
        site=identity.site,
        target=record.serial,
        details=details,
    )
    return IssuedCertificate(certificate, ca.chain(), record)


def renew(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    ca: CertificateAuthority,
    *,
    current: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    lifetime: timedelta | None = None,
) -> IssuedCertificate:
    """Re-enrol (EST simplereenroll): `current` must be a certificate we issued, in force and
    neither revoked nor already renewed. The new certificate has the same identity (a new key is
    welcome); the current one becomes `superseded` and stays usable until it expires.

    The current certificate's row is locked (and re-read) before its status is checked: of two
    concurrent renewals of one certificate the second waits for the first, then finds it
    superseded and is refused, so a certificate never gets two valid successors. (SQLite
    serialises writing transactions anyway.)"""
    record = session.scalars(
        select(CertificateRecord)
        .where(CertificateRecord.fingerprint == fingerprint(current).hex())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if record is None:
        raise EnrolmentRefused("the certificate presented was not issued by this platform CA")
    now = ctx.clock.now()
    if record.status == REVOKED:
        raise EnrolmentRefused(f"certificate {record.serial} is revoked: enrol again with a new token")
    if not record.not_before <= now < record.not_after:
        raise EnrolmentRefused(f"certificate {record.serial} is not in force (valid {_span(record)})")
    if record.status == SUPERSEDED:
        newer = session.scalars(
            select(CertificateRecord.serial).where(CertificateRecord.replaces == record.serial)
        )
        raise CertificateStateConflict(
            f"certificate {record.serial} was already renewed (by {', '.join(newer) or 'another'});"
            " renew that one"
        )
    identity = DeviceIdentity(record.site, record.device, record.zone, record.role, record.asset_id)
    issued = issue(
        session,
        ctx,
        audit,
        ca,
        identity=identity,
        csr=csr,
        via="renewal",
        lifetime=lifetime,
        replaces=record.serial,
        issued_by=ctx.actor or f"{record.device}@{record.site}",
    )
    record.status = SUPERSEDED
    session.flush()
    return issued


def _span(record: CertificateRecord) -> str:
    return f"{record.not_before.isoformat()} to {record.not_after.isoformat()}"


def matching_asset(session: Session, site: str, device: str) -> uuid.UUID | None:
    """The inventory asset of `site` that names itself `device` (station name, system name,
    hostname ...; case-insensitive), when exactly one does."""
    wanted = device.casefold()
    rows = session.execute(select(StoredAsset.id, StoredAsset.facts).where(StoredAsset.site == site))
    found = [
        asset_id
        for asset_id, facts in rows
        if any(str((facts.get(name) or {}).get("value", "")).casefold() == wanted for name in SELF_NAMES)
    ]
    return found[0] if len(found) == 1 else None
