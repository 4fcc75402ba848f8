"""Authentication and enforcement for every route: console sessions (cookie + CSRF token) and
API bearer tokens, decided by the compiled policy.

`install_enforcer(app)` puts the enforcer on `app.state`; routes declare their permission with
`core.access.Requires` / `AUTHENTICATED` / `PUBLIC`. A decision names the rule that decided;
a refusal says why and is written to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.requests import Request

from plantwarden.accounts import services as accounts
from plantwarden.accounts.errors import InvalidSession, InvalidToken, SetupRequired
from plantwarden.accounts.models import User
from plantwarden.core.access import AUTHENTICATED_ACTION, UNSAFE_METHODS, Actor
from plantwarden.core.auditlog import append_committed
from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import NotAuthenticated, PermissionDenied
from plantwarden.policy.compile import Decision, PolicySnapshot, compile_policy
from plantwarden.policy.compile import Request as PolicyRequest
from plantwarden.policy.model import PolicyModel, Subject
from plantwarden.policy.overlay import DenyOverlay
from plantwarden.zones import applied
from plantwarden.zones.errors import AppliedPlantUnreadable
from plantwarden.zones.plant.rights import with_plant

log = logging.getLogger(__name__)

SESSION_COOKIE = "pw_session"
CSRF_HEADER = "x-csrf-token"
SESSION_ONLY_PATHS = ("/account/", "/logout")
TOKEN_RULE = {"rule": "token"}
SCOPE_RULE = {"rule": "token-scope"}
SETUP_PATHS = ("/account/", "/logout", "/api/v1/me")


class PolicyCache:
    """The compiled policy, rebuilt from the store when its model changes (checked at most every
    `ttl` seconds, or at once after `invalidate()`); the deny overlay applies without a rebuild."""

    def __init__(self, store: Store, *, ttl: float = 2.0) -> None:
        self.store = store
        self.ttl = ttl
        self.overlay = DenyOverlay()
        self._lock = threading.Lock()
        self._snapshot: PolicySnapshot | None = None
        self._model: PolicyModel | None = None
        self._checked = 0.0

    def current(self) -> tuple[PolicySnapshot, PolicyModel]:
        """The snapshot in force and the model it was compiled from."""
        with self._lock:
            stale = time.monotonic() - self._checked > self.ttl
            if self._snapshot is None or self._model is None or stale:
                self._refresh()
            assert self._snapshot is not None
            assert self._model is not None
            return self._snapshot, self._model

    def _refresh(self) -> None:
        """Compile the model of the store; when the applied plant no longer loads, keep the last
        good snapshot (its plant rights included) rather than fall back to the built-in rights."""
        with self.store.transaction() as session:
            base = accounts.policy_model(session)
            try:
                plant = applied.current_policy(session)
            except AppliedPlantUnreadable as error:
                log.error("%s; the policy keeps its last good version", error.message)
                self._checked = time.monotonic()
                if self._snapshot is not None:
                    return
                plant = None
        model = with_plant(base, plant)
        snapshot = compile_policy(model)
        if self._snapshot is None or snapshot.version != self._snapshot.version:
            self._snapshot, self._model = snapshot, model
        self._checked = time.monotonic()

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0


@dataclass(frozen=True)
class Authenticated:
    actor: Actor
    csrf_token: str | None  # set for sessions


def install_enforcer(app: FastAPI, store: Store, *, source: str = "server") -> PolicyCache:
    """Install the enforcer the routes' `Requires` dependencies call."""
    cache = PolicyCache(store)
    app.state.policy = cache
    app.state.forget_tokens = TOKENS.clear  # called by routes that revoke tokens or disable users

    def enforce(request: Request, action: str) -> Actor:
        authenticated = authenticate(request, store, source)
        actor = authenticated.actor
        try:
            _check_request(request, authenticated, action)
        except PermissionDenied as refusal:
            _audit_denial(store, actor, request, action, str(refusal.details.get("rule", refusal.code)))
            raise
        if action == AUTHENTICATED_ACTION:
            return actor
        return _authorise(cache, actor, action, request)

    app.state.enforcer = enforce
    return cache


