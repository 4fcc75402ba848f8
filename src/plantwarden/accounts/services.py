"""Use cases of accounts: users and their grants, passwords, the second factor, logins, console
sessions and API tokens. Every call takes a session and a `Context`; every security-relevant
change records a domain event through `_security_event` (the one place an audit append joins).

Settings and the accounts key: functions that need them take `settings=` / `secrets=`; when those
are omitted they use what the process set once with `configure(...)` (the server does this at
start), and for settings otherwise the defaults. Without a key, second-factor calls refuse.

`login` is the one use case that commits: a failed login must be counted even though the call
raises (and the caller's transaction then rolls back), so the failure bookkeeping (throttle,
failure count, lock or alert, events) is committed before the error is raised.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from plantwarden.accounts import passwords, throttle, totp
from plantwarden.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    AuthenticationFailed,
    GrantExists,
    GrantNotFound,
    InvalidCredentials,
    InvalidGrant,
    InvalidRole,
    InvalidSession,
    InvalidToken,
    InvalidTokenRequest,
    InvalidTotpCode,
    InvalidUsername,
    LastUserManager,
    MfaAlreadyEnrolled,
    MfaNotEnrolling,
    MfaRequired,
    SetupRequired,
    TokenNotFound,
    UserExists,
    UserNotFound,
    WeakPassword,
)
from plantwarden.accounts.events import (
    AccountLocked as AccountLockedEvent,
)
from plantwarden.accounts.events import (
    LastUserManagerRemoved,
    LockoutReplacedByAlert,
    LoginFailed,
    LoginSucceeded,
    MfaEnrolled,
    MfaReset,
    PasswordChanged,
    RecoveryCodeUsed,
    RoleGranted,
    RoleRevoked,
    SessionEnded,
    SessionStarted,
    TokenCreated,
    TokenRevoked,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserUnlocked,
)
from plantwarden.accounts.events import (
    LoginThrottled as LoginThrottledEvent,
)
from plantwarden.accounts.models import ApiToken, RecoveryCode, RoleGrant, User, WebSession
from plantwarden.accounts.passwords import Argon2Parameters
from plantwarden.accounts.secrets import AccountSecrets
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, raise_alert
from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditLog, AuditSettings
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.errors import ConfigurationError, InvalidInput
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id
from plantwarden.core.parsing import one_line
from plantwarden.core.settings import Settings
from plantwarden.policy.model import Grant, PolicyModel, Subject, action_matches
from plantwarden.policy.roles import BUILTIN_ROLES, PLATFORM_ACTIONS, builtin_model

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")  # 3-64 characters
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # sites and zones, as `zones` has them
BEARER_TAG = "pwt"
TOKEN_PREFIX_HEX = 12  # the lookup prefix: 48 random bits, shown in listings
TOKEN_SECRET_HEX = 64  # 256 random bits
_TOKEN = re.compile(rf"^{BEARER_TAG}_([0-9a-f]{{{TOKEN_PREFIX_HEX}}})_([0-9a-f]{{{TOKEN_SECRET_HEX}}})$")
ONE_TIME_PASSWORD_GROUPS = 5  # 5 x 4 base32 characters = 100 random bits
TOUCH_INTERVAL = timedelta(seconds=60)  # last_seen_at / last_used_at are written at most this often
DISPLAY_NAME_LENGTH = 200  # the column's length, and the API's limit
TOKEN_NAME_LENGTH = 120  # the column's length, and the API's limit
LOCKOUT_RULE_ID = "PW-AUTH-001"
LOCKOUT_DETECTOR = "accounts.login"

UserId = uuid.UUID | str
"""A user's id, as a UUID or its string form (what `Actor.user_id` holds)."""


# --- configuration of the process -------------------------------------------------------------


@dataclass
class _Configured:
    settings: AccountsSettings | None = None
    secrets: AccountSecrets | None = None
    audit: AuditLog | None = None


_configured = _Configured()


def configure(
    *,
    settings: AccountsSettings | None = None,
    secrets: AccountSecrets | None = None,
    audit: AuditLog | None = None,
) -> None:
    """Set, once per process, the settings and the accounts key that calls use by default
    (for example `configure(settings=s[AccountsSettings],
    secrets=AccountSecrets.load_or_create(core.data_path))` when the server starts)."""
    if settings is not None:
        _configured.settings = settings
    if secrets is not None:
        _configured.secrets = secrets
    if audit is not None:
        _configured.audit = audit


def configure_for(settings: Settings) -> None:
    """Configure this process from its resolved settings: the accounts settings, the accounts
    key and the audit log of the data directory (keys are created on first use)."""
    core = settings[CoreSettings]
    configure(
        settings=settings[AccountsSettings],
        secrets=AccountSecrets.load_or_create(core.data_path),
        audit=AuditLog.open(core, settings[AuditSettings]),
    )


def audit_log() -> AuditLog | None:
    """The audit log this process appends to (None until configured)."""
    return _configured.audit


def _settings(explicit: AccountsSettings | None) -> AccountsSettings:
    return explicit or _configured.settings or AccountsSettings()


def _secrets(explicit: AccountSecrets | None) -> AccountSecrets:
    chosen = explicit or _configured.secrets
    if chosen is None:
        raise ConfigurationError(
            "the accounts key is not loaded: the process must call accounts.services.configure("
            "secrets=AccountSecrets.load_or_create(data_dir)) before second-factor operations"
        )
    return chosen


def hash_parameters(settings: AccountsSettings | None = None) -> Argon2Parameters:
    """The argon2id parameters the settings ask for."""
    cfg = _settings(settings)
    return Argon2Parameters(
        time_cost=cfg.password_time_cost,
        memory_kib=cfg.password_memory_kib,
        parallelism=cfg.password_parallelism,
    )


