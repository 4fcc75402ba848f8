"""Alerts: the one alert entity every detector raises.

Revision ID: 0004_alerts
Revises: 0003_event_log
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_alerts"
down_revision = "0003_event_log"
branch_labels = None
depends_on = None

INDEXED = ("site", "severity", "status", "rule_id", "dedup_key", "first_seen")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detector", sa.String(120), nullable=False),
        sa.Column("rule_id", sa.String(120), nullable=False),
        sa.Column("rule_name", sa.String(300), nullable=False),
        sa.Column("techniques", sa.JSON(), nullable=False),
        sa.Column("assets", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(300), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=False),
        sa.Column("status_by", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    for column in INDEXED:
        op.create_index(f"ix_alerts_{column}", "alerts", [column])


def downgrade() -> None:
    for column in INDEXED:
        op.drop_index(f"ix_alerts_{column}", "alerts")
    op.drop_table("alerts")
