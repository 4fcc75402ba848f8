"""The event log: outbox, consumer cursors and the consumers' inbox.

Revision ID: 0003_event_log
Revises: 0002_network_segments
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_event_log"
down_revision = "0002_network_segments"
branch_labels = None
depends_on = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("position", POSITION, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(120), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(63), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_event_log"),
        sa.UniqueConstraint("id", name="uq_event_log_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_event_log_idempotency_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_log_type", "event_log", ["type"])
    op.create_index("ix_event_log_site", "event_log", ["site"])
    op.create_table(
        "event_consumers",
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_event_consumers"),
    )
    op.create_table(
        "event_inbox",
        sa.Column("consumer", sa.String(120), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_event_inbox"),
    )


def downgrade() -> None:
    op.drop_table("event_inbox")
    op.drop_table("event_consumers")
    op.drop_index("ix_event_log_site", "event_log")
    op.drop_index("ix_event_log_type", "event_log")
    op.drop_table("event_log")
