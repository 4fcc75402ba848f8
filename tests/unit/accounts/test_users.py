from __future__ import annotations

import pytest
from sqlalchemy import select

from plantwarden.accounts import passwords, services
from plantwarden.accounts.errors import (
    GrantExists,
    GrantNotFound,
    InvalidCredentials,
    InvalidGrant,
    InvalidRole,
    InvalidUsername,
    UserExists,
    UserNotFound,
    WeakPassword,
)
from plantwarden.accounts.models import User
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.policy.compile import Request, compile_policy
from plantwarden.policy.model import Subject
from plantwarden.policy.roles import BUILTIN_ROLES
from tests.unit.accounts.conftest import GOOD_PASSWORD, OTHER_PASSWORD
from tests.unit.accounts.helpers import event_types, payloads


def test_a_user_with_a_password(ready: Store, ctx: Context, fast: AccountsSettings) -> None:
    with ready.transaction() as session:
        user, one_time = services.create_user(session, ctx, " Alice ", "Alice A.", GOOD_PASSWORD)
    assert one_time is None
    assert (user.username, user.display_name, user.created_at) == ("alice", "Alice A.", ctx.clock.now())
    assert not (user.must_change_password or user.one_time_password or user.disabled or user.locked)
    assert user.id.version == 7
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert GOOD_PASSWORD not in user.password_hash
    with ready.transaction() as session:
        result = services.login(session, ctx, "ALICE", GOOD_PASSWORD, "10.0.0.5")
    assert (result.needs_password_change, result.needs_mfa_enrollment, result.mfa_passed) == (
        False,
        False,
        False,
    )
    assert event_types(ready) == ["UserCreated", "LoginSucceeded"]


@pytest.mark.parametrize("name", ["", "ab", "a" * 65, "-alice", "alice-", "al ice", "älice", "al/ice"])
def test_user_names_are_lower_case_slugs(ready: Store, ctx: Context, name: str) -> None:
    with pytest.raises(InvalidUsername, match="not valid"), ready.transaction() as session:
        services.create_user(session, ctx, name, password=GOOD_PASSWORD)


def test_user_names_are_unique(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        services.create_user(session, ctx, "alice", password=GOOD_PASSWORD)
    with pytest.raises(UserExists), ready.transaction() as session:
        services.create_user(session, ctx, "ALICE", password=OTHER_PASSWORD)


def test_a_new_password_must_meet_the_policy(ready: Store, ctx: Context) -> None:
    with pytest.raises(WeakPassword, match="user name"), ready.transaction() as session:
        services.create_user(session, ctx, "alice", password="alice-is-my-password")
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "alice", password=GOOD_PASSWORD)
    for weak, reason in (("short", "12 characters"), ("qwerty123456", "common"), (GOOD_PASSWORD, "differ")):
        with pytest.raises(WeakPassword, match=reason), ready.transaction() as session:
            services.set_password(session, ctx, user.id, weak)


def test_the_one_time_password_leads_only_to_setting_a_password(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        user, one_time = services.create_user(session, ctx, "olga")
        services.grant_role(session, ctx, "olga", "operator", "plant-a")
    assert one_time is not None and len(one_time) >= 20
    assert user.must_change_password and user.one_time_password
    with ready.transaction() as session:
        result = services.login(session, ctx, "olga", one_time, "10.0.0.5")
        assert (result.needs_password_change, result.needs_mfa_enrollment) == (True, False)
        assert services.pending_setup(session, result.user, ctx.clock.now()) == ["set_password"]
        services.set_password(session, ctx, str(user.id), GOOD_PASSWORD)  # the id as the web has it
    with ready.transaction() as session:
        stored = services.get_user_by_name(session, "olga")
        assert not (stored.must_change_password or stored.one_time_password)
        result = services.login(session, ctx, "olga", GOOD_PASSWORD, "10.0.0.5")
        assert (result.needs_password_change, result.needs_mfa_enrollment) == (False, False)
    with pytest.raises(InvalidCredentials), ready.transaction() as session:
        services.login(session, ctx, "olga", one_time, "10.0.0.5")
    with ready.transaction() as session:
        assert payloads(session, "accounts.UserCreated")[0]["one_time_password_issued"] is True


def test_the_first_admins_one_time_password_also_requires_the_second_factor(
    ready: Store, ctx: Context
) -> None:
    with ready.transaction() as session:
        _user, one_time = services.create_user(session, ctx, "root-admin")
        services.grant_role(session, ctx, "root-admin", "admin", "plant-a")
    assert one_time is not None
    with ready.transaction() as session:
        result = services.login(session, ctx, "root-admin", one_time, "127.0.0.1")
        assert (result.needs_password_change, result.needs_mfa_enrollment, result.mfa_passed) == (
            True,
            True,
            False,
        )
        assert services.pending_setup(session, result.user, ctx.clock.now()) == ["set_password", "enroll_mfa"]
        services.set_password(session, ctx, result.user.id, GOOD_PASSWORD)
        result = services.login(session, ctx, "root-admin", GOOD_PASSWORD, "127.0.0.1")
        assert (result.needs_password_change, result.needs_mfa_enrollment) == (False, True)


def test_argon2_parameters_follow_the_settings_and_old_hashes_are_upgraded_at_login(
    ready: Store, ctx: Context
) -> None:
    slow = AccountsSettings(password_time_cost=2, password_memory_kib=2048)
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "alice", password=GOOD_PASSWORD)
    assert user.password_hash is not None and "m=1024,t=1,p=1" in user.password_hash
    with ready.transaction() as session:
        services.login(session, ctx, "alice", GOOD_PASSWORD, "10.0.0.5", settings=slow)
    with ready.transaction() as session:
        stored = services.get_user_by_name(session, "alice").password_hash
        assert stored is not None and "m=2048,t=2,p=1" in stored
        assert passwords.verify_password(GOOD_PASSWORD, stored)


