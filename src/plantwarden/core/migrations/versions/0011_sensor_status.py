"""Sensor health: each sensor's last heartbeat, packets read and lost, and its clocks.

Revision ID: 0011_sensor_status
Revises: 0010_alert_triage
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_sensor_status"
down_revision = "0010_alert_triage"
branch_labels = None
depends_on = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sensor_status",
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("segment", sa.String(63), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        _time("started_at"),
        _time("reported_at"),
        _time("received_at"),
        _time("last_packet_at", nullable=True),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("dropped_reported", sa.BigInteger(), nullable=False),
        sa.Column("clock_skew_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site", "segment", "name", name="pk_sensor_status"),
    )


def downgrade() -> None:
    op.drop_table("sensor_status")
