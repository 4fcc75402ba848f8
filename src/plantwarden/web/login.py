"""Logging in and out, and setting up an account (password, second factor) in the console."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from plantwarden.accounts import services as accounts
from plantwarden.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    LoginThrottled,
    MfaRequired,
)
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.access import AUTHENTICATED, PUBLIC, Actor
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PermissionDenied, PlantwardenError
from plantwarden.core.settings import Settings
from plantwarden.web.auth import SESSION_COOKIE

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "pw_login_csrf"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _page(request: Request, name: str, context: dict[str, object], status: int = 200) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status
    )
    return page


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, _: Annotated[None, Depends(PUBLIC)], next: str = "/") -> HTMLResponse:  # noqa: A002
    """The login form; a cookie-bound token protects the form itself (login CSRF)."""
    token = secrets.token_urlsafe(32)
    response = _page(request, "login.html", {"csrf": token, "next": _safe_next(next), "mfa": False})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    _: Annotated[None, Depends(PUBLIC)],
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)],
    totp: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    """Check the credentials (and second factor); start a session."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    # as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500)
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        raise PermissionDenied("the login form expired: reload the page and try again")
    source = request.client.host if request.client else "unknown"
    ctx = Context(source="server")
    settings: Settings = request.app.state.settings
    lifetime = timedelta(hours=settings[AccountsSettings].session_hours)
    context = {"csrf": expected, "next": _safe_next(next), "username": username, "mfa": False}
    try:
        with _store(request).transaction() as session:
            result = accounts.login(session, ctx, username, password, source, totp_code=totp or None)
            _web_session, token = accounts.start_session(
                session, ctx, result.user, source, result.mfa_passed, lifetime
            )
    except MfaRequired:
        return _page(
            request,
            "login.html",
            {**context, "mfa": True, "error": "Enter the code of your authenticator."},
            401,
        )
    except LoginThrottled as error:
        message = f"Too many failed attempts: try again in {error.retry_after_seconds:.0f} seconds."
        return _page(request, "login.html", {**context, "error": message}, 429)
    except (InvalidCredentials, AccountLocked, AccountDisabled) as error:
        return _page(request, "login.html", {**context, "error": error.message}, 401)
    target = "/account/password" if result.needs_password_change else context["next"]
    if not result.needs_password_change and result.needs_mfa_enrollment:
        target = "/account/mfa"
    response = RedirectResponse(str(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(lifetime.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)]) -> Response:
    """End the session (the CSRF token is checked by the enforcer)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with _store(request).transaction() as session:
            accounts.end_session(session, Context(source="server", actor=actor.username), token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)]) -> HTMLResponse:
    """The form to set a new password."""
    return _page(request, "password.html", {"actor": actor, "csrf": _csrf(request)})


@router.post("/account/password", response_class=HTMLResponse)
def set_password(
    request: Request,
    actor: Annotated[Actor, Depends(AUTHENTICATED)],
    new_password: Annotated[str, Form(max_length=1000)],
    repeat: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Set the password (policy checked); then on to the second factor if it is still due."""
    context: dict[str, object] = {"actor": actor, "csrf": _csrf(request)}
    if new_password != repeat:
        return _page(request, "password.html", {**context, "error": "The two passwords differ."}, 422)
    try:
        with _store(request).transaction() as session:
            ctx = Context(source="server", actor=actor.username)
            own = request.cookies.get(SESSION_COOKIE)  # keep this session; end the others
            accounts.set_password(session, ctx, actor.user_id, new_password, keep_session_token=own)
    except PlantwardenError as error:
        return _page(request, "password.html", {**context, "error": error.message}, 422)
    with _store(request).transaction() as session:
        user = accounts.get_user(session, actor.user_id)
        steps = accounts.pending_setup(session, user, Context(source="server").clock.now())
    return RedirectResponse("/account/mfa" if "enroll_mfa" in steps else "/", status_code=303)


@router.get("/account/mfa", response_class=HTMLResponse)
def mfa_page(request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)]) -> HTMLResponse:
    """Enrolling an authenticator: the secret to enter, then a code to confirm it."""
    with _store(request).transaction() as session:
        secret, uri = accounts.enroll_totp(
            session, Context(source="server", actor=actor.username), actor.user_id
        )
    return _page(request, "mfa.html", {"actor": actor, "csrf": _csrf(request), "secret": secret, "uri": uri})


@router.post("/account/mfa", response_class=HTMLResponse)
def confirm_mfa(
    request: Request,
    actor: Annotated[Actor, Depends(AUTHENTICATED)],
    code: Annotated[str, Form(max_length=20)],
) -> Response:
    """Confirm the authenticator with one code; show the recovery codes once."""
    ctx = Context(source="server", actor=actor.username)
    try:
        with _store(request).transaction() as session:
            codes = accounts.confirm_totp(session, ctx, actor.user_id, code)
            token = request.cookies.get(SESSION_COOKIE, "")
            accounts.mark_session_mfa_passed(session, ctx, token)
    except PlantwardenError as error:
        return _page(
            request, "mfa.html", {"actor": actor, "csrf": _csrf(request), "error": error.message}, 422
        )
    return _page(request, "recovery_codes.html", {"actor": actor, "codes": codes})


def _csrf(request: Request) -> str:
    authenticated = getattr(request.state, "authenticated", None)
    return str(getattr(authenticated, "csrf_token", "") or "")
