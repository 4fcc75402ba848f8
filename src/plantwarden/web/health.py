"""Liveness, readiness and status."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from plantwarden import __version__
from plantwarden.core import migrate
from plantwarden.core.access import PUBLIC, Requires
from plantwarden.core.db import Store
from plantwarden.core.errors import StoreNotReady

router = APIRouter(tags=["health"])
api_router = APIRouter(tags=["status"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    revision: str


class Status(BaseModel):
    version: str
    store: str
    revision: str | None
    expected_revision: str
    ready: bool


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/healthz", response_model=Health, dependencies=[Depends(PUBLIC)])
def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "store not ready"}},
    dependencies=[Depends(PUBLIC)],
)
def readyz(request: Request) -> Readiness:
    """The store is reachable and at the schema revision this version expects."""
    current = migrate.current_revision(_store(request))
    head = migrate.head_revision()
    if current != head:
        raise StoreNotReady(f"the store is at revision {current}, this version expects {head}")
    return Readiness(status="ready", revision=head)


@api_router.get("/status", response_model=Status, dependencies=[Depends(Requires("platform:status.read"))])
def status(request: Request) -> Status:
    """Version, store backend and schema revision."""
    store = _store(request)
    head = migrate.head_revision()
    try:
        current = migrate.current_revision(store)
    except StoreNotReady:
        current = None
    return Status(
        version=__version__,
        store=store.dialect,
        revision=current,
        expected_revision=head,
        ready=current == head,
    )
