"""Tables of the PKI: every certificate issued (the certificate inventory, linked to assets),
one-time enrolment tokens (only their hash), and the CRL number of each issuing CA."""

from __future__ import annotations

import uuid
from datetime import datetime

from cryptography import x509
from sqlalchemy import BigInteger, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from plantwarden.core.db import Base, UTCDateTime

VALID, REVOKED, SUPERSEDED = "valid", "revoked", "superseded"
ISSUED_VIA = ("token", "est", "cli", "renewal")


class CertificateRecord(Base):
    """A certificate the platform CA issued. `status`: `valid`, `revoked`, or `superseded` (renewed:
    still usable until it expires, so that the device can switch over); `replaces` names the
    certificate a renewal replaced."""

    __tablename__ = "pki_certificates"
    __table_args__ = (Index("ix_pki_certificates_site_device", "site", "device"),)

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    site: Mapped[str] = mapped_column(String(63))
    device: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(63))
    role: Mapped[str | None] = mapped_column(String(255), nullable=True)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    subject: Mapped[str] = mapped_column(String(400))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(400), nullable=True)
    issued_via: Mapped[str] = mapped_column(String(20))
    issued_by: Mapped[str] = mapped_column(String(200))
    pem: Mapped[str] = mapped_column(Text)
    replaces: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def certificate(self) -> x509.Certificate:
        """The certificate itself, parsed from the stored PEM."""
        return x509.load_pem_x509_certificate(self.pem.encode())

    @property
    def fingerprint_bytes(self) -> bytes:
        return bytes.fromhex(self.fingerprint)


class EnrolmentToken(Base):
    """A one-time enrolment token: the identity a device enrols as, and the SHA-256 of the secret
    (the secret itself is shown once and never stored)."""

    __tablename__ = "pki_enrolment_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    site: Mapped[str] = mapped_column(String(63))
    device: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(63))
    role: Mapped[str | None] = mapped_column(String(255), nullable=True)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    used_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PkiState(Base):
    """Per issuing CA (by its key's SHA-256): the number of the latest CRL and a digest of the
    revoked serials it listed, so that the number grows exactly when the set changes."""

    __tablename__ = "pki_state"

    ca: Mapped[str] = mapped_column(String(64), primary_key=True)
    crl_number: Mapped[int] = mapped_column(BigInteger)
    revoked_digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
