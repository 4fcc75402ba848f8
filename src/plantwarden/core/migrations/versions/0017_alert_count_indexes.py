"""Covering indexes for the overview's alert counts: open alerts per severity and status, and
alerts first seen per hour, each read from an index alone. Equality columns lead (status,
suppressed), so that SQLite chooses these over the one-column indexes even without statistics
(the store is never ANALYZEd). Measured on 100,000 alerts in such an SQLite store, every one
first seen in the last day: the open counts from 50-80 ms to 10-25 ms, the day's hourly counts
from 130-160 ms to 50-65 ms.

Revision ID: 0017_alert_count_indexes
Revises: 0016_quarantine
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0017_alert_count_indexes"
down_revision = "0016_quarantine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_open_counts", "alerts", ["status", "suppressed", "severity", "site", "zone"])
    op.create_index(
        "ix_alerts_first_seen_counts", "alerts", ["suppressed", "first_seen", "severity", "site", "zone"]
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_first_seen_counts", table_name="alerts")
    op.drop_index("ix_alerts_open_counts", table_name="alerts")
