"""Alerts carry what an analyst needs: confidence, a verdict when closed, an assignee, why the
severity is what it is (maintenance windows), whether a suppression or the rate limit caught them;
and suppressions, which keep matching alerts out of the default lists for a time.

Revision ID: 0010_alert_triage
Revises: 0009_plant_versions
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_alert_triage"
down_revision = "0009_plant_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("confidence", sa.String(10), nullable=False, server_default="medium"))
        batch.add_column(sa.Column("verdict", sa.String(20), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(120), nullable=True))
        batch.add_column(sa.Column("severity_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("suppressed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("suppression_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("rate_limited", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_alerts_verdict", ["verdict"])
        batch.create_index("ix_alerts_assignee", ["assignee"])
        batch.create_index("ix_alerts_suppressed", ["suppressed"])
    op.create_table(
        "alert_suppressions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("rule_id", sa.String(120), nullable=False),
        sa.Column("site", sa.String(63), nullable=True),
        sa.Column("asset", sa.String(63), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_suppressions_rule_id", "alert_suppressions", ["rule_id"])
    op.create_index("ix_alert_suppressions_until", "alert_suppressions", ["until"])


def downgrade() -> None:
    op.drop_index("ix_alert_suppressions_until", "alert_suppressions")
    op.drop_index("ix_alert_suppressions_rule_id", "alert_suppressions")
    op.drop_table("alert_suppressions")
    with op.batch_alter_table("alerts") as batch:
        for index in ("ix_alerts_suppressed", "ix_alerts_assignee", "ix_alerts_verdict"):
            batch.drop_index(index)
        for column in ("rate_limited", "suppression_id", "suppressed", "severity_reason"):
            batch.drop_column(column)
        for column in ("assignee", "verdict", "confidence"):
            batch.drop_column(column)
