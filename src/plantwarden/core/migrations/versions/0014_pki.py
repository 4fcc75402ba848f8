"""PKI: the certificates the platform CA issued, one-time enrolment tokens, CRL numbers.

Revision ID: 0014_pki
Revises: 0013_process_models
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_pki"
down_revision = "0013_process_models"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pki_certificates",
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(63), nullable=False),
        sa.Column("role", sa.String(255), nullable=True),
        sa.Column("asset_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(400), nullable=False),
        _time("not_before"),
        _time("not_after"),
        sa.Column("status", sa.String(20), nullable=False),
        _time("revoked_at", nullable=True),
        sa.Column("revocation_reason", sa.String(400), nullable=True),
        sa.Column("issued_via", sa.String(20), nullable=False),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("replaces", sa.String(64), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("serial", name="pk_pki_certificates"),
    )
    op.create_index("ix_pki_certificates_fingerprint", "pki_certificates", ["fingerprint"], unique=True)
    op.create_index("ix_pki_certificates_site_device", "pki_certificates", ["site", "device"])
    op.create_index("ix_pki_certificates_asset_id", "pki_certificates", ["asset_id"])
    op.create_index("ix_pki_certificates_not_after", "pki_certificates", ["not_after"])
    op.create_index("ix_pki_certificates_status", "pki_certificates", ["status"])
    op.create_table(
        "pki_enrolment_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(63), nullable=False),
        sa.Column("role", sa.String(255), nullable=True),
        sa.Column("asset_id", sa.Uuid(), nullable=True),
        _time("expires_at"),
        _time("used_at", nullable=True),
        sa.Column("used_serial", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_pki_enrolment_tokens"),
    )
    op.create_index("ix_pki_enrolment_tokens_token_hash", "pki_enrolment_tokens", ["token_hash"], unique=True)
    op.create_table(
        "pki_state",
        sa.Column("ca", sa.String(64), nullable=False),
        sa.Column("crl_number", sa.BigInteger(), nullable=False),
        sa.Column("revoked_digest", sa.String(64), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("ca", name="pk_pki_state"),
    )


def downgrade() -> None:
    op.drop_table("pki_state")
    op.drop_index("ix_pki_enrolment_tokens_token_hash", table_name="pki_enrolment_tokens")
    op.drop_table("pki_enrolment_tokens")
    for name in ("status", "not_after", "asset_id", "site_device", "fingerprint"):
        op.drop_index(f"ix_pki_certificates_{name}", table_name="pki_certificates")
    op.drop_table("pki_certificates")
