"""Telemetry routes of the JSON API: push samples (`platform:telemetry.write`) and query them
(`platform:records.read`), each at the sites where the caller holds the action.

A push is checked whole before anything is stored: one bad sample refuses the request (422, the
message names the sample's index) and nothing of it is written; an accepted push is durable when
it is answered. The server writes under the writer name `telemetry-api`, opening and closing its
partitions per request, so that no partition stays held between pushes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from plantwarden.core.access import Actor, Requires
from plantwarden.core.clock import UtcDatetime, nanoseconds
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput, PermissionDenied
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import Settings
from plantwarden.monitoring.telemetry import (
    SampleQuery,
    TelemetryIngest,
    check_site,
    query_samples,
    sample_rows,
    samples_from,
)

router = APIRouter(prefix="/telemetry", tags=["telemetry"])

MAX_SAMPLES = 5000
"""Samples per push; the server's 1 MiB body limit holds about this many typical samples."""
MAX_QUERY = 10_000
API_WRITER = "telemetry-api"


class TelemetryPush(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(max_length=63, description="The site the samples belong to.")
    samples: list[Any] = Field(
        description="Objects with ts (ISO 8601 or integer nanoseconds), device, variable, value "
        "(a number, or null when missing) and quality (0-127, optional, 0 good)."
    )


class PushResult(BaseModel):
    site: str
    accepted: int


class SampleOut(BaseModel):
    ts: str
    ts_ns: int
    device: str
    variable: str
    value: float | None
    quality: int


class SampleList(BaseModel):
    site: str
    samples: list[SampleOut]
    count: int


def _backend(request: Request) -> tuple[PartitionBackend, RecordsSettings]:
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    records = settings[RecordsSettings]
    return open_backend(settings[CoreSettings], records, store), records


def _check_place(actor: Actor, site: str, what: str) -> str:
    check_site(site)
    if not actor.may_see(site):
        raise PermissionDenied(f"{actor.username} may not {what} at site {site}")
    return site


@router.post("", response_model=PushResult)
def push_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:telemetry.write"))],
    body: TelemetryPush,
) -> PushResult:
    """Store up to 5000 samples of one site; all of them, or none when one is bad."""
    site = _check_place(actor, body.site, "push telemetry")
    if not body.samples:
        raise InvalidInput("no samples to push")
    if len(body.samples) > MAX_SAMPLES:
        raise InvalidInput(f"at most {MAX_SAMPLES} samples per push; this one has {len(body.samples)}")
    samples = samples_from(body.samples, time.time_ns())
    backend, records = _backend(request)
    ingest = TelemetryIngest(
        backend, API_WRITER, partition_seconds=records.partition_seconds, chunk_rows=records.chunk_rows
    )
    with ingest:
        accepted = ingest.write(site, samples)
    return PushResult(site=site, accepted=accepted)


@router.get("", response_model=SampleList)
def query_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:records.read"))],
    site: Annotated[str, Query(max_length=63)],
    device: Annotated[str | None, Query(max_length=128)] = None,
    variable: Annotated[str | None, Query(max_length=128)] = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY)] = 1000,
    oldest_first: bool = False,
) -> SampleList:
    """Samples of one site, newest first, filtered by device, variable and time."""
    _check_place(actor, site, "read records")
    request_ = SampleQuery(
        site=site,
        device=device,
        variable=variable,
        since_ns=_ns(since),
        until_ns=_ns(until),
        limit=limit,
        newest_first=not oldest_first,
    )
    backend, _ = _backend(request)
    rows = [SampleOut(**row) for row in sample_rows(query_samples(backend, request_))]
    return SampleList(site=site, samples=rows, count=len(rows))


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else nanoseconds(moment)