# --- the one way security events are recorded -------------------------------------------------


_FAILURES = frozenset({"accounts.LoginFailed", "accounts.AccountLocked"})
_DENIALS = frozenset({"accounts.LoginThrottled"})


def _security_event(session: Session, ctx: Context, payload: object, *, site: str | None = None) -> None:
    """Record a security-relevant domain event and, when the process has an audit log, its
    audit entry, in the session's transaction. Every accounts event passes through here (the
    event first: the log's lock, then the audit chain's, in that order everywhere)."""
    event = eventlog.record(session, envelope(payload, clock=ctx.clock, source=ctx.source, site=site))
    audit = _configured.audit
    if audit is None:
        return
    outcome = "failure" if event.type in _FAILURES else "denied" if event.type in _DENIALS else "success"
    target = event.payload.get("username")
    domain, _, name = event.type.partition(".")
    audit.append(
        session,
        actor=ctx.actor,
        source=ctx.source,
        action=f"{domain}.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}",  # accounts.login_failed
        outcome=outcome,
        site=site,
        target=str(target) if target is not None else None,
        details=dict(event.payload),
        clock=ctx.clock,
    )


# --- users ------------------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """The canonical form of a user name (lower case, trimmed), or `InvalidUsername`."""
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidUsername(
            f"user name {username!r} is not valid: use 3-64 lower-case letters, digits, and inner "
            "dots, hyphens or underscores"
        )
    return name


def checked_display_name(display_name: str) -> str:
    """A display name without spaces at its ends (it may be empty), or `InvalidInput`: one cut to
    fit its column would lose its end unseen, and a line break or a control character would break
    the lines that show it (`user list`)."""
    return one_line(display_name, "the display name", DISPLAY_NAME_LENGTH)


