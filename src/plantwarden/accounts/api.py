"""Accounts routes of the JSON API: who am I, users and their grants, API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from plantwarden.accounts import authority, services
from plantwarden.accounts.errors import TokenNotFound
from plantwarden.accounts.models import ApiToken, RoleGrant, User
from plantwarden.core.access import AUTHENTICATED, Actor, Requires
from plantwarden.core.clock import UtcDatetime
from plantwarden.core.context import Context
from plantwarden.core.db import Store

router = APIRouter(tags=["accounts"])


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _context(actor: Actor) -> Context:
    return Context(source="server", actor=actor.username)


class GrantOut(BaseModel):
    role: str
    site: str
    zone: str | None
    valid_until: datetime | None

    @classmethod
    def of(cls, grant: RoleGrant) -> GrantOut:
        return cls(role=grant.role, site=grant.site, zone=grant.zone, valid_until=grant.valid_until)


class UserOut(BaseModel):
    username: str
    display_name: str
    disabled: bool
    locked: bool
    mfa_enabled: bool
    grants: list[GrantOut]

    @classmethod
    def of(cls, user: User, grants: list[RoleGrant]) -> UserOut:
        return cls(
            username=user.username,
            display_name=user.display_name,
            disabled=user.disabled,
            locked=user.locked,
            mfa_enabled=user.mfa_enabled,
            grants=[GrantOut.of(g) for g in grants],
        )


class Me(BaseModel):
    username: str
    via: str
    csrf_token: str | None = Field(description="For console sessions: send it as X-CSRF-Token on changes.")
    scopes: list[str]
    setup_pending: bool
    grants: list[GrantOut]


@router.get("/me", response_model=Me)
def me(request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)]) -> Me:
    """The caller: how they authenticated and the roles they hold where."""
    with _store(request).transaction() as session:
        grants = [GrantOut.of(g) for g in services.list_grants(session, actor.username)]
    authenticated = getattr(request.state, "authenticated", None)
    return Me(
        csrf_token=getattr(authenticated, "csrf_token", None),
        username=actor.username,
        via=actor.via,
        scopes=list(actor.scopes),
        setup_pending=actor.setup_pending,
        grants=grants,
    )


@router.get("/users", response_model=list[UserOut])
def list_users(
    request: Request, _: Annotated[Actor, Depends(Requires("platform:users.read"))]
) -> list[UserOut]:
    """Every user with their grants."""
    with _store(request).transaction() as session:
        return [UserOut.of(u, list(u.grants)) for u in services.list_users(session)]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(default="", max_length=200)


class CreatedUser(BaseModel):
    user: UserOut
    one_time_password: str = Field(description="Shown once: it leads only to setting a password.")


@router.post("/users", response_model=CreatedUser, status_code=201)
def create_user(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:users.manage"))], body: NewUser
) -> CreatedUser:
    """Create a user with a one-time password (shown once)."""
    with _store(request).transaction() as session:
        user, one_time = services.create_user(session, _context(actor), body.username, body.display_name)
        assert one_time is not None
        return CreatedUser(user=UserOut.of(user, []), one_time_password=one_time)


class NewGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(max_length=64)
    site: str = Field(max_length=63)
    zone: str | None = Field(default=None, max_length=63)
    valid_until: UtcDatetime | None = None


@router.post("/users/{username}/grants", response_model=GrantOut, status_code=201)
def grant_role(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:users.manage"))],
    username: str,
    body: NewGrant,
) -> GrantOut:
    """Grant a role to a user at a site (or one zone of it)."""
    with _store(request).transaction() as session:
        name = services.get_user_by_name(session, username).username
        authority.check_grant(actor, name, body.role, body.site, body.zone)
        grant = services.grant_role(
            session, _context(actor), username, body.role, body.site, body.zone, body.valid_until
        )
        return GrantOut.of(grant)


@router.post("/users/{username}/disable", response_model=UserOut)
def disable_user(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:users.manage"))], username: str
) -> UserOut:
    """Disable a user: their sessions end and their tokens stop working."""
    with _store(request).transaction() as session:
        authority.check_user(actor, services.get_user_by_name(session, username))
        user = services.disable_user(session, _context(actor), username)
        out = UserOut.of(user, list(user.grants))
    _forget_tokens(request)
    return out


def _forget_tokens(request: Request) -> None:
    """Drop the server's short cache of verified tokens, so that a change applies at once."""
    forget = getattr(request.app.state, "forget_tokens", None)
    if forget is not None:
        forget()


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            scopes=list(token.scopes),
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            last_used_at=token.last_used_at,
        )


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(default_factory=list, max_length=50)
    expires_in_days: int = Field(default=90, ge=1, le=366)


class CreatedToken(BaseModel):
    token: TokenOut
    secret: str = Field(description="Shown once: send it as `Authorization: Bearer <secret>`.")


@router.post("/tokens", response_model=CreatedToken, status_code=201)
def create_token(
    request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)], body: NewToken
) -> CreatedToken:
    """Issue an API token for yourself (shown once)."""
    with _store(request).transaction() as session:
        token, secret = services.create_token(
            session,
            _context(actor),
            actor.user_id,
            body.name,
            body.scopes,
            timedelta(days=body.expires_in_days),
        )
        return CreatedToken(token=TokenOut.of(token), secret=secret)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)]) -> list[TokenOut]:
    """Your API tokens (never their secrets)."""
    with _store(request).transaction() as session:
        return [TokenOut.of(t) for t in services.list_tokens(session, actor.user_id)]


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(
    request: Request, actor: Annotated[Actor, Depends(AUTHENTICATED)], token_id: uuid.UUID
) -> TokenOut:
    """Revoke one of your API tokens."""
    with _store(request).transaction() as session:
        token = services.get_token(session, token_id)
        if str(token.user_id) != actor.user_id:
            raise TokenNotFound(f"no token {token_id}")  # another user's token is not revealed
        out = TokenOut.of(services.revoke_token(session, _context(actor), token_id))
    _forget_tokens(request)
    return out
