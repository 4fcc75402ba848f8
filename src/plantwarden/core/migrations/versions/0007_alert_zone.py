"""Alerts carry the zone of the asset they concern, so that zone-scoped roles see only theirs.

Revision ID: 0007_alert_zone
Revises: 0006_accounts
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_alert_zone"
down_revision = "0006_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("zone", sa.String(63), nullable=True))
        batch.create_index("ix_alerts_zone", ["zone"])


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_zone")
        batch.drop_column("zone")
