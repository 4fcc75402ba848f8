"""The certificate inventory, read side: a certificate by fingerprint (what the telemetry ingest
asks for each device key, on an indexed column), its status at a time, listings."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core.errors import InvalidInput
from plantwarden.pki.errors import CertificateNotFound
from plantwarden.pki.models import REVOKED, SUPERSEDED, VALID, CertificateRecord

STATUSES = (VALID, REVOKED, SUPERSEDED)


class CertificateStatus(enum.StrEnum):
    """Whether a certificate may be relied on at a given time."""

    VALID = "valid"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN = "unknown"


def normalise_serial(serial: str) -> str:
    """A serial as stored: lower-case hex without leading zeros (accepts `0x`, colons, spaces)."""
    text = serial.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        return format(int(text, 16), "x")
    except ValueError:
        raise InvalidInput(f"{serial!r} is not a certificate serial number (hex)") from None


def certificate_by_fingerprint(session: Session, fingerprint: bytes) -> CertificateRecord | None:
    """The certificate whose DER has this SHA-256 (32 bytes), if we issued it."""
    return session.scalars(
        select(CertificateRecord).where(CertificateRecord.fingerprint == fingerprint.hex())
    ).first()


def status_of(record: CertificateRecord | None, at: datetime) -> CertificateStatus:
    """The status of a stored certificate at `at` (a superseded one is valid until it expires)."""
    if record is None:
        return CertificateStatus.UNKNOWN
    if record.status == REVOKED:
        return CertificateStatus.REVOKED
    if at < record.not_before:
        return CertificateStatus.NOT_YET_VALID
    if at >= record.not_after:
        return CertificateStatus.EXPIRED
    return CertificateStatus.VALID


def status(session: Session, fingerprint: bytes, at: datetime) -> CertificateStatus:
    """The status at `at` of the certificate with this SHA-256 fingerprint."""
    return status_of(certificate_by_fingerprint(session, fingerprint), at)


def get_certificate(session: Session, serial: str) -> CertificateRecord:
    record = session.get(CertificateRecord, normalise_serial(serial))
    if record is None:
        raise CertificateNotFound(f"no certificate with serial {serial} (plantwarden pki list)")
    return record


def list_certificates(
    session: Session, *, site: str | None = None, device: str | None = None, status: str | None = None
) -> list[CertificateRecord]:
    """Certificates by site, device and issue time; `status` one of valid, revoked, superseded."""
    statement = select(CertificateRecord).order_by(
        CertificateRecord.site,
        CertificateRecord.device,
        CertificateRecord.not_before,
        CertificateRecord.serial,
    )
    if site is not None:
        statement = statement.where(CertificateRecord.site == site)
    if device is not None:
        statement = statement.where(CertificateRecord.device == device)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status {status!r}: expected one of {', '.join(STATUSES)}")
        statement = statement.where(CertificateRecord.status == status)
    return list(session.scalars(statement))
