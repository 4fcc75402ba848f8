from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from plantwarden.accounts import services
from plantwarden.accounts.errors import (
    AccountDisabled,
    InvalidSession,
    InvalidToken,
    InvalidTokenRequest,
    SetupRequired,
    TokenNotFound,
)
from plantwarden.accounts.models import ApiToken, User, WebSession
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from tests.unit.accounts.conftest import GOOD_PASSWORD, OTHER_PASSWORD
from tests.unit.accounts.helpers import event_types, payloads

DAY = timedelta(days=1)


def user(store: Store, ctx: Context, name: str = "alice") -> User:
    with store.transaction() as session:
        created, _ = services.create_user(session, ctx, name, password=GOOD_PASSWORD)
        services.grant_role(session, ctx, name, "security_analyst", "plant-a")
    return created


def token_for(store: Store, ctx: Context, owner: User, scopes: tuple[str, ...] = (), days: int = 30) -> str:
    with store.transaction() as session:
        _, plaintext = services.create_token(session, ctx, owner.id, "ci", scopes, timedelta(days=days))
    return plaintext


def test_a_token_is_shown_once_and_only_its_hash_is_kept(
    ready: Store, ctx: Context, clock: FixedClock
) -> None:
    alice = user(ready, ctx)
    with ready.transaction() as session:
        token, plaintext = services.create_token(
            session, ctx, alice.id, " ci export ", ["platform:alerts.read", "platform:exports.run"], 30 * DAY
        )
    tag, prefix, secret = plaintext.split("_")
    assert tag == "pwt" and prefix == token.prefix and len(prefix) >= 8
    assert len(secret) == 64 and int(secret, 16) >= 0  # 256 bits, hex
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (token.name, token.expires_at) == ("ci export", clock.now() + 30 * DAY)
    with ready.engine.connect() as connection:
        row = connection.execute(select(ApiToken.__table__)).one()
    assert secret not in str(tuple(row)) and plaintext not in str(tuple(row))
    with ready.transaction() as session:
        found_user, found = services.authenticate_token(session, ctx, plaintext)
        assert (found_user.username, found.id) == ("alice", token.id)
        assert found.scopes == ["platform:alerts.read", "platform:exports.run"]
        assert found.last_used_at == clock.now()
        [created] = payloads(session, "accounts.TokenCreated")
    assert created["prefix"] == prefix and secret not in str(created)


def test_unusable_tokens_are_refused_with_one_message(ready: Store, ctx: Context, clock: FixedClock) -> None:
    alice, bob = user(ready, ctx), user(ready, ctx, "bob")
    expiring = token_for(ready, ctx, alice, days=1)
    revoked = token_for(ready, ctx, alice)
    of_disabled = token_for(ready, ctx, bob)
    good = token_for(ready, ctx, alice, days=3)
    with ready.transaction() as session:
        services.revoke_token(session, ctx, revoked.split("_")[1])  # by prefix
        services.disable_user(session, ctx, "bob")
    clock.advance(DAY)
    tag, prefix, secret = good.split("_")
    candidates = [
        expiring,
        revoked,
        of_disabled,
        f"{tag}_{prefix}_{'0' * 64}",  # right prefix, wrong secret
        f"{tag}_{'f' * len(prefix)}_{secret}",  # unknown prefix
        "pwt_nonsense",
        "",
    ]
    messages = set()
    for candidate in candidates:
        with pytest.raises(InvalidToken) as refused, ready.transaction() as session:
            services.authenticate_token(session, ctx, candidate)
        messages.add(str(refused.value))
    assert messages == {"invalid or expired token"}
    with ready.transaction() as session:
        services.authenticate_token(session, ctx, good)


def test_token_requests_are_checked(ready: Store, ctx: Context) -> None:
    alice = user(ready, ctx)
    for scopes, expires, message in (
        ((), timedelta(0), "expiry"),
        ((), 366 * DAY, "at most 365 days"),
        (("platform:alerts.read", "platform:nothing.here"), DAY, "platform:nothing.here"),
        (("plant:modbus.write",), DAY, "unknown scope"),
    ):
        with pytest.raises(InvalidTokenRequest, match=message), ready.transaction() as session:
            services.create_token(session, ctx, alice.id, "x", scopes, expires)
    with pytest.raises(InvalidTokenRequest, match="name"), ready.transaction() as session:
        services.create_token(session, ctx, alice.id, "  ", (), DAY)
    with ready.transaction() as session:
        services.create_token(session, ctx, alice.id, "x", (), 365 * DAY)


