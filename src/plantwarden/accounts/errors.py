"""Errors of the accounts domain.

Authentication failures share one base, `AuthenticationFailed` (the web layer answers 401), and
say as little as possible: an unknown user and a wrong password give the same message, and so do
every kind of unusable token or session.
"""

from __future__ import annotations

import math
from typing import Any

from plantwarden.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PlantwardenError


class InvalidUsername(InvalidInput):
    code = "invalid_username"


class WeakPassword(InvalidInput):
    """A new password breaks the password policy; the message says which rule."""

    code = "weak_password"


class InvalidRole(InvalidInput):
    code = "invalid_role"


class InvalidGrant(InvalidInput):
    code = "invalid_grant"


class InvalidTokenRequest(InvalidInput):
    """A token cannot be made as asked (no expiry, too long, a malformed scope)."""

    code = "invalid_token_request"


class InvalidTotpCode(InvalidInput):
    """The code given to confirm enrollment of the second factor is wrong."""

    code = "invalid_totp_code"


class UserExists(Conflict):
    code = "user_exists"


class GrantExists(Conflict):
    code = "grant_exists"


class LastUserManager(Conflict):
    """A revoke or a disable would leave a site with nobody who manages users there; the message
    names the sites and says what to do first (`details["sites"]`)."""

    code = "last_user_manager"


class MfaAlreadyEnrolled(Conflict):
    code = "mfa_already_enrolled"


class MfaNotEnrolling(Conflict):
    code = "mfa_not_enrolling"


class UserNotFound(NotFound):
    code = "user_not_found"


class GrantNotFound(NotFound):
    code = "grant_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class AuthenticationFailed(PermissionDenied):
    """Base of every refusal to authenticate (the web layer answers 401)."""

    code = "authentication_failed"


class InvalidCredentials(AuthenticationFailed):
    """Unknown user or wrong password: one message for both."""

    code = "invalid_credentials"

    def __init__(self, message: str = "invalid user name or password", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class MfaRequired(AuthenticationFailed):
    """The password was right, but the second factor was missing or wrong."""

    code = "mfa_required"

    def __init__(self, message: str = "a valid second-factor code is required", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class InvalidToken(AuthenticationFailed):
    """Unknown, revoked or expired token, or its user is disabled: one message for all."""

    code = "invalid_token"

    def __init__(self, message: str = "invalid or expired token", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class InvalidSession(AuthenticationFailed):
    """Unknown, ended or expired session, or its user is disabled: one message for all."""

    code = "invalid_session"

    def __init__(self, message: str = "invalid or expired session", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class AccountLocked(AuthenticationFailed):
    """Too many failed logins on an account whose roles allow a hard lockout."""

    code = "account_locked"

    def __init__(
        self,
        message: str = "the account is locked after too many failed logins; "
        "an administrator can unlock it (`plantwarden user unlock`)",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)


class AccountDisabled(AuthenticationFailed):
    code = "account_disabled"

    def __init__(self, message: str = "the account is disabled", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class SetupRequired(PermissionDenied):
    """The user must first set a password and/or enroll the second factor (`details["steps"]`)."""

    code = "account_setup_required"


class LoginThrottled(PermissionDenied):
    """Too many failures for this account or source: try again after `retry_after_seconds`
    (the web layer answers 429 with `Retry-After`). Refused before any hash is computed."""

    code = "login_throttled"

    def __init__(self, retry_after_seconds: float, message: str | None = None) -> None:
        self.retry_after_seconds = max(1, math.ceil(retry_after_seconds))
        super().__init__(
            message or f"too many failed logins: try again in {self.retry_after_seconds} s",
            details={"retry_after_seconds": self.retry_after_seconds},
        )


class HashingBusy(PlantwardenError):
    """Every password-hashing slot stayed busy for too long (the web layer answers 503)."""

    code = "hashing_busy"
