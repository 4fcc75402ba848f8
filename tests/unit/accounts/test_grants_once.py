"""A role is granted once per user, site and zone, site-wide grants (zone NULL) included: the
services answer GrantExists, the database refuses a second row even past their check (a
concurrent grant), and migration 0020 merges the duplicates an earlier store may hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from plantwarden.accounts import services
from plantwarden.accounts.errors import GrantExists
from plantwarden.accounts.models import RoleGrant, User
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.ids import new_id
from tests.unit.accounts.conftest import GOOD_PASSWORD

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _row(user_id: object, zone: str | None, created: datetime, until: datetime | None = None) -> RoleGrant:
    return RoleGrant(
        id=new_id(),
        user_id=user_id,
        role="viewer",
        site="plant-a",
        zone=zone,
        valid_until=until,
        granted_by=None,
        created_at=created,
    )


@pytest.mark.parametrize("zone", [None, "cell-1"])
def test_the_database_holds_a_grant_once_site_wide_grants_included(
    ready: Store, ctx: Context, zone: str | None
) -> None:
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "olga", password=GOOD_PASSWORD)
        session.add(_row(user.id, zone, NOW))
    with pytest.raises(IntegrityError), ready.transaction() as session:
        session.add(_row(user.id, zone, NOW))
    with ready.transaction() as session:  # another zone, or the site next to the zone, is another grant
        session.add(_row(user.id, "cell-2" if zone else "cell-1", NOW))


def test_a_concurrent_site_wide_grant_answers_grant_exists(
    ready: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ready.transaction() as session:
        services.create_user(session, ctx, "olga", password=GOOD_PASSWORD)
        services.grant_role(session, ctx, "olga", "viewer", "plant-a")
    # The grant committed by someone else between the service's check and its insert:
    monkeypatch.setattr(services, "_find_grant", lambda *args: None)
    with pytest.raises(GrantExists, match="olga already holds viewer at plant-a"), ready.transaction() as s:
        services.grant_role(s, ctx, "olga", "viewer", "plant-a")
    with ready.transaction() as session:
        assert [(g.role, g.zone) for g in services.list_grants(session, "olga")] == [("viewer", None)]


def test_migration_0020_keeps_the_oldest_duplicate_with_the_longest_validity(store: Store) -> None:
    migrate.upgrade(store, "0019_baseline_fact_counts")
    users = {"olga": new_id(), "ivan": new_id()}
    later, end = NOW.replace(hour=9), NOW.replace(year=2027)
    rows = [  # olga: three site-wide duplicates, one of them without an end
        ("olga", "viewer", None, end, NOW.replace(hour=10)),
        ("olga", "viewer", None, end, NOW),
        ("olga", "viewer", None, None, later),
        ("olga", "viewer", "cell-1", end, NOW),  # a zone grant: not a duplicate of those
        ("ivan", "viewer", None, end, NOW),  # ivan: two duplicates, both ending, at different times
        ("ivan", "viewer", None, end.replace(year=2028), later),
        ("ivan", "admin", None, None, NOW),
    ]
    ids = [new_id() for _ in rows]
    with store.engine.begin() as connection:
        for name, user_id in users.items():
            connection.execute(
                insert(User).values(
                    id=user_id, username=name, display_name="", disabled=False, must_change_password=False,
                    one_time_password=False, mfa_enabled=False, created_at=NOW, locked=False,
                    failed_logins=0,
                )
            )  # fmt: skip
        for grant_id, (name, role, zone, until, created) in zip(ids, rows, strict=True):
            connection.execute(
                insert(RoleGrant).values(
                    id=grant_id, user_id=users[name], role=role, site="plant-a", zone=zone,
                    valid_until=until, granted_by=name, created_at=created,
                )
            )  # fmt: skip
    migrate.upgrade(store)
    with store.transaction() as session:
        kept = session.scalars(select(RoleGrant).order_by(RoleGrant.created_at, RoleGrant.role)).all()
        found = {(g.id, g.user_id, g.role, g.zone, g.valid_until) for g in kept}
    assert found == {
        (ids[1], users["olga"], "viewer", None, None),  # the oldest, now without an end
        (ids[3], users["olga"], "viewer", "cell-1", end),
        (ids[4], users["ivan"], "viewer", None, end.replace(year=2028)),  # the oldest, the later end
        (ids[6], users["ivan"], "admin", None, None),
    }