def test_disable_enable_and_list(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        for name in ("bob", "alice"):
            services.create_user(session, ctx, name, password=GOOD_PASSWORD)
        services.disable_user(session, ctx, "bob")
        assert [(u.username, u.disabled) for u in services.list_users(session)] == [
            ("alice", False),
            ("bob", True),
        ]
        services.enable_user(session, ctx, "bob")
        assert not services.get_user_by_name(session, "bob").disabled
    with pytest.raises(UserNotFound), ready.transaction() as session:
        services.disable_user(session, ctx, "nobody")
    with pytest.raises(UserNotFound), ready.transaction() as session:
        services.get_user(session, "not-a-uuid")
    assert event_types(ready)[-2:] == ["UserDisabled", "UserEnabled"]


def test_grants_are_built_in_roles_per_site_or_zone(ready: Store, ctx: Context, clock: FixedClock) -> None:
    operator_ctx = Context(source="test", clock=clock, actor="root-admin")
    with ready.transaction() as session:
        services.create_user(session, ctx, "olga", password=GOOD_PASSWORD)
        grant = services.grant_role(session, operator_ctx, "olga", "operator", "plant-a", "cell-1")
        services.grant_role(session, ctx, "olga", "viewer", "plant-a")
        assert (grant.role, grant.site, grant.zone, grant.granted_by) == (
            "operator",
            "plant-a",
            "cell-1",
            "root-admin",
        )
    with pytest.raises(InvalidRole, match="one of admin, auditor"), ready.transaction() as session:
        services.grant_role(session, ctx, "olga", "superuser", "plant-a")
    with pytest.raises(InvalidGrant), ready.transaction() as session:
        services.grant_role(session, ctx, "olga", "viewer", "Plant A")
    with pytest.raises(InvalidGrant, match="past"), ready.transaction() as session:
        services.grant_role(session, ctx, "olga", "viewer", "plant-b", valid_until=clock.now())
    for zone in ("cell-1", None):  # a site-wide duplicate too, which the unique constraint misses
        with pytest.raises(GrantExists), ready.transaction() as session:
            services.grant_role(session, ctx, "olga", "operator" if zone else "viewer", "plant-a", zone)
    with ready.transaction() as session:
        assert [(g.role, g.site, g.zone) for g in services.list_grants(session, "olga")] == [
            ("viewer", "plant-a", None),
            ("operator", "plant-a", "cell-1"),
        ]
        services.revoke_grant(session, ctx, "olga", "viewer", "plant-a")
    with pytest.raises(GrantNotFound), ready.transaction() as session:
        services.revoke_grant(session, ctx, "olga", "viewer", "plant-a")
    with ready.transaction() as session:
        granted = payloads(session, "accounts.RoleGranted")
        assert [(p["role"], p["zone"], p["by"]) for p in granted] == [
            ("operator", "cell-1", "root-admin"),
            ("viewer", None, None),
        ]
        assert len(payloads(session, "accounts.RoleRevoked")) == 1


def test_the_policy_model_holds_every_grant_of_enabled_users(
    ready: Store, ctx: Context, clock: FixedClock
) -> None:
    until = clock.now().replace(year=2027)
    with ready.transaction() as session:
        for name in ("olga", "ada", "dis"):
            services.create_user(session, ctx, name, password=GOOD_PASSWORD)
        services.grant_role(session, ctx, "olga", "operator", "plant-a", "cell-1", valid_until=until)
        services.grant_role(session, ctx, "ada", "admin", "plant-a")
        services.grant_role(session, ctx, "dis", "admin", "plant-a")
        services.disable_user(session, ctx, "dis")
        model = services.policy_model(session)
    assert dict(model.roles) == BUILTIN_ROLES
    assert [(g.subject, g.role, g.site, g.zone, g.valid_until) for g in model.grants] == [
        (Subject("user", "ada"), "admin", "plant-a", None, None),
        (Subject("user", "olga"), "operator", "plant-a", "cell-1", until),
    ]
    snapshot = compile_policy(model)
    ada, olga = Subject("user", "ada"), Subject("user", "olga")
    now = clock.now()
    assert snapshot.decide(Request(ada, "platform:users.manage", "plant-a", now=now)).allowed
    assert not snapshot.decide(Request(olga, "platform:users.manage", "plant-a", "cell-1", now=now)).allowed
    assert snapshot.decide(Request(olga, "platform:alerts.acknowledge", "plant-a", "cell-1", now=now)).allowed
    assert not snapshot.decide(
        Request(Subject("user", "dis"), "platform:status.read", "plant-a", now=now)
    ).allowed


def test_users_are_stored_without_any_plaintext(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        _user, one_time = services.create_user(session, ctx, "olga")
    with ready.engine.connect() as connection:
        row = connection.execute(select(User.__table__)).one()
    assert one_time is not None and one_time not in str(tuple(row))
