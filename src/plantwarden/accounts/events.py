"""Events of the accounts domain: every security-relevant change and every login outcome.

Payloads never hold a secret: no password, code, token or session token (nor their hashes).
`by` is the acting user (`Context.actor`), None for the host's command line without `--by`.
"""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.events import event_type


@event_type("accounts.UserCreated")
@dataclass(frozen=True)
class UserCreated:
    """A user was created; `one_time_password` when a generated password must be replaced."""

    user_id: str
    username: str
    one_time_password_issued: bool
    by: str | None


@event_type("accounts.PasswordChanged")
@dataclass(frozen=True)
class PasswordChanged:
    """A user's password was set; other sessions of the user were ended."""

    user_id: str
    username: str
    by: str | None
    sessions_ended: int


@event_type("accounts.LoginSucceeded")
@dataclass(frozen=True)
class LoginSucceeded:
    """A user signed in (password, and the second factor when enrolled)."""

    user_id: str
    username: str
    source: str
    mfa_passed: bool
    recovery_code_used: bool


@event_type("accounts.LoginFailed")
@dataclass(frozen=True)
class LoginFailed:
    """A login failed after its password was checked. `reason`: invalid_credentials,
    mfa_required (code missing or wrong), disabled. `known_user` tells whether the name exists."""

    username: str
    source: str
    reason: str
    known_user: bool
    failed_logins: int


@event_type("accounts.LoginThrottled")
@dataclass(frozen=True)
class LoginThrottled:
    """A throttle key (`user:NAME` or `source:ADDRESS`) began a backoff: logins for it are
    refused, before any password is hashed, until `blocked_until`."""

    key: str
    failures: int
    blocked_until: str
    backoff_seconds: float


@event_type("accounts.AccountLocked")
@dataclass(frozen=True)
class AccountLocked:
    """An account was hard-locked after too many failed logins."""

    user_id: str
    username: str
    failed_logins: int


@event_type("accounts.LockoutReplacedByAlert")
@dataclass(frozen=True)
class LockoutReplacedByAlert:
    """An account that may not be locked (its roles) crossed the lockout threshold: an alert was
    raised instead of a lockout."""

    user_id: str
    username: str
    failed_logins: int
    alert_ids: list[str]


@event_type("accounts.UserUnlocked")
@dataclass(frozen=True)
class UserUnlocked:
    """A lock, the failure count and the throttles of an account were cleared."""

    user_id: str
    username: str
    by: str | None


@event_type("accounts.UserDisabled")
@dataclass(frozen=True)
class UserDisabled:
    """A user was disabled: no login, no session, no token works for them."""

    user_id: str
    username: str
    by: str | None


@event_type("accounts.UserEnabled")
@dataclass(frozen=True)
class UserEnabled:
    """A disabled user was enabled again."""

    user_id: str
    username: str
    by: str | None


@event_type("accounts.RoleGranted")
@dataclass(frozen=True)
class RoleGranted:
    """A role was granted to a user at a site (or one zone of it)."""

    grant_id: str
    user_id: str
    username: str
    role: str
    site: str
    zone: str | None
    valid_until: str | None
    by: str | None


@event_type("accounts.RoleRevoked")
@dataclass(frozen=True)
class RoleRevoked:
    """A role grant was removed."""

    grant_id: str
    user_id: str
    username: str
    role: str
    site: str
    zone: str | None
    by: str | None


@event_type("accounts.LastUserManagerRemoved")
@dataclass(frozen=True)
class LastUserManagerRemoved:
    """A change forced on the host (`--force`) left `site` with no active user who manages users
    there: `change` (role_revoke, user_disable) of `username`'s grant or account."""

    site: str
    user_id: str
    username: str
    change: str
    by: str | None


@event_type("accounts.TokenCreated")
@dataclass(frozen=True)
class TokenCreated:
    """An API token was created (its prefix identifies it; the secret was shown once)."""

    token_id: str
    user_id: str
    username: str
    name: str
    prefix: str
    scopes: list[str]
    expires_at: str
    by: str | None


@event_type("accounts.TokenRevoked")
@dataclass(frozen=True)
class TokenRevoked:
    """An API token was revoked."""

    token_id: str
    user_id: str
    prefix: str
    by: str | None


@event_type("accounts.MfaEnrolled")
@dataclass(frozen=True)
class MfaEnrolled:
    """A user confirmed a TOTP second factor and received new recovery codes."""

    user_id: str
    username: str


@event_type("accounts.MfaReset")
@dataclass(frozen=True)
class MfaReset:
    """A user's second factor and recovery codes were removed (they must enroll again)."""

    user_id: str
    username: str
    by: str | None


@event_type("accounts.RecoveryCodeUsed")
@dataclass(frozen=True)
class RecoveryCodeUsed:
    """A recovery code was spent."""

    user_id: str
    username: str
    remaining: int


@event_type("accounts.SessionStarted")
@dataclass(frozen=True)
class SessionStarted:
    """A console session began."""

    user_id: str
    username: str
    source: str
    mfa_passed: bool
    expires_at: str


@event_type("accounts.SessionEnded")
@dataclass(frozen=True)
class SessionEnded:
    """Console sessions of a user ended (`reason`: logout, password_changed, disabled, ...)."""

    user_id: str
    username: str
    count: int
    reason: str