def create_user(
    session: Session,
    ctx: Context,
    username: str,
    display_name: str = "",
    password: str | None = None,
    *,
    settings: AccountsSettings | None = None,
) -> tuple[User, str | None]:
    """Create a user. Without `password`, a one-time password is generated and returned (show it
    once): it leads only to setting a password, and to enrolling the second factor where the
    user's roles require one."""
    cfg = _settings(settings)
    name, shown = normalize_username(username), checked_display_name(display_name)
    if session.scalars(select(User.id).where(User.username == name)).first() is not None:
        raise UserExists(f"user {name!r} already exists", details={"username": name})
    one_time: str | None = None
    if password is None:
        one_time = _one_time_password()
        secret = one_time
    else:
        passwords.check_password_policy(name, password)
        secret = password
    user = User(
        id=new_id(),
        username=name,
        display_name=shown,
        disabled=False,
        password_hash=passwords.hash_password(
            secret, hash_parameters(cfg), wait_seconds=cfg.hash_wait_seconds
        ),
        must_change_password=one_time is not None,
        one_time_password=one_time is not None,
        mfa_secret=None,
        mfa_enabled=False,
        mfa_last_step=None,
        created_at=ctx.clock.now(),
        last_login_at=None,
        locked=False,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    _security_event(session, ctx, UserCreated(str(user.id), name, one_time is not None, ctx.actor))
    return user, one_time


def _one_time_password() -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: read aloud and typed by hand
    groups = ["".join(random.choice(alphabet) for _ in range(4)) for _ in range(ONE_TIME_PASSWORD_GROUPS)]
    return "-".join(groups)


def get_user(session: Session, user_id: UserId) -> User:
    """The user with this id, or `UserNotFound`."""
    try:
        key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        raise UserNotFound(f"no user with id {user_id!r}") from None
    user = session.get(User, key)
    if user is None:
        raise UserNotFound(f"no user with id {key}")
    return user


def get_user_by_name(session: Session, username: str) -> User:
    """The user with this name (any case), or `UserNotFound`."""
    name = username.strip().lower()
    user = session.scalars(select(User).where(User.username == name)).first()
    if user is None:
        raise UserNotFound(f"no user {name!r}", details={"username": name})
    return user


def list_users(session: Session) -> Sequence[User]:
    """Every user with their grants, by name."""
    return session.scalars(select(User).options(selectinload(User.grants)).order_by(User.username)).all()


def set_password(
    session: Session,
    ctx: Context,
    user_id: UserId,
    new_password: str,
    *,
    keep_session_token: str | None = None,
    settings: AccountsSettings | None = None,
) -> User:
    """Set a user's password (checked against the policy; it must differ from the current one).
    Clears the one-time-password and must-change flags, and ends every console session of the
    user except the one whose token is `keep_session_token` (the caller's own)."""
    cfg = _settings(settings)
    user = get_user(session, user_id)
    passwords.check_password_policy(user.username, new_password)
    if user.password_hash is not None and passwords.verify_password(
        new_password, user.password_hash, wait_seconds=cfg.hash_wait_seconds
    ):
        raise WeakPassword("the new password must differ from the current one")
    user.password_hash = passwords.hash_password(
        new_password, hash_parameters(cfg), wait_seconds=cfg.hash_wait_seconds
    )
    user.must_change_password = False
    user.one_time_password = False
    keep = _session_id(keep_session_token) if keep_session_token else None
    ended = _end_sessions(session, ctx, user, "password_changed", keep_session_id=keep)
    session.flush()
    _security_event(session, ctx, PasswordChanged(str(user.id), user.username, ctx.actor, ended))
    return user


def disable_user(session: Session, ctx: Context, username: str, *, force: bool = False) -> User:
    """Disable a user: logins, sessions and tokens stop working; their sessions end.

    `LastUserManager` (the refusal audited) when this would leave a site with no active user who
    manages users there; `force` (the host's CLI only) disables them anyway, and records
    `LastUserManagerRemoved` for each such site."""
    user = get_user_by_name(session, username)
    # The account's row first, then the sites' admin grants (`_keep_user_managers`): the order of
    # a failed login at the lockout threshold, which writes the row and then checks the grants
    # (the other order deadlocks with it on PostgreSQL). Read again: such a login may have locked it.
    session.refresh(user, with_for_update=True)
    if not user.disabled:
        sites = _keep_user_managers(session, ctx, user, list(user.grants), "user_disable", force=force)
        user.disabled = True
        _end_sessions(session, ctx, user, "disabled")
        session.flush()
        _confirm_user_managers(session, user, list(user.grants), sites, "user_disable")
        _security_event(session, ctx, UserDisabled(str(user.id), user.username, ctx.actor))
    return user


def enable_user(session: Session, ctx: Context, username: str) -> User:
    """Enable a disabled user again."""
    user = get_user_by_name(session, username)
    if user.disabled:
        user.disabled = False
        session.flush()
        _security_event(session, ctx, UserEnabled(str(user.id), user.username, ctx.actor))
    return user


def unlock_user(session: Session, ctx: Context, username: str, sources: Sequence[str] = ()) -> User:
    """Clear an account's lock, its failure count and its throttle (and the throttles of the
    given source addresses): the break-glass path, `plantwarden user unlock`."""
    user = get_user_by_name(session, username)
    user.locked = False
    user.failed_logins = 0
    throttle.reset(session, [throttle.user_key(user.username), *(throttle.source_key(s) for s in sources)])
    session.flush()
    _security_event(session, ctx, UserUnlocked(str(user.id), user.username, ctx.actor))
    return user


# --- grants and the policy --------------------------------------------------------------------


def grant_role(
    session: Session,
    ctx: Context,
    username: str,
    role: str,
    site: str,
    zone: str | None = None,
    valid_until: datetime | None = None,
) -> RoleGrant:
    """Grant a built-in role to a user at a site, or in one zone of it, optionally until a time."""
    user = get_user_by_name(session, username)
    check_grant_input(role, site, zone)
    now = ctx.clock.now()
    if valid_until is not None:
        if valid_until.tzinfo is None:
            raise InvalidGrant("valid_until needs a timezone")
        if valid_until <= now:
            raise InvalidGrant("valid_until is in the past")
    where = f"{site}/{zone}" if zone else site
    already = GrantExists(
        f"{user.username} already holds {role} at {where}",
        details={"username": user.username, "role": role, "site": site, "zone": zone},
    )
    if _find_grant(session, user, role, site, zone) is not None:
        raise already
    grant = RoleGrant(
        id=new_id(),
        user_id=user.id,
        role=role,
        site=site,
        zone=zone,
        valid_until=valid_until,
        granted_by=ctx.actor,
        created_at=now,
    )
    session.add(grant)
    try:
        session.flush()
    except IntegrityError:  # the same grant, committed by someone else since the check above
        raise already from None
    event = RoleGranted(
        str(grant.id),
        str(user.id),
        user.username,
        role,
        site,
        zone,
        valid_until.isoformat() if valid_until else None,
        ctx.actor,
    )
    _security_event(session, ctx, event, site=site)
    return grant


def revoke_grant(
    session: Session,
    ctx: Context,
    username: str,
    role: str,
    site: str,
    zone: str | None = None,
    *,
    force: bool = False,
) -> RoleGrant:
    """Remove the grant of `role` at `site` (or `zone` of it) from a user; returns it (deleted).

    `LastUserManager` (the refusal audited) when this would leave the site with no active user
    who manages users there; `force` (the host's CLI only) revokes it anyway, and records
    `LastUserManagerRemoved`."""
    user = get_user_by_name(session, username)
    grant = _find_grant(session, user, role, site, zone)
    if grant is None:
        where = f"{site}/{zone}" if zone else site
        raise GrantNotFound(f"{user.username} holds no {role} at {where}")
    sites = _keep_user_managers(session, ctx, user, [grant], "role_revoke", force=force)
    session.delete(grant)
    session.flush()
    _confirm_user_managers(session, user, [grant], sites, "role_revoke")
    event = RoleRevoked(str(grant.id), str(user.id), user.username, role, site, zone, ctx.actor)
    _security_event(session, ctx, event, site=site)
    return grant


def list_grants(session: Session, username: str | None = None) -> Sequence[RoleGrant]:
    """Role grants (of one user, or all), by user name, site, zone and role."""
    statement = (
        select(RoleGrant)
        .join(User)
        .order_by(User.username, RoleGrant.site, RoleGrant.zone.nulls_first(), RoleGrant.role)
    )
    if username is not None:
        statement = statement.where(User.id == get_user_by_name(session, username).id)
    return session.scalars(statement).all()


def check_grant_input(role: str, site: str, zone: str | None) -> None:
    """InvalidRole or InvalidGrant for an unknown role or a malformed site or zone."""
    if role not in BUILTIN_ROLES:
        raise InvalidRole(
            f"unknown role {role!r}: one of {', '.join(sorted(BUILTIN_ROLES))}", details={"role": role}
        )
    if not SLUG.fullmatch(site):
        raise InvalidGrant(f"site {site!r} is not a valid site id")
    if zone is not None and not SLUG.fullmatch(zone):
        raise InvalidGrant(f"zone {zone!r} is not a valid zone name")


def _find_grant(session: Session, user: User, role: str, site: str, zone: str | None) -> RoleGrant | None:
    zone_matches = RoleGrant.zone.is_(None) if zone is None else RoleGrant.zone == zone
    return session.scalars(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id, RoleGrant.role == role, RoleGrant.site == site, zone_matches
        )
    ).first()


