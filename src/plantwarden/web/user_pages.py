"""The console's Users and roles pages: the users with their grants and state, the built-in roles
with what each may do (read from `policy.roles`, so the page cannot drift from the policy), and
the administration forms: add a user, grant a role, revoke a grant, unlock an account.

The forms call the same `accounts.services` functions as `plantwarden user ...` and the JSON API,
so validation and auditing stay in one place. Every change redirects (303) to the user's page;
adding a user is the exception: its one-time password is shown once, on the answer to the form
itself (a redirect would have to keep the secret somewhere to show it), as the recovery codes are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from plantwarden.accounts import authority
from plantwarden.accounts import services as accounts
from plantwarden.accounts.models import RoleGrant, User
from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.policy.model import Rule
from plantwarden.policy.roles import BUILTIN_ROLES, PLATFORM_ACTION_DOCS, PLATFORM_ACTIONS
from plantwarden.web.auth import may
from plantwarden.zones import services as zones

router = APIRouter(include_in_schema=False)
READ = Requires("platform:users.read")
MANAGE = Requires("platform:users.manage")
NAME = 64  # the longest user name, role, site or zone a form may send (the services check them)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _context(actor: Actor) -> Context:
    return Context(source="console", actor=actor.username)


def _page(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, context)
    return page


def _forms(request: Request, session: Any) -> dict[str, Any]:
    """What the administration forms need: whether to show them, the roles and the known sites."""
    return {
        "may_manage": may(request, MANAGE.action),
        "role_names": sorted(BUILTIN_ROLES),
        "sites": [site.id for site in zones.list_sites(session)],
    }


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: Annotated[Actor, Depends(READ)]) -> HTMLResponse:
    """Every user with their grants and state; the built-in roles; the form to add a user."""
    now = SystemClock().now()
    with _store(request).transaction() as session:
        users = [_user_row(user, now) for user in accounts.list_users(session)]
        forms = _forms(request, session)
    context = {"users": users, "roles": role_table(), "actions": action_table(), **forms}
    return _page(request, "users.html", context)


@router.get("/users/{username}", response_class=HTMLResponse)
def user_page(request: Request, actor: Annotated[Actor, Depends(READ)], username: str) -> HTMLResponse:
    """One user: their state and grants, and the forms to grant, revoke and unlock."""
    now = SystemClock().now()
    with _store(request).transaction() as session:
        user = _user_row(accounts.get_user_by_name(session, username), now)
        forms = _forms(request, session)
    return _page(request, "user.html", {"user": user, **forms})


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    actor: Annotated[Actor, Depends(MANAGE)],
    username: Annotated[str, Form(max_length=NAME)],
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """Add a user with a one-time password, shown once on the page this answers with."""
    with _store(request).transaction() as session:
        user, one_time = accounts.create_user(session, _context(actor), username, display_name)
        name = user.username
    assert one_time is not None  # created without a password: the services generate one
    page = _page(request, "user_created.html", {"username": name, "one_time_password": one_time})
    page.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return page


@router.post("/users/{username}/grants")
def grant_role(
    request: Request,
    actor: Annotated[Actor, Depends(MANAGE)],
    username: str,
    role: Annotated[str, Form(max_length=NAME)],
    site: Annotated[str, Form(max_length=NAME)],
    zone: Annotated[str, Form(max_length=NAME)] = "",
    valid_until: Annotated[str, Form(max_length=40)] = "",
) -> RedirectResponse:
    """Grant a role at a site (or one zone of it), optionally until a time (UTC)."""
    until = _moment(valid_until.strip())
    grant = (role.strip(), site.strip(), zone.strip() or None)
    with _store(request).transaction() as session:
        name = accounts.get_user_by_name(session, username).username
        authority.check_grant(actor, name, *grant)
        accounts.grant_role(session, _context(actor), name, *grant, until)
    return _changed(request, name)


@router.post("/users/{username}/grants/revoke")
def revoke_grant(
    request: Request,
    actor: Annotated[Actor, Depends(MANAGE)],
    username: str,
    role: Annotated[str, Form(max_length=NAME)],
    site: Annotated[str, Form(max_length=NAME)],
    zone: Annotated[str, Form(max_length=NAME)] = "",
) -> RedirectResponse:
    """Revoke one grant of the user."""
    grant = (role.strip(), site.strip(), zone.strip() or None)
    with _store(request).transaction() as session:
        name = accounts.get_user_by_name(session, username).username
        authority.check_grant(actor, name, *grant)
        accounts.revoke_grant(session, _context(actor), name, *grant)
    return _changed(request, name)


@router.post("/users/{username}/unlock")
def unlock_user(
    request: Request, actor: Annotated[Actor, Depends(MANAGE)], username: str
) -> RedirectResponse:
    """Clear the user's lock, failure count and login throttle."""
    with _store(request).transaction() as session:
        authority.check_user(actor, accounts.get_user_by_name(session, username))
        name = accounts.unlock_user(session, _context(actor), username).username
    return _changed(request, name)


def _changed(request: Request, username: str) -> RedirectResponse:
    """Back to the user's page; a changed grant applies at once, not after the policy's next check."""
    request.app.state.policy.invalidate()
    return RedirectResponse(f"/users/{quote(username, safe='')}", status_code=303)


def _moment(value: str) -> datetime | None:
    """A form's time (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`, UTC when it names no zone), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59-01:00 is past the calendar's end in UTC
        raise InvalidInput(
            f"valid until {value!r} is not a date or time (YYYY-MM-DD, YYYY-MM-DDTHH:MM)"
        ) from None


def _user_row(user: User, now: datetime) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "disabled": user.disabled,
        "locked": user.locked,
        "failed_logins": user.failed_logins,
        "mfa_enabled": user.mfa_enabled,
        "password_due": user.needs_password_change,
        "created": f"{user.created_at:%Y-%m-%d %H:%M}",
        "last_login": f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never",
        "grants": [_grant_row(grant, now) for grant in user.grants],
    }


def _grant_row(grant: RoleGrant, now: datetime) -> dict[str, Any]:
    return {
        "role": grant.role,
        "site": grant.site,
        "zone": grant.zone or "",
        "valid_until": f"{grant.valid_until:%Y-%m-%d %H:%M}" if grant.valid_until else "",
        "expired": not grant.valid_at(now),
        "granted_by": grant.granted_by or "",
    }


def role_table() -> list[dict[str, Any]]:
    """The built-in roles with their rules: the actions of each rule and its conditions."""
    return [
        {
            "name": role.name,
            "description": role.description,
            "rules": [{"actions": _actions(rule), "conditions": _conditions(rule)} for rule in role.rules],
        }
        for role in BUILTIN_ROLES.values()
    ]


def action_table() -> list[dict[str, str]]:
    """Every platform action (without its namespace, as docs/policy.md writes it) and what it allows."""
    return [{"action": _short(name), "text": text} for name, text in PLATFORM_ACTION_DOCS.items()]


def _actions(rule: Rule) -> list[str]:
    order = {name: index for index, name in enumerate(PLATFORM_ACTIONS)}
    return [_short(a) for a in sorted(rule.actions, key=lambda a: (order.get(a, len(order)), a))]


def _short(action: str) -> str:
    return action.removeprefix("platform:")


def _conditions(rule: Rule) -> str:
    needs = []
    if rule.conditions.requires_training:
        needs.append("current training")
    if rule.conditions.requires_approval:
        needs.append("an approval")
    return "needs " + " and ".join(needs) if needs else ""
