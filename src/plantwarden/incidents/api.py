"""Quarantine routes of the JSON API (under /api/v1/quarantine), all with
`platform:quarantine.manage` and only at the caller's sites: who quarantines must see what is
quarantined, and the list names subjects under investigation (another site's list is empty to
the caller, another site's change is refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from plantwarden.core.access import Actor, Requires
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PermissionDenied
from plantwarden.incidents import quarantine as services
from plantwarden.incidents.models import QuarantineEntry
from plantwarden.incidents.quarantine import QuarantineTarget

router = APIRouter(prefix="/quarantine", tags=["quarantine"])
MANAGE = Requires("platform:quarantine.manage")


class QuarantineOut(BaseModel):
    site: str
    kind: str
    target: str
    reason: str
    quarantined_by: str
    quarantined_at: datetime
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None

    @classmethod
    def of(cls, row: QuarantineEntry) -> QuarantineOut:
        return cls.model_validate(row, from_attributes=True)


class ChangeIn(BaseModel):
    """One of `subject` (KIND:ID) and `asset`, at `site`, and why."""

    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1, max_length=63)
    subject: str | None = Field(default=None, max_length=300, description="KIND:ID, e.g. cert_role:engineer")
    asset: str | None = Field(default=None, max_length=255, description="The plant model id of an asset.")
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_target(self) -> ChangeIn:
        if (self.subject is None) == (self.asset is None):
            raise ValueError("give subject (KIND:ID) or asset, one of them")
        return self

    def target(self) -> QuarantineTarget:
        if self.subject is not None:
            return QuarantineTarget.parse(self.subject)
        return QuarantineTarget.asset(str(self.asset))


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _audit(request: Request) -> AuditLog | None:
    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    return audit


def _allowed_at(actor: Actor, site: str) -> None:
    if not actor.may_see(site):
        raise PermissionDenied(f"{actor.username} may not manage the quarantine of site {site}")


@router.get("", response_model=list[QuarantineOut])
def list_route(
    request: Request, actor: Annotated[Actor, Depends(MANAGE)], site: str | None = None
) -> list[QuarantineOut]:
    """What is quarantined now at the caller's sites (or at one of them)."""
    with _store(request).transaction() as session:
        rows = services.active(session, site)
        return [QuarantineOut.of(row) for row in rows if actor.may_see(row.site)]


@router.post("", response_model=QuarantineOut, status_code=201)
def add_route(request: Request, actor: Annotated[Actor, Depends(MANAGE)], body: ChangeIn) -> QuarantineOut:
    """Quarantine a subject or an asset; the site's gateway applies it within a tick."""
    _allowed_at(actor, body.site)
    ctx = Context(source="server", actor=actor.username)
    with _store(request).transaction() as session:
        row = services.quarantine(
            session, ctx, _audit(request), site=body.site, target=body.target(), reason=body.reason
        )
        return QuarantineOut.of(row)


@router.post("/release", response_model=QuarantineOut)
def release_route(
    request: Request, actor: Annotated[Actor, Depends(MANAGE)], body: ChangeIn
) -> QuarantineOut:
    """End a quarantine."""
    _allowed_at(actor, body.site)
    ctx = Context(source="server", actor=actor.username)
    with _store(request).transaction() as session:
        row = services.release(
            session, ctx, _audit(request), site=body.site, target=body.target(), reason=body.reason
        )
        return QuarantineOut.of(row)