def current_roles(session: Session, user: User, now: datetime) -> set[str]:
    """The roles a user holds now (grants not yet expired), anywhere."""
    rows = session.execute(
        select(RoleGrant.role, RoleGrant.valid_until).where(RoleGrant.user_id == user.id)
    ).all()
    return {row.role for row in rows if row.valid_until is None or row.valid_until > now}


def requires_mfa(
    session: Session, user: User, now: datetime, *, settings: AccountsSettings | None = None
) -> bool:
    """Whether the user holds a role that makes the second factor mandatory (admin by default)."""
    return bool(current_roles(session, user, now) & _settings(settings).mfa_role_set)


def pending_setup(
    session: Session, user: User, now: datetime, *, settings: AccountsSettings | None = None
) -> list[str]:
    """What the user must do before anything else: "set_password", "enroll_mfa" (in that order)."""
    steps = []
    if user.needs_password_change:
        steps.append("set_password")
    if not user.mfa_enabled and requires_mfa(session, user, now, settings=settings):
        steps.append("enroll_mfa")
    return steps


def policy_model(session: Session) -> PolicyModel:
    """The built-in roles and every grant of every enabled user (subject: `user <username>`)."""
    rows = session.execute(
        select(User.username, RoleGrant.role, RoleGrant.site, RoleGrant.zone, RoleGrant.valid_until)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(User.disabled.is_(False))
        .order_by(User.username, RoleGrant.site, RoleGrant.zone.nulls_first(), RoleGrant.role)
    ).all()
    return builtin_model(
        Grant(Subject("user", row.username), row.role, row.site, row.zone, row.valid_until) for row in rows
    )


# --- the last user manager of a site ----------------------------------------------------------

USERS_MANAGE = "platform:users.manage"
USER_MANAGER_ROLES = frozenset(
    role.name
    for role in BUILTIN_ROLES.values()
    if any(action_matches(pattern, USERS_MANAGE) for rule in role.rules for pattern in rule.actions)
)
"""The roles that give `platform:users.manage` (the administrator's)."""


def user_managers(session: Session, sites: Sequence[str]) -> Sequence[tuple[str, uuid.UUID, str]]:
    """(site, grant id, user name) of every lasting user manager at `sites`: an active user (not
    disabled, not locked) with a site-wide grant, without an end, of a role that gives
    `platform:users.manage`. A zone grant manages users of that zone only, and a grant with an
    end leaves the site unmanaged when it ends: neither keeps a site managed."""
    rows = session.execute(
        select(RoleGrant.site, RoleGrant.id, User.username)
        .join(User, User.id == RoleGrant.user_id)
        .where(
            RoleGrant.site.in_(sites),
            RoleGrant.zone.is_(None),
            RoleGrant.role.in_(USER_MANAGER_ROLES),
            RoleGrant.valid_until.is_(None),
            User.disabled.is_(False),
            User.locked.is_(False),
        )
        .order_by(RoleGrant.site, User.username)
    ).all()
    return [(row.site, row.id, row.username) for row in rows]


def _manages_users(user: User, grant: RoleGrant) -> bool:
    return (
        grant.role in USER_MANAGER_ROLES
        and grant.zone is None
        and grant.valid_until is None
        and not user.disabled
        and not user.locked
    )


def _sites_left_unmanaged(session: Session, user: User, grants: Sequence[RoleGrant]) -> list[str]:
    """The sites where `user` is, through `grants` (those a change takes away), the last lasting
    user manager. On PostgreSQL the sites' manager grants are locked first, so that two changes
    at a site take turns and the second sees what the first left (SQLite writes one at a time:
    `_confirm_user_managers` checks again once the change is written)."""
    sites = sorted({grant.site for grant in grants if _manages_users(user, grant)})
    if not sites:
        return []
    session.execute(
        select(RoleGrant.id)
        .where(RoleGrant.site.in_(sites), RoleGrant.zone.is_(None), RoleGrant.role.in_(USER_MANAGER_ROLES))
        .order_by(RoleGrant.id)
        .with_for_update()
    ).all()
    taken = {grant.id for grant in grants}
    kept = {site for site, grant_id, _ in user_managers(session, sites) if grant_id not in taken}
    return [site for site in sites if site not in kept]


def _keep_user_managers(
    session: Session, ctx: Context, user: User, grants: Sequence[RoleGrant], change: str, *, force: bool
) -> list[str]:
    """Refuse (`LastUserManager`, audited) a change that takes `grants` from `user` (revoked, or
    the user disabled or locked) when it would leave a site without a user manager; with `force`,
    record `LastUserManagerRemoved` instead. Returns the sites to check again after the change.
    Call it before the caller's transaction writes anything (the refusal is committed on a
    session of its own, and on SQLite a second writer waits)."""
    sites = _sites_left_unmanaged(session, user, grants)
    if not sites:
        return sorted({grant.site for grant in grants if _manages_users(user, grant)})
    if force:
        for site in sites:
            removed = LastUserManagerRemoved(site, str(user.id), user.username, change, ctx.actor)
            _security_event(session, ctx, removed, site=site)
        return []
    error = _last_user_manager(user, grants, sites, change)
    _audit_refusal(session, ctx, f"accounts.{change}_refused", user.username, sites, error)
    raise error


