"""The audit log: security-relevant actions in a keyed hash chain.

Revision ID: 0005_audit_log
Revises: 0004_alerts
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_log"
down_revision = "0004_alerts"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INDEXED = ("at", "actor", "action")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("action", sa.String(120), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("site", sa.String(63), nullable=True),
        sa.Column("target", sa.String(300), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        sa.UniqueConstraint("id", name="uq_audit_log_id"),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="ck_audit_log_outcome"),
    )
    for column in INDEXED:
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])


def downgrade() -> None:
    for column in INDEXED:
        op.drop_index(f"ix_audit_log_{column}", "audit_log")
    op.drop_table("audit_log")