def test_no_token_before_the_account_is_set_up(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        fresh, _ = services.create_user(session, ctx, "ada")
        services.grant_role(session, ctx, "ada", "admin", "plant-a")
    with pytest.raises(SetupRequired) as refused, ready.transaction() as session:
        services.create_token(session, ctx, fresh.id, "x", (), DAY)
    assert refused.value.details == {"steps": ["set_password", "enroll_mfa"]}


def test_tokens_are_listed_and_revoked(ready: Store, ctx: Context, clock: FixedClock) -> None:
    alice, bob = user(ready, ctx), user(ready, ctx, "bob")
    token_for(ready, ctx, alice)
    clock.advance(timedelta(seconds=1))
    token_for(ready, ctx, bob)
    with ready.transaction() as session:
        assert [t.user.username for t in services.list_tokens(session)] == ["bob", "alice"]
        [only] = services.list_tokens(session, alice.id)
        first = services.revoke_token(session, ctx, only.id)
        again = services.revoke_token(session, ctx, str(only.id))
        assert first.revoked_at == again.revoked_at == clock.now()
    with pytest.raises(TokenNotFound), ready.transaction() as session:
        services.revoke_token(session, ctx, "nope")
    assert event_types(ready).count("TokenRevoked") == 1


def test_a_session_lives_until_it_expires_or_ends(ready: Store, ctx: Context, clock: FixedClock) -> None:
    alice = user(ready, ctx)
    with ready.transaction() as session:
        web_session, token = services.start_session(
            session, ctx, alice, "10.0.0.5", False, timedelta(hours=1)
        )
    assert len(token) >= 43  # 256 random bits
    assert web_session.id == hashlib.sha256(token.encode()).hexdigest()
    assert len(web_session.csrf_token) >= 43 and web_session.csrf_token != token
    with ready.engine.connect() as connection:
        assert token not in str(connection.execute(select(WebSession.__table__)).all())
    clock.advance(timedelta(minutes=59))
    with ready.transaction() as session:
        found_user, found = services.resolve_session(session, ctx, token)
        assert (found_user.username, found.last_seen_at, found.mfa_passed) == ("alice", clock.now(), False)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(InvalidSession), ready.transaction() as session:
        services.resolve_session(session, ctx, token)
    with ready.transaction() as session:
        _, token = services.start_session(session, ctx, alice, "10.0.0.5", False)  # default lifetime
        assert services.end_session(session, ctx, token)
        assert not services.end_session(session, ctx, token)
    with pytest.raises(InvalidSession, match="invalid or expired session"), ready.transaction() as session:
        services.resolve_session(session, ctx, token)
    for unknown in ("", "not-a-session"):
        with pytest.raises(InvalidSession), ready.transaction() as session:
            services.resolve_session(session, ctx, unknown)


def test_the_default_lifetime_follows_the_settings(ready: Store, ctx: Context, clock: FixedClock) -> None:
    alice = user(ready, ctx)
    with ready.transaction() as session:
        web_session, _ = services.start_session(session, ctx, alice, "10.0.0.5", True)
    assert web_session.expires_at == clock.now() + timedelta(hours=12)


def test_a_disabled_users_sessions_end(ready: Store, ctx: Context) -> None:
    alice = user(ready, ctx)
    with ready.transaction() as session:
        _, token = services.start_session(session, ctx, alice, "10.0.0.5", False)
        services.disable_user(session, ctx, "alice")
    with pytest.raises(InvalidSession), ready.transaction() as session:
        services.resolve_session(session, ctx, token)
    with pytest.raises(AccountDisabled), ready.transaction() as session:
        services.start_session(session, ctx, services.get_user_by_name(session, "alice"), "x", False)
    with ready.transaction() as session:  # even enabled again, the ended session stays ended
        services.enable_user(session, ctx, "alice")
    with pytest.raises(InvalidSession), ready.transaction() as session:
        services.resolve_session(session, ctx, token)


def test_a_new_password_ends_the_other_sessions(ready: Store, ctx: Context) -> None:
    alice = user(ready, ctx)
    with ready.transaction() as session:
        _, mine = services.start_session(session, ctx, alice, "10.0.0.5", False)
        _, other = services.start_session(session, ctx, alice, "10.0.0.6", False)
        services.set_password(session, ctx, alice.id, OTHER_PASSWORD, keep_session_token=mine)
    with ready.transaction() as session:
        services.resolve_session(session, ctx, mine)
    with pytest.raises(InvalidSession), ready.transaction() as session:
        services.resolve_session(session, ctx, other)
    with ready.transaction() as session:
        [changed] = payloads(session, "accounts.PasswordChanged")
        assert changed["sessions_ended"] == 1
