from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from plantwarden.accounts import throttle
from plantwarden.accounts.errors import LoginThrottled
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.clock import FixedClock
from plantwarden.core.db import Store
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.settings import load_settings

DEFAULTS = AccountsSettings()


def test_backoff_is_exponential_after_the_free_failures_and_capped() -> None:
    assert [throttle.backoff_seconds(k, DEFAULTS) for k in range(0, 4)] == [0, 0, 0, 0]
    assert [throttle.backoff_seconds(k, DEFAULTS) for k in range(4, 13)] == [
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        512,
    ]
    assert throttle.backoff_seconds(13, DEFAULTS) == 900  # 1024 capped at 15 minutes
    assert throttle.backoff_seconds(10_000, DEFAULTS) == 900  # no overflow


def test_backoff_follows_the_settings() -> None:
    settings = AccountsSettings(throttle_free_failures=1, throttle_base_seconds=0.5, throttle_max_seconds=3)
    assert [throttle.backoff_seconds(k, settings) for k in range(1, 6)] == [0, 1, 2, 3, 3]


def test_keys_are_per_account_and_per_source() -> None:
    assert throttle.keys(" Alice ", "10.0.0.5") == ["user:alice", "source:10.0.0.5"]
    odd = throttle.user_key("x" * 500)
    assert odd.startswith("user:~") and len(odd) < 60
    assert throttle.source_key("fe80::1%eth0") == "source:fe80::1%eth0"


def test_failures_block_the_account_and_the_source(ready: Store, clock: FixedClock) -> None:
    now = clock.now()
    with ready.transaction() as session:
        for _ in range(3):
            assert throttle.record_failure(session, "alice", "10.0.0.5", now, DEFAULTS) == []
        throttle.check(session, "alice", "10.0.0.5", now)  # three free failures
        started = throttle.record_failure(session, "alice", "10.0.0.5", now, DEFAULTS)
    assert [(b.key, b.failures, b.seconds) for b in started] == [
        ("user:alice", 4, 2.0),
        ("source:10.0.0.5", 4, 2.0),
    ]
    with ready.transaction() as session:
        with pytest.raises(LoginThrottled) as refused:
            throttle.check(session, "alice", "10.0.0.9", now)  # another source, same account
        assert refused.value.retry_after_seconds == 2
        with pytest.raises(LoginThrottled):
            throttle.check(session, "bob", "10.0.0.5", now)  # another account, same source
        throttle.check(session, "bob", "10.0.0.9", now)
        throttle.check(session, "alice", "10.0.0.5", now + timedelta(seconds=2))


def test_old_failures_are_forgotten_and_pruned(ready: Store, clock: FixedClock) -> None:
    now = clock.now()
    with ready.transaction() as session:
        for _ in range(5):
            throttle.record_failure(session, "alice", "10.0.0.5", now, DEFAULTS)
        assert throttle.failures(session, "user:alice") == 5
        later = now + timedelta(seconds=DEFAULTS.throttle_window_seconds + 1)
        assert throttle.record_failure(session, "alice", "10.0.0.5", later, DEFAULTS) == []
        assert throttle.failures(session, "user:alice") == 1
        assert throttle.prune(session, later, DEFAULTS) == 0  # both keys failed just now
        much_later = later + timedelta(seconds=DEFAULTS.throttle_window_seconds + 1)
        assert throttle.prune(session, much_later, DEFAULTS) == 2
        assert throttle.failures(session, "user:alice") == 0


def test_reset_clears_only_the_keys_named(ready: Store, clock: FixedClock) -> None:
    now = clock.now()
    with ready.transaction() as session:
        for _ in range(5):
            throttle.record_failure(session, "alice", "10.0.0.5", now, DEFAULTS)
        throttle.reset(session, [throttle.user_key("alice")])
        assert throttle.failures(session, "user:alice") == 0
        assert throttle.failures(session, "source:10.0.0.5") == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accounts.lockout_roles": "admin,admins"}, "unknown role"),
        ({"accounts.mfa_roles": "root"}, "unknown role"),
        ({"accounts.lockout_after": "0"}, "must be positive"),
        ({"accounts.session_hours": "-1"}, "must be positive"),
    ],
)
def test_settings_are_checked_when_loaded(overrides: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings([AccountsSettings], environ={}, cwd=tmp_path, overrides=overrides)


def test_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    environ = {"PLANTWARDEN_ACCOUNTS_LOCKOUT_ROLES": "admin", "PLANTWARDEN_ACCOUNTS_LOCKOUT_AFTER": "5"}
    loaded = load_settings([AccountsSettings], environ=environ, cwd=tmp_path)[AccountsSettings]
    assert (loaded.lockout_role_set, loaded.lockout_after) == (frozenset({"admin"}), 5)
    assert DEFAULTS.lockout_role_set == {"admin", "security_analyst", "auditor", "engineer", "viewer"}
    assert "operator" not in DEFAULTS.lockout_role_set
