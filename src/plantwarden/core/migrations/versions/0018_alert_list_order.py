"""The alert lists read the newest alerts first among the shown (or the suppressed) ones: an index
in that order lets them stop after a page instead of sorting every alert (100,000 alerts: the
console's list query from 50 ms to under 1 ms on SQLite, `bench console`).

Revision ID: 0018_alert_list_order
Revises: 0017_alert_count_indexes
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0018_alert_list_order"
down_revision = "0017_alert_count_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_list_order", "alerts", ["suppressed", "last_seen", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_list_order", "alerts")
