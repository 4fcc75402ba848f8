"""Settings of the accounts domain: lockout, login throttling, sessions, tokens, password hashing."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.settings import SettingsSection, setting
from plantwarden.policy.roles import BUILTIN_ROLES


def _names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class AccountsSettings(SettingsSection):
    """How logins are guarded and how long sessions and tokens live."""

    section = "accounts"
    doc = (
        "Failed logins slow down exponentially per account and per source; a hard lockout applies "
        "only to accounts whose every role is listed in `lockout_roles` (an operator locked out of "
        "the console is an outage, so operators get an alert instead), and never to a site's last "
        "active user who manages users (an alert too). "
        "`plantwarden user unlock` is the break-glass path on the host."
    )

    lockout_after: int = setting(
        10, "Failed logins in a row after which an account is locked (if its roles allow it)."
    )
    lockout_roles: str = setting(
        "admin,security_analyst,auditor,engineer,viewer",
        "Comma-separated roles that may be hard-locked; an account holding any other role (by "
        "default: operator) is never locked, and raises a high-severity alert instead.",
    )
    mfa_roles: str = setting(
        "admin", "Comma-separated roles whose holders must enroll a second factor (TOTP)."
    )
    throttle_free_failures: int = setting(
        3, "Failed logins per account and per source before the backoff starts."
    )
    throttle_base_seconds: float = setting(
        1.0, "Backoff after k failures: min(base * 2**(k - free), max) seconds, for k > free."
    )
    throttle_max_seconds: float = setting(900.0, "Longest backoff, in seconds.")
    throttle_window_seconds: float = setting(
        3600.0,
        "A throttle key whose last failure is older than this starts counting again from zero.",
    )
    session_hours: float = setting(12.0, "Lifetime of a console session, in hours.")
    token_max_days: int = setting(365, "Longest lifetime of an API token, in days.")
    password_time_cost: int = setting(2, "argon2id iterations (OWASP: 2 with 19 MiB).")
    password_memory_kib: int = setting(19456, "argon2id memory in KiB (OWASP: 19456 = 19 MiB).")
    password_parallelism: int = setting(1, "argon2id lanes (OWASP: 1).")
    hash_wait_seconds: float = setting(
        10.0,
        "Longest wait for one of the two password-hashing slots before a login is refused as busy.",
    )

    def __post_init__(self) -> None:
        for key in ("lockout_roles", "mfa_roles"):
            unknown = sorted(_names(getattr(self, key)) - set(BUILTIN_ROLES))
            if unknown:
                raise ConfigurationError(
                    f"setting 'accounts.{key}' names unknown role(s) {', '.join(unknown)}: "
                    f"the roles are {', '.join(sorted(BUILTIN_ROLES))}"
                )
        positive = {
            "lockout_after": self.lockout_after,
            "throttle_max_seconds": self.throttle_max_seconds,
            "throttle_window_seconds": self.throttle_window_seconds,
            "session_hours": self.session_hours,
            "token_max_days": self.token_max_days,
            "password_time_cost": self.password_time_cost,
            "password_parallelism": self.password_parallelism,
            "hash_wait_seconds": self.hash_wait_seconds,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"setting 'accounts.{key}' must be positive, got {value}")
        if self.throttle_free_failures < 0 or self.throttle_base_seconds < 0:
            raise ConfigurationError("settings 'accounts.throttle_*' must not be negative")
        if self.password_memory_kib < 8 * self.password_parallelism:
            raise ConfigurationError(
                "setting 'accounts.password_memory_kib' must be at least 8 KiB per lane (argon2)"
            )

    @property
    def lockout_role_set(self) -> frozenset[str]:
        return _names(self.lockout_roles)

    @property
    def mfa_role_set(self) -> frozenset[str]:
        return _names(self.mfa_roles)
