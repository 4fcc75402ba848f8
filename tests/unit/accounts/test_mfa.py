from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plantwarden.accounts import services, totp
from plantwarden.accounts.errors import (
    InvalidTotpCode,
    MfaAlreadyEnrolled,
    MfaNotEnrolling,
    MfaRequired,
)
from plantwarden.accounts.models import RecoveryCode, User
from plantwarden.accounts.secrets import AccountSecrets
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import ConfigurationError
from tests.unit.accounts.conftest import GOOD_PASSWORD
from tests.unit.accounts.helpers import event_types, payloads


def enrolled_admin(store: Store, ctx: Context) -> tuple[bytes, list[str]]:
    """An admin with a confirmed authenticator: its secret and recovery codes."""
    with store.transaction() as session:
        user, _ = services.create_user(session, ctx, "ada", password=GOOD_PASSWORD)
        services.grant_role(session, ctx, "ada", "admin", "plant-a")
        secret_b32, uri = services.enroll_totp(session, ctx, str(user.id))
        assert f"secret={secret_b32}" in uri
        secret = totp.secret_from_base32(secret_b32)
        codes = services.confirm_totp(session, ctx, str(user.id), totp.code_at(secret, ctx.clock.now()))
    return secret, codes


def login(store: Store, ctx: Context, code: str | None) -> services.LoginResult:
    with store.transaction() as session:
        return services.login(session, ctx, "ada", GOOD_PASSWORD, "10.0.0.5", totp_code=code)


def test_enrolling_and_logging_in_with_a_code(ready: Store, ctx: Context, clock: FixedClock) -> None:
    secret, codes = enrolled_admin(ready, ctx)
    assert len(codes) == 10
    clock.advance(timedelta(seconds=30))  # the code used to confirm is spent
    result = login(ready, ctx, totp.code_at(secret, clock.now()))
    assert (result.mfa_passed, result.needs_mfa_enrollment, result.needs_password_change) == (
        True,
        False,
        False,
    )
    assert "MfaEnrolled" in event_types(ready)


def test_a_code_cannot_be_used_twice_in_its_window(ready: Store, ctx: Context, clock: FixedClock) -> None:
    secret, _ = enrolled_admin(ready, ctx)
    clock.advance(timedelta(seconds=30))
    code = totp.code_at(secret, clock.now())
    login(ready, ctx, code)
    clock.advance(timedelta(seconds=10))  # same step, well inside the window
    with pytest.raises(MfaRequired):
        login(ready, ctx, code)
    previous = totp.code_at(secret, clock.now() - timedelta(seconds=30))
    with pytest.raises(MfaRequired):
        login(ready, ctx, previous)  # an earlier step than the one used
    clock.advance(timedelta(seconds=30))
    assert login(ready, ctx, totp.code_at(secret, clock.now())).mfa_passed


def test_a_missing_or_wrong_code_is_a_counted_failure(ready: Store, ctx: Context) -> None:
    enrolled_admin(ready, ctx)
    for code in (None, "000000"):
        with pytest.raises(MfaRequired, match="second-factor code"):
            login(ready, ctx, code)
    with ready.transaction() as session:
        assert services.get_user_by_name(session, "ada").failed_logins == 2
        assert [p["reason"] for p in payloads(session, "accounts.LoginFailed")] == ["mfa_required"] * 2


def test_recovery_codes_work_once(ready: Store, ctx: Context) -> None:
    _, codes = enrolled_admin(ready, ctx)
    result = login(ready, ctx, codes[0].upper())
    assert result.mfa_passed
    with pytest.raises(MfaRequired):
        login(ready, ctx, codes[0])
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "ada")
        assert services.remaining_recovery_codes(session, user.id) == 9
        assert services.use_recovery_code(session, ctx, user.id, codes[1])
        assert not services.use_recovery_code(session, ctx, user.id, codes[1])
        assert not services.use_recovery_code(session, ctx, user.id, "aaaa-bbbb-cccc-dddd")
        assert services.remaining_recovery_codes(session, user.id) == 8
        assert [p["remaining"] for p in payloads(session, "accounts.RecoveryCodeUsed")] == [9, 8]
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert not set(codes) & set(stored)
    assert totp.hash_recovery_code(codes[5]) in stored


