"""Process models: each device's trained model of its telemetry, per site.

Revision ID: 0013_process_models
Revises: 0012_baselines
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_process_models"
down_revision = "0012_baselines"
branch_labels = None
depends_on = None


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "process_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("step_ns", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        _time("trained_from"),
        _time("trained_until"),
        sa.Column("model", sa.JSON(), nullable=False),
        _time("created_at"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_process_models"),
        sa.UniqueConstraint("site", "device", name="uq_process_models_site_device"),
    )
    op.create_index("ix_process_models_site", "process_models", ["site"])


def downgrade() -> None:
    op.drop_index("ix_process_models_site", table_name="process_models")
    op.drop_table("process_models")
