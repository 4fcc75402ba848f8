"""The quarantine list of incident response: one row per site and target (subject or asset).

Revision ID: 0016_quarantine
Revises: 0015_device_telemetry
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_quarantine"
down_revision = "0015_device_telemetry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine_entries",
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("quarantined_by", sa.String(120), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(120), nullable=True),
        sa.Column("release_reason", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("site", "kind", "target", name="pk_quarantine_entries"),
    )


def downgrade() -> None:
    op.drop_table("quarantine_entries")
