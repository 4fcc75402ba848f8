"""Baseline routes of the JSON API: scopes with their state, one scope's facts, accepting an
alert's deviation and protecting. Reading needs `platform:baselines.read`, changing
`platform:baselines.manage`; both only at the caller's sites (another site's scope or alert is
answered as not found)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from plantwarden.alerts.services import get_alert
from plantwarden.core.access import Actor, Requires
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import NotFound
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.models import BaselineFact, BaselineScope

router = APIRouter(prefix="/baselines", tags=["baselines"])
READ = Requires("platform:baselines.read")
MANAGE = Requires("platform:baselines.manage")


class ScopeOut(BaseModel):
    site: str
    scope: str
    state: str
    facts: int
    learning_started: datetime
    learning_ends: datetime
    protected_at: datetime | None

    @classmethod
    def of(cls, row: BaselineScope) -> ScopeOut:
        return cls(
            site=row.site,
            scope=row.scope,
            state=row.state,
            facts=row.facts,
            learning_started=row.learning_started,
            learning_ends=row.learning_ends,
            protected_at=row.protected_at,
        )


class FactOut(BaseModel):
    kind: str
    key: str
    scope: str
    conduit: str | None
    value: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    source: str
    accepted_by: str | None
    reason: str | None

    @classmethod
    def of(cls, row: BaselineFact) -> FactOut:
        return cls(
            kind=row.kind,
            key=row.key,
            scope=row.scope,
            conduit=row.conduit,
            value=dict(row.value),
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            count=row.count,
            source=row.source,
            accepted_by=row.accepted_by,
            reason=row.reason,
        )


class ScopeFacts(BaseModel):
    scope: ScopeOut
    facts: list[FactOut]


class AcceptIn(BaseModel):
    alert_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=1000)


class ProtectIn(BaseModel):
    site: str = Field(min_length=1, max_length=63)
    scope: str | None = Field(default=None, max_length=200)


class ProtectOut(BaseModel):
    protected: list[str]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _context(actor: Actor) -> Context:
    return Context(source="server", actor=actor.username)


def _visible(actor: Actor, site: str) -> None:
    if not actor.may_see(site):
        raise NotFound(f"no baselines at site {site}")


@router.get("", response_model=list[ScopeOut])
def scopes_route(
    request: Request, actor: Annotated[Actor, Depends(READ)], site: str | None = None
) -> list[ScopeOut]:
    """Scopes of the caller's sites (or of one), with their state and how many facts they hold."""
    with _store(request).transaction() as session:
        rows = services.scopes(session, site)
        return [ScopeOut.of(row) for row in rows if actor.may_see(row.site)]


@router.get("/{site}/{scope}", response_model=ScopeFacts)
def scope_route(
    request: Request, actor: Annotated[Actor, Depends(READ)], site: str, scope: str
) -> ScopeFacts:
    """One scope and its facts."""
    _visible(actor, site)
    with _store(request).transaction() as session:
        row = services.get_scope(session, site, scope)
        return ScopeFacts(
            scope=ScopeOut.of(row), facts=[FactOut.of(f) for f in services.facts_of(session, site, scope)]
        )


@router.post("/accept", response_model=FactOut)
def accept_route(request: Request, actor: Annotated[Actor, Depends(MANAGE)], body: AcceptIn) -> FactOut:
    """Accept the deviation an alert reports into the baseline (audited with the reason)."""
    with _store(request).transaction() as session:
        alert = get_alert(session, body.alert_id)
        if not actor.may_see(alert.site, alert.zone):
            raise NotFound(f"no alert {body.alert_id}")
        fact = services.accept_alert(session, _context(actor), request.app.state.audit, alert.id, body.reason)
        return FactOut.of(fact)


@router.post("/protect", response_model=ProtectOut)
def protect_route(request: Request, actor: Annotated[Actor, Depends(MANAGE)], body: ProtectIn) -> ProtectOut:
    """Start protecting one scope of a site now (every learning scope of the site without one)."""
    _visible(actor, body.site)
    with _store(request).transaction() as session:
        turned = services.protect(session, _context(actor), request.app.state.audit, body.site, body.scope)
    return ProtectOut(protected=turned)
