"""A role is granted once per user, site and zone, site-wide grants (zone NULL) included.

The unique constraint of 0006 on (user_id, role, site, zone) never compared site-wide grants:
PostgreSQL and SQLite both hold NULLs distinct in a UNIQUE, so two concurrent grants of the same
site-wide role both went in (the services' check sees neither before it commits). A partial
unique index on (user_id, role, site) WHERE zone IS NULL covers them on both databases; the
constraint stays for zone grants. (A unique index on COALESCE(zone, '') would do both at once,
but SQLAlchemy cannot reflect an expression index on SQLite, so the metadata could not be
compared with the migrations there; a partial index it reflects on both.)

Existing duplicates are merged first: the oldest row of each group stays (its id, `granted_by`
and `created_at`), with the longest validity of the group (none when one of them had none), so
nobody loses a right they held. Nothing refers to a grant's row (no foreign key, no event joins
it), so removing the others loses nothing but the rows; their `RoleGranted` events stay in the
log.

Revision ID: 0020_role_grant_once
Revises: 0019_baseline_fact_counts
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020_role_grant_once"
down_revision = "0019_baseline_fact_counts"
branch_labels = None
depends_on = None

INDEX = "uq_role_grants_site_wide"

grants = sa.table(
    "role_grants",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("role", sa.String(64)),
    sa.column("site", sa.String(63)),
    sa.column("zone", sa.String(63)),
    sa.column("valid_until", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    _merge_duplicates(op.get_bind())
    site_wide = sa.text("zone IS NULL")
    op.create_index(
        INDEX,
        "role_grants",
        ["user_id", "role", "site"],
        unique=True,
        sqlite_where=site_wide,
        postgresql_where=site_wide,
    )


def downgrade() -> None:
    op.drop_index(INDEX, "role_grants")


def _merge_duplicates(bind: sa.Connection) -> None:
    """Keep the oldest grant of each (user, role, site, zone) with the group's longest validity."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    ordered = sa.select(grants).order_by(grants.c.created_at, grants.c.id)
    for row in bind.execute(ordered):
        groups[(row.user_id, row.role, row.site, row.zone or "")].append(row)
    for rows in groups.values():
        if len(rows) < 2:
            continue
        kept, others = rows[0], rows[1:]
        longest = _longest([row.valid_until for row in rows])
        if longest != kept.valid_until:
            bind.execute(sa.update(grants).where(grants.c.id == kept.id).values(valid_until=longest))
        bind.execute(sa.delete(grants).where(grants.c.id.in_([row.id for row in others])))


def _longest(ends: list[datetime | None]) -> datetime | None:
    """None (no end) when any grant has none, else the latest end."""
    if any(end is None for end in ends):
        return None
    return max(end for end in ends if end is not None)
