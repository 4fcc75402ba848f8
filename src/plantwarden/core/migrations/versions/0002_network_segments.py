"""Network segments: addresses are keyed by (site, segment), since plants reuse subnets.

Every existing site gets its `default` segment, as new sites do.

Revision ID: 0002_network_segments
Revises: 0001_sites
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_network_segments"
down_revision = "0001_sites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    segments = op.create_table(
        "network_segments",
        sa.Column("site_id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_network_segments_site_id_sites", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "name", name="pk_network_segments"),
    )
    sites = sa.table("sites", sa.column("id", sa.String), sa.column("created_at", sa.DateTime))
    connection = op.get_bind()
    rows = connection.execute(sa.select(sites.c.id, sites.c.created_at)).all()
    if rows:
        op.bulk_insert(
            segments,
            [
                {
                    "site_id": row.id,
                    "name": "default",
                    "description": "The site's network before it is divided into segments.",
                    "created_at": row.created_at,
                }
                for row in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("network_segments")