class TokenCache:
    """Recently verified bearer tokens, by the SHA-256 of the token, for `ttl` seconds: a busy
    API client costs one database lookup per `ttl`, not one per request. A token revoked (or a
    user disabled) in this process is dropped at once; elsewhere it stops working within `ttl`."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Actor, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, token: str, now: datetime) -> Actor | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl or entry[2] <= now:
            return None
        return entry[1]

    def put(self, token: str, actor: Actor, expires_at: datetime) -> None:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), actor, expires_at)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


TOKENS = TokenCache()


def authenticate(request: Request, store: Store, source: str) -> Authenticated:
    """The caller, from a bearer token or a session cookie (cached on the request)."""
    cached = getattr(request.state, "authenticated", None)
    if isinstance(cached, Authenticated):
        return cached
    ctx = Context(source=source)
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    known = TOKENS.get(token, ctx.clock.now()) if token else None
    if known is not None:
        result = Authenticated(known, None)
        request.state.authenticated = result
        return result
    cookie = request.cookies.get(SESSION_COOKIE)
    with store.transaction() as session:
        try:
            if token:
                user, api_token = accounts.authenticate_token(session, ctx, token)
                result = Authenticated(_actor(user, "token", tuple(api_token.scopes)), None)
                TOKENS.put(token, result.actor, api_token.expires_at)
            elif cookie:
                user, web_session = accounts.resolve_session(session, ctx, cookie)
                pending = _setup_pending(session, user, ctx.clock.now())
                request.state.setup_page = pending
                result = Authenticated(
                    _actor(user, "session", (), setup=pending is not None), web_session.csrf_token
                )
            else:
                raise NotAuthenticated("log in, or send a bearer token (Authorization: Bearer pwt_...)")
        except (InvalidToken, InvalidSession) as error:
            raise NotAuthenticated(error.message) from None
    request.state.authenticated = result
    return result


def _actor(user: User, via: str, scopes: Sequence[str], *, setup: bool = False) -> Actor:
    return Actor(
        username=user.username,
        user_id=str(user.id),
        via=via,
        scopes=tuple(scopes),
        setup_pending=setup,
    )


SETUP_PAGES = {"set_password": "/account/password", "enroll_mfa": "/account/mfa"}


def _setup_pending(session: Session, user: User, now: datetime) -> str | None:
    """The page of the first thing the user must do (a new password; a second factor the user's
    roles require), or None: the one-time password of the first admin leads only there."""
    steps = accounts.pending_setup(session, user, now)
    return SETUP_PAGES.get(steps[0], "/account/password") if steps else None


def _audit_denial(store: Store, actor: Actor, request: Request, action: str, rule: str) -> None:
    """A refusal is recorded in the audit log (in a transaction of its own, since the request's
    own work is not done)."""
    audit = accounts.audit_log()
    if audit is None:
        return
    append_committed(
        store,
        audit.keys,
        actor=actor.username,
        source="server",
        action="access.denied",
        outcome="denied",
        target=f"{request.method} {request.url.path}"[:300],
        details={"action": action, "rule": rule, "via": actor.via},
        clock=SystemClock(),
        checkpoints=audit.checkpoints,
    )


def _check_request(request: Request, authenticated: Authenticated, action: str) -> None:
    """What holds for every route before the policy is asked: the CSRF token of a session, the
    account set-up, and what a bearer token may not do."""
    actor = authenticated.actor
    unsafe = request.method in UNSAFE_METHODS
    if authenticated.csrf_token is not None and unsafe:
        _check_csrf(request, authenticated.csrf_token)
    if actor.setup_pending and not request.url.path.startswith(SETUP_PATHS):
        raise SetupRequired(
            "finish setting up the account first: set a password and enroll the second factor"
        )
    if actor.via == "token" and request.url.path.startswith(SESSION_ONLY_PATHS):
        raise PermissionDenied(
            "the account pages take a console session, not a token", details={"rule": "token"}
        )
    if actor.via == "token" and actor.scopes and action == AUTHENTICATED_ACTION and unsafe:
        # A scoped token must not mint itself a wider token or change its account.
        raise PermissionDenied(
            "a scoped token cannot change the account or its tokens", details={"rule": "token-scope"}
        )


def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "csrf_form_token", None) or ""
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "the CSRF token is missing or wrong: reload the page and try again", details={"rule": "csrf"}
        )


def _authorise(cache: PolicyCache, actor: Actor, action: str, request: Request) -> Actor:
    if actor.scopes and action not in actor.scopes:
        _audit_denial(cache.store, actor, request, action, "token-scope")
        raise PermissionDenied(f"the token's scopes do not include {action}", details={"rule": "token-scope"})
    places, last = allowed_places(cache, actor.username, action)
    if not places:
        reason = last.reason if last is not None else f"{actor.username} holds no role that allows {action}"
        rule = last.rule if last is not None else "default-deny"
        log.info("denied %s %s to %s: %s", request.method, request.url.path, actor.username, reason)
        _audit_denial(cache.store, actor, request, action, rule)
        raise PermissionDenied(reason, details={"rule": rule, "action": action})
    return actor.with_places(places)


def allowed_places(
    cache: PolicyCache, username: str, action: str
) -> tuple[tuple[tuple[str, str | None], ...], Decision | None]:
    """The (site, zone) places of the user's grants where the policy in force allows `action`
    now, and the last decision taken (None when the user holds no grant). Asking refuses nothing
    and records nothing."""
    snapshot, model = cache.current()
    subject = Subject("user", username)
    now = datetime.now(UTC)  # time-limited grants and rules are decided against the present
    places = []
    last: Decision | None = None
    for grant in model.grants:
        if grant.subject != subject:
            continue
        last = snapshot.decide(
            PolicyRequest(subject=subject, action=action, site=grant.site, zone=grant.zone, now=now),
            cache.overlay,
        )
        if last.allowed:
            places.append((grant.site, grant.zone))
    return tuple(dict.fromkeys(places)), last


def places_of(request: Request, actor: Actor, action: str) -> tuple[tuple[str, str | None], ...]:
    """Where `actor` also holds `action` (a token only within its scopes), asked of the policy in
    force: for a page that shows more to those who may (a panel, a link, a form). Not holding it
    refuses nothing and records nothing; the route's `Requires` is what decides."""
    cache = getattr(request.app.state, "policy", None)
    if not isinstance(cache, PolicyCache) or actor.setup_pending:
        return ()
    if actor.scopes and action not in actor.scopes:
        return ()
    places, _ = allowed_places(cache, actor.username, action)
    return places


def may(request: Request, action: str) -> bool:
    """Whether the caller of this (already authenticated) request may do `action` somewhere: for
    showing a link or a form, never for deciding (the route's `Requires` decides)."""
    authenticated = getattr(request.state, "authenticated", None)
    if not isinstance(authenticated, Authenticated):
        return False
    return bool(places_of(request, authenticated.actor, action))
