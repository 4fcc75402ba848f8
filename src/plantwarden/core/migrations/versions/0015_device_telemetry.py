"""End-to-end device telemetry: replay windows and refusal counts per site and device.

Revision ID: 0015_device_telemetry
Revises: 0014_pki
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_device_telemetry"
down_revision = "0014_pki"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_telemetry_windows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("replays", sa.BigInteger(), nullable=False),
        sa.Column("enrolment", sa.String(64), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_telemetry_windows"),
        sa.UniqueConstraint("site", "device", name="uq_device_telemetry_windows_site_device"),
    )
    op.create_index("ix_device_telemetry_windows_site", "device_telemetry_windows", ["site"])
    op.create_table(
        "device_telemetry_refusals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_detail", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_telemetry_refusals"),
        sa.UniqueConstraint(
            "site", "device", "reason", name="uq_device_telemetry_refusals_site_device_reason"
        ),
    )
    op.create_index("ix_device_telemetry_refusals_site", "device_telemetry_refusals", ["site"])


def downgrade() -> None:
    op.drop_index("ix_device_telemetry_refusals_site", table_name="device_telemetry_refusals")
    op.drop_table("device_telemetry_refusals")
    op.drop_index("ix_device_telemetry_windows_site", table_name="device_telemetry_windows")
    op.drop_table("device_telemetry_windows")
