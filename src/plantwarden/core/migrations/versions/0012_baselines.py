"""Learned baselines: scopes (learning, protecting) per site, and their facts.

Revision ID: 0012_baselines
Revises: 0011_sensor_status
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_baselines"
down_revision = "0011_sensor_status"
branch_labels = None
depends_on = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "baseline_scopes",
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        _time("learning_started"),
        _time("learning_ends"),
        _time("protected_at", nullable=True),
        sa.Column("facts", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("site", "scope", name="pk_baseline_scopes"),
    )
    op.create_table(
        "baseline_facts",
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("conduit", sa.String(200), nullable=True),
        sa.Column("value", sa.JSON(), nullable=False),
        _time("first_seen"),
        _time("last_seen"),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("accepted_by", sa.String(120), nullable=True),
        _time("accepted_at", nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("site", "kind", "key", name="pk_baseline_facts"),
    )
    op.create_index("ix_baseline_facts_site_scope", "baseline_facts", ["site", "scope"])


def downgrade() -> None:
    op.drop_index("ix_baseline_facts_site_scope", table_name="baseline_facts")
    op.drop_table("baseline_facts")
    op.drop_table("baseline_scopes")