def _confirm_user_managers(
    session: Session, user: User, grants: Sequence[RoleGrant], sites: Sequence[str], change: str
) -> None:
    """After the change is written: `LastUserManager` if a change committed meanwhile by someone
    else left one of `sites` without a user manager (the caller's transaction then rolls back;
    this race is not audited: the refusal cannot be committed while the change holds the lock)."""
    kept = {site for site, _, _ in user_managers(session, sites)} if sites else set()
    lost = [site for site in sites if site not in kept]
    if lost:
        raise _last_user_manager(user, grants, lost, change)


def _last_user_manager(
    user: User, grants: Sequence[RoleGrant], sites: Sequence[str], change: str
) -> LastUserManager:
    where = f"site {sites[0]}" if len(sites) == 1 else f"sites {', '.join(sites)}"
    if change == "role_revoke":
        doing = f"revoking {grants[0].role} at {grants[0].site} from {user.username}"
    else:
        doing = f"disabling {user.username}"
    return LastUserManager(
        f"{doing} would leave {where} with no active user who manages users there "
        f"({USERS_MANAGE}): first grant {' or '.join(sorted(USER_MANAGER_ROLES))} at {where}, "
        "without an end, to another user (or unlock or enable one who holds it)",
        details={"username": user.username, "sites": list(sites), "change": change},
    )


def _audit_refusal(
    session: Session, ctx: Context, action: str, target: str, sites: Sequence[str], error: LastUserManager
) -> None:
    """A refused change in the audit log, committed at once on a session of its own (on the
    caller's engine), so that it stays when the caller's transaction rolls back on the error."""
    audit = _configured.audit
    if audit is None:
        return
    details = {**error.details, "reason": error.code, "message": error.message}
    with Session(bind=session.get_bind()) as own, own.begin():
        audit.record(
            own,
            ctx,
            action,
            site=sites[0] if len(sites) == 1 else None,
            target=target,
            details=details,
            outcome="denied",
        )


