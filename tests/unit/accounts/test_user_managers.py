"""A site keeps a user manager: revoking the last lasting site-wide `admin` grant there, or
disabling its last active holder, is refused (and the refusal audited) unless forced on the host;
zone grants, grants with an end, and locked or disabled holders keep no site managed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.accounts import services
from plantwarden.accounts.errors import LastUserManager
from plantwarden.core.auditlog import AuditEntry, AuditKeys, AuditLog, Checkpoints
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from tests.unit.accounts.conftest import GOOD_PASSWORD
from tests.unit.accounts.helpers import payloads


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    log = AuditLog(keys=AuditKeys.generate(), checkpoints=Checkpoints(path=tmp_path / "checkpoints.log"))
    services.configure(audit=log)  # the `configured` fixture puts the process's audit log back
    return log


def add(store: Store, ctx: Context, name: str, *grants: tuple[str, str, str | None]) -> None:
    with store.transaction() as session:
        services.create_user(session, ctx, name, password=GOOD_PASSWORD)
        for role, site, zone in grants:
            services.grant_role(session, ctx, name, role, site, zone)


def denied(store: Store) -> list[AuditEntry]:
    with store.transaction() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied")))
        session.expunge_all()
    return entries


def test_the_last_admin_of_a_site_keeps_the_grant_and_the_refusal_is_audited(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    host = Context(source="cli", clock=ctx.clock, actor="host:root")
    add(ready, ctx, "ada", ("admin", "plant-a", None), ("admin", "plant-b", None))
    add(ready, ctx, "abe", ("admin", "plant-b", None))
    with pytest.raises(LastUserManager) as refused, ready.transaction() as session:
        services.revoke_grant(session, host, "ada", "admin", "plant-a")
    assert "would leave site plant-a with no active user who manages users there" in refused.value.message
    assert "first grant admin at site plant-a" in refused.value.message
    assert refused.value.details == {"username": "ada", "sites": ["plant-a"], "change": "role_revoke"}
    (entry,) = denied(ready)
    assert (entry.action, entry.actor, entry.source, entry.site, entry.target) == (
        "accounts.role_revoke_refused",
        "host:root",
        "cli",
        "plant-a",
        "ada",
    )
    assert entry.details["reason"] == "last_user_manager" and entry.details["sites"] == ["plant-a"]
    with ready.transaction() as session:  # nothing changed; plant-b has abe, so that grant may go
        assert len(services.list_grants(session, "ada")) == 2
        services.revoke_grant(session, host, "ada", "admin", "plant-b")
        assert payloads(session, "accounts.RoleRevoked")[0]["site"] == "plant-b"


def test_disabling_the_last_admin_is_refused_at_each_site_it_would_leave(
    ready: Store, ctx: Context, audit: AuditLog
) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a", None), ("admin", "plant-b", None), ("admin", "plant-c", None))
    add(ready, ctx, "abe", ("admin", "plant-b", None))
    with pytest.raises(LastUserManager, match="sites plant-a, plant-c") as refused, ready.transaction() as s:
        services.disable_user(s, ctx, "ada")
    assert refused.value.message.startswith("disabling ada would leave")
    (entry,) = denied(ready)
    assert (entry.action, entry.site, entry.details["sites"]) == (
        "accounts.user_disable_refused",
        None,  # more than one site: the entry names them in its details
        ["plant-a", "plant-c"],
    )
    with ready.transaction() as session:
        assert not services.get_user_by_name(session, "ada").disabled
    add(ready, ctx, "amy", ("admin", "plant-a", None), ("admin", "plant-c", None))
    with ready.transaction() as session:
        assert services.disable_user(session, ctx, "ada").disabled


@pytest.mark.parametrize(
    "other",
    [
        ("admin", "plant-a", "cell-1"),  # a zone admin manages that zone's users only
        ("viewer", "plant-a", None),  # no users.manage
        ("admin", "plant-b", None),  # another site
    ],
)
def test_only_a_site_wide_admin_grant_keeps_a_site_managed(
    ready: Store, ctx: Context, other: tuple[str, str, str | None]
) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a", None))
    add(ready, ctx, "zed", other)
    with pytest.raises(LastUserManager), ready.transaction() as session:
        services.revoke_grant(session, ctx, "ada", "admin", "plant-a")


def test_locked_disabled_or_ending_holders_keep_no_site_managed(
    ready: Store, ctx: Context, clock: FixedClock
) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a", None))
    add(ready, ctx, "lou", ("admin", "plant-a", None))
    add(ready, ctx, "dan", ("admin", "plant-a", None))
    add(ready, ctx, "tim")
    with ready.transaction() as session:
        services.get_user_by_name(session, "lou").locked = True
        services.disable_user(session, ctx, "dan")
        until = clock.now() + timedelta(days=7)
        services.grant_role(session, ctx, "tim", "admin", "plant-a", valid_until=until)
        assert [name for _, _, name in services.user_managers(session, ["plant-a"])] == ["ada"]
    with pytest.raises(LastUserManager), ready.transaction() as session:
        services.revoke_grant(session, ctx, "ada", "admin", "plant-a")
    with pytest.raises(LastUserManager, match="or unlock or enable one"), ready.transaction() as session:
        services.disable_user(session, ctx, "ada")
    with ready.transaction() as session:  # unlocking lou makes ada's grant one of two
        services.unlock_user(session, ctx, "lou")
        services.revoke_grant(session, ctx, "ada", "admin", "plant-a")


def test_grants_that_keep_no_site_managed_go_freely(ready: Store, ctx: Context, clock: FixedClock) -> None:
    # Not the site's lasting manager: a zone admin, an admin until a time, a disabled admin.
    until = clock.now() + timedelta(days=7)
    add(ready, ctx, "zoe", ("admin", "plant-a", "cell-1"))
    add(ready, ctx, "tim")
    add(ready, ctx, "dan", ("admin", "plant-a", None))
    with ready.transaction() as session:
        services.grant_role(session, ctx, "tim", "admin", "plant-a", valid_until=until)
        services.revoke_grant(session, ctx, "zoe", "admin", "plant-a", "cell-1")
        services.revoke_grant(session, ctx, "tim", "admin", "plant-a")
    with ready.transaction() as session:
        services.disable_user(session, ctx, "dan", force=True)  # the site's last: forced
    with ready.transaction() as session:
        services.revoke_grant(session, ctx, "dan", "admin", "plant-a")  # disabled: manages nothing
        assert services.user_managers(session, ["plant-a"]) == []


def test_the_host_may_force_it_and_that_is_recorded(ready: Store, ctx: Context, audit: AuditLog) -> None:
    host = Context(source="cli", clock=ctx.clock, actor="host:root")
    add(ready, ctx, "ada", ("admin", "plant-a", None))
    with ready.transaction() as session:
        services.revoke_grant(session, host, "ada", "admin", "plant-a", force=True)
        assert services.list_grants(session, "ada") == []
        (removed,) = payloads(session, "accounts.LastUserManagerRemoved")
        assert (removed["site"], removed["username"], removed["change"], removed["by"]) == (
            "plant-a",
            "ada",
            "role_revoke",
            "host:root",
        )
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "accounts.last_user_manager_removed")
        )
        assert (entry.outcome, entry.site, entry.actor) == ("success", "plant-a", "host:root")
    assert denied(ready) == []
