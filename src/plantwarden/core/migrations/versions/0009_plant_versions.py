"""Applied plant models: every plant.yaml applied, with its hash, who applied it and when.

Revision ID: 0009_plant_versions
Revises: 0008_inventory
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_plant_versions"
down_revision = "0008_inventory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plant_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("previous", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plant_versions"),
    )
    op.create_index("ix_plant_versions_version", "plant_versions", ["version"])
    op.create_index("ix_plant_versions_applied_at", "plant_versions", ["applied_at"])


def downgrade() -> None:
    op.drop_index("ix_plant_versions_applied_at", "plant_versions")
    op.drop_index("ix_plant_versions_version", "plant_versions")
    op.drop_table("plant_versions")