def test_the_secret_is_encrypted_at_rest(ready: Store, ctx: Context, keys: AccountSecrets) -> None:
    secret, _ = enrolled_admin(ready, ctx)
    with ready.engine.connect() as connection:
        stored = connection.execute(select(User.__table__.c.mfa_secret)).scalar_one()
    assert isinstance(stored, bytes)
    secret_b32 = totp.secret_to_base32(secret)
    assert secret not in stored
    assert secret_b32.encode() not in stored and secret_b32.lower().encode() not in stored
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "ada")
        assert keys.decrypt(stored, user.id.bytes) == secret


def test_enrolment_needs_a_valid_code_and_happens_once(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "ada", password=GOOD_PASSWORD)
    with pytest.raises(MfaNotEnrolling), ready.transaction() as session:
        services.confirm_totp(session, ctx, user.id, "123456")
    with ready.transaction() as session:
        secret_b32, _ = services.enroll_totp(session, ctx, user.id)
    with pytest.raises(InvalidTotpCode), ready.transaction() as session:
        services.confirm_totp(session, ctx, user.id, "000000")
    with ready.transaction() as session:
        services.confirm_totp(
            session, ctx, user.id, totp.code_at(totp.secret_from_base32(secret_b32), ctx.clock.now())
        )
    with pytest.raises(MfaAlreadyEnrolled), ready.transaction() as session:
        services.enroll_totp(session, ctx, user.id)


def test_reset_mfa_removes_the_factor_and_the_codes(ready: Store, ctx: Context) -> None:
    enrolled_admin(ready, ctx)
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "ada")
        _, token = services.start_session(session, ctx, user, "10.0.0.5", True)
        services.reset_mfa(session, ctx, "ada")
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "ada")
        assert (user.mfa_enabled, user.mfa_secret, user.mfa_last_step) == (False, None, None)
        assert session.scalars(select(RecoveryCode)).all() == []
    result = login(ready, ctx, None)  # no code asked any more, but enrolment is due again
    assert (result.mfa_passed, result.needs_mfa_enrollment) == (False, True)
    assert "MfaReset" in event_types(ready)
    from plantwarden.accounts.errors import InvalidSession

    with pytest.raises(InvalidSession), ready.transaction() as session:
        services.resolve_session(session, ctx, token)


def test_second_factor_calls_need_the_accounts_key(ready: Store, ctx: Context) -> None:
    services._configured.secrets = None
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "ada", password=GOOD_PASSWORD)
    with pytest.raises(ConfigurationError, match="accounts key"), ready.transaction() as session:
        services.enroll_totp(session, ctx, user.id)
    with ready.transaction() as session:  # or an explicit one
        services.enroll_totp(session, ctx, user.id, secrets=AccountSecrets.generate())


def test_the_session_is_marked_when_the_factor_is_confirmed(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "ada", password=GOOD_PASSWORD)
        _, token = services.start_session(session, ctx, user, "10.0.0.5", False)
        secret_b32, _ = services.enroll_totp(session, ctx, user.id)
        services.confirm_totp(
            session, ctx, user.id, totp.code_at(totp.secret_from_base32(secret_b32), ctx.clock.now())
        )
        assert services.mark_session_mfa_passed(session, ctx, token).mfa_passed


def test_the_enrolment_page_shown_again_keeps_its_secret_until_confirmed_or_reset(
    ready: Store, ctx: Context
) -> None:
    with ready.transaction() as session:
        user, _ = services.create_user(session, ctx, "ada", password=GOOD_PASSWORD)
        first, _ = services.enroll_totp(session, ctx, user.id)
        again, _ = services.enroll_totp(session, ctx, user.id)  # a reload, or a browser's second GET
        assert again == first
        services.confirm_totp(
            session, ctx, user.id, totp.code_at(totp.secret_from_base32(first), ctx.clock.now())
        )
        services.reset_mfa(session, ctx, "ada")
        fresh, _ = services.enroll_totp(session, ctx, user.id)
    assert fresh != first  # after a reset (a lost phone), never the old secret
