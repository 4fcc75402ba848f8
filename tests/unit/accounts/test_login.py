from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plantwarden.accounts import passwords, services, throttle
from plantwarden.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    AuthenticationFailed,
    InvalidCredentials,
    LoginThrottled,
)
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.alerts.models import Alert, Severity
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from tests.unit.accounts.conftest import FAST, GOOD_PASSWORD
from tests.unit.accounts.helpers import event_types, payloads

# No backoff, so that the lockout tests count failures only.
NO_BACKOFF = AccountsSettings(
    password_time_cost=1, password_memory_kib=1024, lockout_after=3, throttle_free_failures=1000
)


def add(store: Store, ctx: Context, name: str, *grants: tuple[str, str]) -> None:
    with store.transaction() as session:
        services.create_user(session, ctx, name, password=GOOD_PASSWORD)
        for role, site in grants:
            services.grant_role(session, ctx, name, role, site)


def fail(store: Store, ctx: Context, name: str, source: str = "10.0.0.5", **kwargs: object) -> Exception:
    """One login with a wrong password, in its own transaction as the web layer runs it."""
    with pytest.raises(AuthenticationFailed) as refused, store.transaction() as session:
        services.login(session, ctx, name, "wrong password!", source, **kwargs)  # type: ignore[arg-type]
    return refused.value


def computations() -> int:
    return passwords.hash_stats().computations


def test_unknown_user_and_wrong_password_look_the_same_and_cost_the_same(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "alice")
    passwords.dummy_hash(services.hash_parameters(FAST))  # made once per process, on first use
    before = computations()
    unknown = fail(ready, ctx, "mallory", "10.0.0.1")
    assert computations() - before == 1  # verified against a dummy hash
    before = computations()
    wrong = fail(ready, ctx, "alice", "10.0.0.2")
    assert computations() - before == 1
    assert type(unknown) is type(wrong) is InvalidCredentials
    assert str(unknown) == str(wrong) == "invalid user name or password"
    assert unknown.details == wrong.details == {}
    with ready.transaction() as session:
        failed = payloads(session, "accounts.LoginFailed")
    assert [(p["username"], p["known_user"], p["reason"]) for p in failed] == [
        ("mallory", False, "invalid_credentials"),
        ("alice", True, "invalid_credentials"),
    ]


def test_a_failure_is_counted_although_the_callers_transaction_rolls_back(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "alice")
    fail(ready, ctx, "alice")
    with ready.transaction() as session:
        assert services.get_user_by_name(session, "alice").failed_logins == 1
        assert throttle.failures(session, "user:alice") == 1
        assert throttle.failures(session, "source:10.0.0.5") == 1


def test_a_password_typed_into_the_name_field_stays_out_of_the_events(ready: Store, ctx: Context) -> None:
    fail(ready, ctx, "My$ecret Passw0rd!")
    with ready.transaction() as session:
        assert payloads(session, "accounts.LoginFailed")[0]["username"] == "(malformed)"


def test_throttled_attempts_are_refused_before_any_hash(
    ready: Store, ctx: Context, clock: FixedClock
) -> None:
    add(ready, ctx, "alice")
    for _ in range(FAST.throttle_free_failures):
        fail(ready, ctx, "alice")
    assert isinstance(fail(ready, ctx, "alice"), InvalidCredentials)  # the 4th: blocked for 2 s now
    before = computations()
    for name, source in (("alice", "10.0.0.99"), ("bob", "10.0.0.5"), ("alice", "10.0.0.5")):
        with pytest.raises(LoginThrottled) as refused, ready.transaction() as session:
            services.login(session, ctx, name, GOOD_PASSWORD, source)  # even the right password
        assert refused.value.retry_after_seconds == 2
        assert refused.value.details == {"retry_after_seconds": 2}
    assert computations() == before
    clock.advance(timedelta(seconds=2))
    assert isinstance(fail(ready, ctx, "alice"), InvalidCredentials)  # 5th: blocked for 4 s
    with pytest.raises(LoginThrottled) as refused, ready.transaction() as session:
        services.login(session, ctx, "alice", GOOD_PASSWORD, "10.0.0.5")
    assert refused.value.retry_after_seconds == 4
    clock.advance(timedelta(seconds=4))
    with ready.transaction() as session:
        services.login(session, ctx, "alice", GOOD_PASSWORD, "10.0.0.5")
        # Success resets the account's key, not the source's (which may be spraying accounts).
        assert throttle.failures(session, "user:alice") == 0
        assert throttle.failures(session, "source:10.0.0.5") == 5
        throttled = payloads(session, "accounts.LoginThrottled")
    assert [(p["key"], p["backoff_seconds"]) for p in throttled] == [
        ("user:alice", 2.0),
        ("source:10.0.0.5", 2.0),
        ("user:alice", 4.0),
        ("source:10.0.0.5", 4.0),
    ]


