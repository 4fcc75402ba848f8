"""Plant model routes of the JSON API: the applied version, its history, and applying a new one.

Applying needs its own permission (`platform:plant.apply`) and a caller whose places cover every
site the model declares; the policy is rebuilt at once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from plantwarden.core.access import Actor, Requires
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PermissionDenied
from plantwarden.zones import applied
from plantwarden.zones.models import PlantVersion
from plantwarden.zones.plant.load import load_plant_bytes

router = APIRouter(tags=["plant"])
READ = Requires("platform:sites.read")
APPLY = Requires("platform:plant.apply")
MAX_CONTENT = 4 * 1024 * 1024


class PlantVersionOut(BaseModel):
    version: str
    applied_at: datetime
    applied_by: str
    source: str
    sites: list[str]
    previous: str | None

    @classmethod
    def of(cls, row: PlantVersion, actor: Actor) -> PlantVersionOut:
        sites = [site for site in row.sites if actor.may_see(site)]
        return cls(
            version=row.version,
            applied_at=row.applied_at,
            applied_by=row.applied_by,
            source=row.source,
            sites=sites,
            previous=row.previous,
        )


class PlantHistory(BaseModel):
    versions: list[PlantVersionOut]


class PlantUpload(BaseModel):
    content: str = Field(max_length=MAX_CONTENT, description="The plant.yaml text, exactly as in the file.")
    source: str = Field(
        default="plant.yaml", max_length=500, description="Where it comes from (file, commit)."
    )


class ApplyOut(BaseModel):
    version: str
    previous: str | None
    unchanged: bool
    created: list[str]


def _check_sites(session: Session, actor: Actor, declared: set[str]) -> None:
    """Applying replaces the whole model: the caller must may apply at every site the new model
    declares and at every site of the model in force (which it would otherwise take away)."""
    row = applied.latest(session)
    in_force = set(row.sites) if row is not None else set()
    hidden = sorted(site for site in declared | in_force if not actor.may_see(site))
    if hidden:
        raise PermissionDenied(
            "applying replaces the plant model of every site it or the model in force declares;"
            f" you may not apply at: {', '.join(hidden)}",
            details={"rule": "plant.apply-sites", "sites": hidden},
        )


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/plant", response_model=PlantVersionOut | None)
def current_route(request: Request, actor: Annotated[Actor, Depends(READ)]) -> PlantVersionOut | None:
    """The plant model in force (null when none was applied)."""
    with _store(request).transaction() as session:
        row = applied.latest(session)
        return PlantVersionOut.of(row, actor) if row is not None else None


@router.get("/plant/history", response_model=PlantHistory)
def history_route(request: Request, actor: Annotated[Actor, Depends(READ)]) -> PlantHistory:
    """Applied versions, newest first (at most 100)."""
    with _store(request).transaction() as session:
        return PlantHistory(
            versions=[PlantVersionOut.of(row, actor) for row in applied.history(session, 100)]
        )


@router.post("/plant", response_model=ApplyOut)
def apply_route(request: Request, actor: Annotated[Actor, Depends(APPLY)], body: PlantUpload) -> ApplyOut:
    """Check and apply plant.yaml content; a 422 lists every problem with line and column."""
    raw = body.content.encode("utf-8")
    model = load_plant_bytes(raw, body.source)
    context = Context(source="server", actor=actor.username)
    with _store(request).transaction() as session:
        _check_sites(session, actor, {site.id for site in model.sites})
        result = applied.apply_plant(session, context, raw, body.source, audit=request.app.state.audit)
    request.app.state.policy.invalidate()
    return ApplyOut(
        version=result.version,
        previous=result.previous,
        unchanged=result.unchanged,
        created=list(result.created),
    )
