"""The stored asset inventory: assets, communication edges, per-function request statistics.

Revision ID: 0008_inventory
Revises: 0007_alert_zone
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_inventory"
down_revision = "0007_alert_zone"
branch_labels = None
depends_on = None

ASSET_INDEXED = ("site", "segment", "role", "first_seen", "last_seen", "zone")
EDGE_INDEXED = ("site", "client_asset_id", "server_asset_id", "protocol", "last_seen")


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("segment", sa.String(63), nullable=False),
        sa.Column("ips", sa.JSON(), nullable=False),
        sa.Column("past_ips", sa.JSON(), nullable=False),
        sa.Column("macs", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(40), nullable=True),
        sa.Column("role_confidence", sa.Float(), nullable=True),
        sa.Column("role_evidence", sa.JSON(), nullable=False),
        sa.Column("client_protocols", sa.JSON(), nullable=False),
        sa.Column("server_protocols", sa.JSON(), nullable=False),
        _time("first_seen"),
        _time("last_seen"),
        sa.Column("zone", sa.String(63), nullable=True),
        sa.Column("known", sa.Boolean(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_assets"),
    )
    for column in ASSET_INDEXED:
        op.create_index(f"ix_assets_{column}", "assets", [column])
    op.create_table(
        "communication_edges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("segment", sa.String(63), nullable=False),
        sa.Column("client", sa.String(45), nullable=False),
        sa.Column("server", sa.String(45), nullable=False),
        sa.Column("client_asset_id", sa.Uuid(), nullable=True),
        sa.Column("server_asset_id", sa.Uuid(), nullable=True),
        sa.Column("protocol", sa.String(20), nullable=False),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("flows", sa.BigInteger(), nullable=False),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        _time("first_seen"),
        _time("last_seen"),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_communication_edges"),
        sa.UniqueConstraint("site", "segment", "client", "server", "protocol", name="uq_edge_key"),
    )
    for column in EDGE_INDEXED:
        op.create_index(f"ix_communication_edges_{column}", "communication_edges", [column])
    op.create_table(
        "function_statistics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("edge_id", sa.Uuid(), nullable=False),
        sa.Column("function", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("detailed", sa.BigInteger(), nullable=False),
        sa.Column("unanswered", sa.BigInteger(), nullable=False),
        sa.Column("one_way", sa.BigInteger(), nullable=False),
        sa.Column("exceptions", sa.BigInteger(), nullable=False),
        sa.Column("aggregated_errors", sa.BigInteger(), nullable=False),
        sa.Column("responses", sa.BigInteger(), nullable=False),
        sa.Column("response_median_ns", sa.BigInteger(), nullable=True),
        sa.Column("response_p95_ns", sa.BigInteger(), nullable=True),
        sa.Column("period_ns", sa.BigInteger(), nullable=True),
        sa.Column("intervals", sa.Float(), nullable=False),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["edge_id"],
            ["communication_edges.id"],
            name="fk_function_statistics_edge_id_communication_edges",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_function_statistics"),
        sa.UniqueConstraint("edge_id", "function", name="uq_function_statistics_key"),
    )
    op.create_index("ix_function_statistics_edge_id", "function_statistics", ["edge_id"])


def downgrade() -> None:
    op.drop_index("ix_function_statistics_edge_id", "function_statistics")
    op.drop_table("function_statistics")
    for column in EDGE_INDEXED:
        op.drop_index(f"ix_communication_edges_{column}", "communication_edges")
    op.drop_table("communication_edges")
    for column in ASSET_INDEXED:
        op.drop_index(f"ix_assets_{column}", "assets")
    op.drop_table("assets")