def test_an_admin_is_locked_and_unlock_clears_it(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a"))
    add(ready, ctx, "abe", ("admin", "plant-a"))  # plant-a keeps a user manager: ada may be locked
    for _ in range(NO_BACKOFF.lockout_after):
        fail(ready, ctx, "ada", settings=NO_BACKOFF)
    before = computations()
    with pytest.raises(AccountLocked, match="plantwarden user unlock"), ready.transaction() as session:
        services.login(session, ctx, "ada", GOOD_PASSWORD, "10.0.0.5", settings=NO_BACKOFF)
    assert computations() == before  # refused before hashing
    with ready.transaction() as session:
        assert services.get_user_by_name(session, "ada").locked
        services.unlock_user(session, ctx, "ada", ["10.0.0.5"])
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "ada")
        assert (user.locked, user.failed_logins) == (False, 0)
        assert throttle.failures(session, "user:ada") == throttle.failures(session, "source:10.0.0.5") == 0
        services.login(session, ctx, "ada", GOOD_PASSWORD, "10.0.0.5", settings=NO_BACKOFF)
    assert "AccountLocked" in event_types(ready)
    assert "UserUnlocked" in event_types(ready)
    with ready.transaction() as session:
        assert session.scalars(select(Alert)).all() == []


def test_an_operator_is_never_locked_and_an_alert_is_raised_instead(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "olga", ("operator", "plant-a"), ("viewer", "plant-b"))
    for _ in range(NO_BACKOFF.lockout_after + 2):
        fail(ready, ctx, "olga", settings=NO_BACKOFF)
    with ready.transaction() as session:
        user = services.get_user_by_name(session, "olga")
        assert (user.locked, user.failed_logins) == (False, 5)
        alerts = session.scalars(select(Alert)).all()
        assert len(alerts) == 1  # deduplicated per user (and site): one alert, three occurrences
        alert = alerts[0]
        assert (alert.site, alert.severity, alert.detector, alert.rule_id, alert.occurrences) == (
            "plant-a",
            Severity.HIGH,
            "accounts.login",
            "PW-AUTH-001",
            3,
        )
        assert alert.evidence[0]["src"] == "10.0.0.5" and alert.evidence[0]["username"] == "olga"
        replaced = payloads(session, "accounts.LockoutReplacedByAlert")
        assert [p["alert_ids"] for p in replaced] == [[str(alert.id)]] * 3
        services.login(session, ctx, "olga", GOOD_PASSWORD, "10.0.0.5", settings=NO_BACKOFF)
    assert "AccountLocked" not in event_types(ready)


def test_holding_any_role_outside_the_lockout_roles_prevents_the_lockout(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a"), ("operator", "plant-a"))
    add(ready, ctx, "abe", ("admin", "plant-a"))
    for _ in range(NO_BACKOFF.lockout_after):
        fail(ready, ctx, "ada", settings=NO_BACKOFF)
    with ready.transaction() as session:
        assert not services.get_user_by_name(session, "ada").locked
    lockable = AccountsSettings(**{**NO_BACKOFF.__dict__, "lockout_roles": "admin,operator"})
    fail(ready, ctx, "ada", settings=lockable)
    with ready.transaction() as session:
        assert services.get_user_by_name(session, "ada").locked


def test_the_last_user_manager_of_a_site_is_never_locked_and_an_alert_is_raised_instead(
    ready: Store, ctx: Context
) -> None:
    # Anyone who knows the name could otherwise leave plant-a to the host's CLI with wrong passwords.
    add(ready, ctx, "ada", ("admin", "plant-a"), ("admin", "plant-b"))
    add(ready, ctx, "abe", ("admin", "plant-b"))
    for _ in range(NO_BACKOFF.lockout_after):
        fail(ready, ctx, "ada", settings=NO_BACKOFF)
    with ready.transaction() as session:
        assert not services.get_user_by_name(session, "ada").locked
        (alert,) = session.scalars(select(Alert)).all()
        assert (alert.site, alert.rule_id) == ("plant-a", "PW-AUTH-001")
        assert "last active user who manages users at plant-a" in alert.description
        assert len(payloads(session, "accounts.LockoutReplacedByAlert")) == 1
    # once plant-a has another user manager, ada is locked like any administrator
    add(ready, ctx, "amy", ("admin", "plant-a"))
    fail(ready, ctx, "ada", settings=NO_BACKOFF)
    with ready.transaction() as session:
        assert services.get_user_by_name(session, "ada").locked


def test_a_disabled_user_cannot_log_in(ready: Store, ctx: Context) -> None:
    add(ready, ctx, "bob")
    with ready.transaction() as session:
        services.disable_user(session, ctx, "bob")
    assert isinstance(fail(ready, ctx, "bob"), InvalidCredentials)
    with pytest.raises(AccountDisabled), ready.transaction() as session:
        services.login(session, ctx, "bob", GOOD_PASSWORD, "10.0.0.5")
    with ready.transaction() as session:
        assert [p["reason"] for p in payloads(session, "accounts.LoginFailed")] == [
            "invalid_credentials",
            "disabled",
        ]


def test_a_success_records_the_login(ready: Store, ctx: Context, clock: FixedClock) -> None:
    add(ready, ctx, "alice")
    fail(ready, ctx, "alice")
    clock.advance(timedelta(minutes=5))
    with ready.transaction() as session:
        result = services.login(session, ctx, "alice", GOOD_PASSWORD, "10.0.0.5")
        assert result.user.last_login_at == clock.now()
        assert result.user.failed_logins == 0
        [succeeded] = payloads(session, "accounts.LoginSucceeded")
    assert succeeded == {
        "user_id": str(result.user.id),
        "username": "alice",
        "source": "10.0.0.5",
        "mfa_passed": False,
        "recovery_code_used": False,
    }