# --- logging in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    """A successful login. `needs_password_change` / `needs_mfa_enrollment`: the session may only
    be used to do that first; `mfa_passed`: a second factor was checked."""

    user: User
    needs_password_change: bool
    needs_mfa_enrollment: bool
    mfa_passed: bool


def login(
    session: Session,
    ctx: Context,
    username: str,
    password: str,
    source: str,
    totp_code: str | None = None,
    *,
    settings: AccountsSettings | None = None,
    secrets: AccountSecrets | None = None,
) -> LoginResult:
    """Check a user name, password and (for users with a second factor) a TOTP or recovery code.

    Refuses, in this order and before any hash is computed: a throttled account or source
    (`LoginThrottled`), a locked account (`AccountLocked`). Then the password is verified (against
    a dummy hash for an unknown user, so both cost the same): `InvalidCredentials`; a disabled
    user: `AccountDisabled`; a missing or wrong code: `MfaRequired`. Every failure after hashing
    is counted (and committed) before the error is raised.
    """
    cfg = _settings(settings)
    now = ctx.clock.now()
    throttle.check(session, username, source, now)
    name = username.strip().lower()
    user = (
        session.scalars(select(User).where(User.username == name)).first()
        if USERNAME.fullmatch(name)
        else None
    )
    if user is not None and user.locked:
        raise AccountLocked()
    params = hash_parameters(cfg)
    if user is None or user.password_hash is None:
        passwords.verify_password(password, passwords.dummy_hash(params), wait_seconds=cfg.hash_wait_seconds)
        _login_failed(session, ctx, cfg, username, source, user, "invalid_credentials", InvalidCredentials())
    assert user.password_hash is not None
    if not passwords.verify_password(password, user.password_hash, wait_seconds=cfg.hash_wait_seconds):
        _login_failed(session, ctx, cfg, username, source, user, "invalid_credentials", InvalidCredentials())
    if user.disabled:
        failed = LoginFailed(user.username, source[:200], "disabled", True, user.failed_logins)
        _security_event(session, ctx, failed)
        session.commit()
        raise AccountDisabled()
    recovery_used = False
    if user.mfa_enabled:
        factor = _second_factor(session, ctx, user, totp_code, secrets)
        if factor is None:
            _login_failed(session, ctx, cfg, username, source, user, "mfa_required", MfaRequired())
        recovery_used = factor == "recovery"
    if not user.one_time_password and passwords.needs_rehash(user.password_hash, params):
        user.password_hash = passwords.hash_password(password, params, wait_seconds=cfg.hash_wait_seconds)
    user.failed_logins = 0
    user.last_login_at = now
    throttle.reset(session, [throttle.user_key(user.username)])
    throttle.prune(session, now, cfg)
    session.flush()
    succeeded = LoginSucceeded(str(user.id), user.username, source[:200], user.mfa_enabled, recovery_used)
    _security_event(session, ctx, succeeded)
    return LoginResult(
        user=user,
        needs_password_change=user.needs_password_change,
        needs_mfa_enrollment=not user.mfa_enabled and requires_mfa(session, user, now, settings=cfg),
        mfa_passed=user.mfa_enabled,
    )


def _second_factor(
    session: Session, ctx: Context, user: User, code: str | None, secrets: AccountSecrets | None
) -> str | None:
    """Accept a TOTP code (never twice: "totp") or an unused recovery code (spent: "recovery");
    None for anything else."""
    if not code:
        return None
    if totp.looks_like_recovery_code(code):
        return "recovery" if _consume_recovery_code(session, ctx, user, code) else None
    if user.mfa_secret is None:
        return None
    secret = _secrets(secrets).decrypt(user.mfa_secret, user.id.bytes)
    step = totp.verify(secret, code, ctx.clock.now(), user.mfa_last_step)
    return "totp" if step is not None and _consume_step(session, user, step) else None


def _consume_step(session: Session, user: User, step: int) -> bool:
    """Record `step` as used, atomically: False when a concurrent login used it (or a later one)."""
    result = session.execute(
        update(User)
        .where(User.id == user.id, (User.mfa_last_step.is_(None)) | (User.mfa_last_step < step))
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user, ["mfa_last_step"])
    return bool(getattr(result, "rowcount", 0) == 1)


def _login_failed(
    session: Session,
    ctx: Context,
    cfg: AccountsSettings,
    username: str,
    source: str,
    user: User | None,
    reason: str,
    error: AuthenticationFailed,
) -> NoReturn:
    """Count a failed login (throttle keys, the user's failures, lock or alert), record it,
    commit, and raise `error`."""
    now = ctx.clock.now()
    backoffs = throttle.record_failure(session, username, source, now, cfg)
    failed = 0
    if user is not None:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .execution_options(synchronize_session=False)
        )
        session.refresh(user, ["failed_logins"])
        failed = user.failed_logins
        if failed >= cfg.lockout_after:
            _lock_or_alert(session, ctx, cfg, user, source, now)
    shown = user.username if user is not None else _loggable_name(username)
    _security_event(session, ctx, LoginFailed(shown, source[:200], reason, user is not None, failed))
    for backoff in backoffs:
        event = LoginThrottledEvent(
            backoff.key, backoff.failures, backoff.blocked_until.isoformat(), backoff.seconds
        )
        _security_event(session, ctx, event)
    session.commit()
    raise error


def _loggable_name(username: str) -> str:
    """An unknown user name as events show it: only if it has the form of a user name (people
    type their password into the name field; those stay out of the log)."""
    name = username.strip().lower()
    return name if USERNAME.fullmatch(name) else "(malformed)"


def _lock_or_alert(
    session: Session, ctx: Context, cfg: AccountsSettings, user: User, source: str, now: datetime
) -> None:
    roles = current_roles(session, user, now)
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)))
    # Locking the last user manager of a site would leave it to the host's CLI: anyone who knows
    # the name could do that with wrong passwords. Such an account gets the alert instead.
    last_at = _sites_left_unmanaged(session, user, grants)
    if roles <= cfg.lockout_role_set and not last_at:
        user.locked = True
        session.flush()
        _security_event(session, ctx, AccountLockedEvent(str(user.id), user.username, user.failed_logins))
        return
    # An account that may not be locked (an operator's: locking it out of the console would be an
    # outage of an essential function) raises an alert at each site where it holds such a role.
    sites = sorted(
        {g.site for g in grants if g.valid_at(now) and g.role not in cfg.lockout_role_set} | set(last_at)
    )
    why = (
        f"who is the last active user who manages users at {', '.join(last_at)}"
        if last_at
        else f"whose roles ({', '.join(sorted(roles))}) exclude a hard lockout"
    )
    alert_ids = []
    for site in sites:
        alert = raise_alert(
            session,
            ctx,
            AlertDraft(
                site=site,
                title=f"Repeated failed logins for {user.username}",
                severity=Severity.HIGH,
                detector=LOCKOUT_DETECTOR,
                rule_id=LOCKOUT_RULE_ID,
                rule_name="Brute force against an account that is never locked",
                description=(
                    f"{user.failed_logins} failed logins in a row for {user.username}, {why}, so "
                    "the account is not locked. Logins stay slowed down "
                    "per account and per source; check who is trying, and reset the password or "
                    "disable the account if it is under attack."
                ),
                techniques=("T1110",),
                evidence=(
                    {
                        "kind": "login",
                        "username": user.username,
                        "src": source[:200],
                        "failed_logins": user.failed_logins,
                        "at": now.isoformat(),
                    },
                ),
                dedup_key=f"{LOCKOUT_RULE_ID}:user:{user.id}:site:{site}",
                seen_at=now,
            ),
        )
        alert_ids.append(str(alert.id))
    event = LockoutReplacedByAlert(str(user.id), user.username, user.failed_logins, alert_ids)
    _security_event(session, ctx, event)


# --- the second factor ------------------------------------------------------------------------


def enroll_totp(
    session: Session, ctx: Context, user_id: UserId, *, secrets: AccountSecrets | None = None
) -> tuple[str, str]:
    """Start enrolling a TOTP authenticator: a secret (stored encrypted, not yet in force).
    Returns the secret in base32 and the `otpauth://` URI; `confirm_totp` puts it in force. An
    enrolment not confirmed yet keeps its secret: the page shown again (reloaded, or fetched twice
    by a browser) shows the secret the user may already have entered in the app."""
    key = _secrets(secrets)
    user = get_user(session, user_id)
    if user.mfa_enabled:
        raise MfaAlreadyEnrolled(f"{user.username} already has a second factor: reset it first")
    secret = None
    if user.mfa_secret is not None:
        try:
            secret = key.decrypt(user.mfa_secret, user.id.bytes)
        except ConfigurationError:  # sealed with an earlier accounts key, or damaged: start afresh
            secret = None
    if secret is None:
        secret = totp.generate_secret()
        user.mfa_secret = key.encrypt(secret, user.id.bytes)
        user.mfa_last_step = None
        session.flush()
    return totp.secret_to_base32(secret), totp.provisioning_uri(secret, user.username)


def confirm_totp(
    session: Session, ctx: Context, user_id: UserId, code: str, *, secrets: AccountSecrets | None = None
) -> list[str]:
    """Put the enrolled authenticator in force with one valid code; returns the new recovery
    codes (show them once: only their hashes are kept)."""
    key = _secrets(secrets)
    user = get_user(session, user_id)
    if user.mfa_enabled:
        raise MfaAlreadyEnrolled(f"{user.username} already has a second factor")
    if user.mfa_secret is None:
        raise MfaNotEnrolling(f"{user.username} has not started enrolling a second factor")
    step = totp.verify(key.decrypt(user.mfa_secret, user.id.bytes), code, ctx.clock.now(), None)
    if step is None:
        raise InvalidTotpCode("the code does not match: check the authenticator's clock and try again")
    user.mfa_enabled = True
    user.mfa_last_step = step
    codes = _replace_recovery_codes(session, ctx, user)
    _security_event(session, ctx, MfaEnrolled(str(user.id), user.username))
    return codes


def regenerate_recovery_codes(session: Session, ctx: Context, user_id: UserId) -> list[str]:
    """New recovery codes for a user with a second factor; the old ones stop working."""
    user = get_user(session, user_id)
    if not user.mfa_enabled:
        raise MfaNotEnrolling(f"{user.username} has no second factor")
    return _replace_recovery_codes(session, ctx, user)


def _replace_recovery_codes(session: Session, ctx: Context, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.generate_recovery_codes()
    now = ctx.clock.now()
    for code in codes:
        session.add(
            RecoveryCode(
                id=new_id(),
                user_id=user.id,
                code_hash=totp.hash_recovery_code(code),
                created_at=now,
                used_at=None,
            )
        )
    session.flush()
    return codes


def use_recovery_code(session: Session, ctx: Context, user_id: UserId, code: str) -> bool:
    """Spend a recovery code of the user: True if it was valid and unused (now it is used)."""
    user = get_user(session, user_id)
    return user.mfa_enabled and _consume_recovery_code(session, ctx, user, code)


def _consume_recovery_code(session: Session, ctx: Context, user: User, code: str) -> bool:
    result = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == totp.hash_recovery_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=ctx.clock.now())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    remaining = remaining_recovery_codes(session, user.id)
    _security_event(session, ctx, RecoveryCodeUsed(str(user.id), user.username, remaining))
    return True


def remaining_recovery_codes(session: Session, user_id: UserId) -> int:
    """How many unused recovery codes the user has."""
    user = get_user(session, user_id)
    count = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


def reset_mfa(session: Session, ctx: Context, username: str) -> User:
    """Remove a user's second factor and recovery codes (a lost phone); they enroll again at the
    next login where their roles require it. Their console sessions end."""
    user = get_user_by_name(session, username)
    user.mfa_secret = None
    user.mfa_enabled = False
    user.mfa_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    _end_sessions(session, ctx, user, "mfa_reset")
    session.flush()
    _security_event(session, ctx, MfaReset(str(user.id), user.username, ctx.actor))
    return user


# --- API tokens -------------------------------------------------------------------------------


def create_token(
    session: Session,
    ctx: Context,
    user_id: UserId,
    name: str,
    scopes: Sequence[str],
    expires_in: timedelta,
    *,
    settings: AccountsSettings | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token for a user; returns it and its plaintext `pwt_<prefix>_<secret>`
    (show it once: only SHA-256 of the secret is kept). An expiry is required (at most
    `accounts.token_max_days`); `scopes` are platform actions, empty for all of the user's rights."""
    cfg = _settings(settings)
    user = get_user(session, user_id)
    if user.disabled:
        raise InvalidTokenRequest(f"{user.username} is disabled")
    now = ctx.clock.now()
    steps = pending_setup(session, user, now, settings=cfg)
    if steps:
        raise SetupRequired(
            f"{user.username} must first {' and '.join(s.replace('_', ' ') for s in steps)}",
            details={"steps": steps},
        )
    try:  # a line break would break `token list`
        label = one_line(name, "the token name", TOKEN_NAME_LENGTH, empty="a token needs a name")
    except InvalidInput as error:  # the code of the token's other refusals, as before
        raise InvalidTokenRequest(error.message) from None
    if expires_in <= timedelta(0):
        raise InvalidTokenRequest("a token needs an expiry in the future")
    if expires_in > timedelta(days=cfg.token_max_days):
        raise InvalidTokenRequest(f"a token may live at most {cfg.token_max_days} days")
    wanted = list(dict.fromkeys(s.strip() for s in scopes))
    unknown = [s for s in wanted if s not in PLATFORM_ACTIONS]
    if unknown:
        raise InvalidTokenRequest(
            f"unknown scope(s) {', '.join(unknown)}: scopes are platform actions such as "
            "platform:alerts.read",
            details={"unknown": unknown},
        )
    prefix = _new_prefix(session)
    secret = random.token_hex(TOKEN_SECRET_HEX // 2)
    token = ApiToken(
        id=new_id(),
        user_id=user.id,
        prefix=prefix,
        secret_hash=_sha256(secret),
        name=label,
        scopes=wanted,
        created_at=now,
        expires_at=now + expires_in,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(token)
    session.flush()
    event = TokenCreated(
        str(token.id),
        str(user.id),
        user.username,
        label,
        prefix,
        wanted,
        token.expires_at.isoformat(),
        ctx.actor,
    )
    _security_event(session, ctx, event)
    return token, f"{BEARER_TAG}_{prefix}_{secret}"


def _new_prefix(session: Session) -> str:
    while True:
        prefix = random.token_hex(TOKEN_PREFIX_HEX // 2)
        if session.scalars(select(ApiToken.id).where(ApiToken.prefix == prefix)).first() is None:
            return prefix


def authenticate_token(session: Session, ctx: Context, plaintext: str) -> tuple[User, ApiToken]:
    """The user and token of a bearer token; `InvalidToken` (one message) when it is malformed,
    unknown, wrong, revoked or expired, or its user is disabled."""
    match = _TOKEN.fullmatch(plaintext.strip())
    if match is None:
        raise InvalidToken()
    prefix, secret = match.groups()
    token = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).first()
    if token is None or not hmac.compare_digest(_sha256(secret), token.secret_hash):
        raise InvalidToken()
    now = ctx.clock.now()
    if token.revoked_at is not None or token.expires_at <= now or token.user.disabled:
        raise InvalidToken()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        token.last_used_at = now
        session.flush()
    return token.user, token


def get_token(session: Session, token_ref: uuid.UUID | str) -> ApiToken:
    """A token by its id or its prefix, or `TokenNotFound`."""
    token: ApiToken | None
    try:
        key = token_ref if isinstance(token_ref, uuid.UUID) else uuid.UUID(str(token_ref))
        token = session.get(ApiToken, key)
    except ValueError:
        token = session.scalars(select(ApiToken).where(ApiToken.prefix == str(token_ref).strip())).first()
    if token is None:
        raise TokenNotFound(f"no token {token_ref!s}")
    return token


def revoke_token(session: Session, ctx: Context, token_id: uuid.UUID | str) -> ApiToken:
    """Revoke a token (by id or prefix); revoking it again changes nothing."""
    token = get_token(session, token_id)
    if token.revoked_at is None:
        token.revoked_at = ctx.clock.now()
        session.flush()
        _security_event(
            session, ctx, TokenRevoked(str(token.id), str(token.user_id), token.prefix, ctx.actor)
        )
    return token


def list_tokens(session: Session, user_id: UserId | None = None) -> Sequence[ApiToken]:
    """Tokens (of one user, or all), newest first."""
    statement = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.created_at.desc())
    if user_id is not None:
        statement = statement.where(ApiToken.user_id == get_user(session, user_id).id)
    return session.scalars(statement).all()


# --- console sessions -------------------------------------------------------------------------


def start_session(
    session: Session,
    ctx: Context,
    user: User,
    source: str,
    mfa_passed: bool,
    lifetime: timedelta | None = None,
    *,
    settings: AccountsSettings | None = None,
) -> tuple[WebSession, str]:
    """Start a console session; returns it and its token (256 random bits; only SHA-256 of it is
    kept). `lifetime` defaults to `accounts.session_hours`."""
    if user.disabled:
        raise AccountDisabled()
    span = lifetime if lifetime is not None else timedelta(hours=_settings(settings).session_hours)
    if span <= timedelta(0):
        raise InvalidSession("a session needs a positive lifetime")
    now = ctx.clock.now()
    token = random.token_urlsafe(32)
    web_session = WebSession(
        id=_session_id(token),
        user_id=user.id,
        csrf_token=random.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + span,
        ended_at=None,
        mfa_passed=mfa_passed,
        source=source[:200],
    )
    session.add(web_session)
    session.flush()
    started = SessionStarted(
        str(user.id), user.username, source[:200], mfa_passed, web_session.expires_at.isoformat()
    )
    _security_event(session, ctx, started)
    return web_session, token


def resolve_session(session: Session, ctx: Context, token: str) -> tuple[User, WebSession]:
    """The user and session of a session token; `InvalidSession` (one message) when it is
    unknown, ended or expired, or its user is disabled."""
    web_session = session.get(WebSession, _session_id(token)) if token else None
    now = ctx.clock.now()
    if (
        web_session is None
        or web_session.ended_at is not None
        or web_session.expires_at <= now
        or web_session.user.disabled
    ):
        raise InvalidSession()
    if now - web_session.last_seen_at >= TOUCH_INTERVAL:
        web_session.last_seen_at = now
        session.flush()
    return web_session.user, web_session


def end_session(session: Session, ctx: Context, token: str) -> bool:
    """End the session of this token (logging out); False if there was none to end."""
    web_session = session.get(WebSession, _session_id(token)) if token else None
    if web_session is None or web_session.ended_at is not None:
        return False
    web_session.ended_at = ctx.clock.now()
    session.flush()
    _security_event(
        session, ctx, SessionEnded(str(web_session.user_id), web_session.user.username, 1, "logout")
    )
    return True


def mark_session_mfa_passed(session: Session, ctx: Context, token: str) -> WebSession:
    """Record that the session's user has just passed (or enrolled) the second factor."""
    user, web_session = resolve_session(session, ctx, token)
    if not user.mfa_enabled:
        raise InvalidSession("the user has no second factor in force")
    web_session.mfa_passed = True
    session.flush()
    return web_session


def end_user_sessions(
    session: Session,
    ctx: Context,
    user_id: UserId,
    reason: str = "ended",
    *,
    keep_session_token: str | None = None,
) -> int:
    """End every open session of a user (except the one of `keep_session_token`); how many."""
    user = get_user(session, user_id)
    keep = _session_id(keep_session_token) if keep_session_token else None
    return _end_sessions(session, ctx, user, reason, keep_session_id=keep)


def _end_sessions(
    session: Session, ctx: Context, user: User, reason: str, *, keep_session_id: str | None = None
) -> int:
    now = ctx.clock.now()
    statement = (
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.ended_at.is_(None), WebSession.expires_at > now)
        .values(ended_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if keep_session_id is not None:
        statement = statement.where(WebSession.id != keep_session_id)
    count = int(getattr(session.execute(statement), "rowcount", 0) or 0)
    if count:
        _security_event(session, ctx, SessionEnded(str(user.id), user.username, count, reason))
    return count


def _session_id(token: str) -> str:
    return _sha256(token)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
