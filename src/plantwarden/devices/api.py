"""Device telemetry routes of the JSON API (under /api/v1/devices).

- `GET /devices/telemetry-recipient` (public, like the CA chain): the platform's telemetry
  recipient certificate, the key devices encrypt their messages to. Issued by the platform CA on
  first use; a device checks it against the chain it got at enrolment.
- `GET /devices/telemetry` (`platform:records.read`, the caller's sites): per device, how many
  messages were accepted, redelivered (duplicates) and replayed, and what was refused and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from plantwarden.core.access import PUBLIC, Actor, Requires
from plantwarden.devices.status import DeviceTelemetryStatus, telemetry_status
from plantwarden.pki.est_common import authority, store_of
from plantwarden.pki.service_certs import Purpose, ensure_service_identity

router = APIRouter(prefix="/devices", tags=["devices"])
RECIPIENT = "telemetry-recipient"


@router.get(
    "/telemetry-recipient",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def recipient_route(request: Request, _: Annotated[None, Depends(PUBLIC)]) -> Response:
    """The platform's telemetry recipient certificate (PEM)."""
    ca = authority(request)
    identity = await run_in_threadpool(ensure_service_identity, ca, RECIPIENT, Purpose.RECIPIENT)
    return Response(
        identity.load_certificate().public_bytes(Encoding.PEM), media_type="application/x-pem-file"
    )


class DeviceTelemetryOut(BaseModel):
    site: str
    device: str
    accepted: int
    duplicates: int
    replays: int
    refused: dict[str, int]
    last_seen: datetime | None


@router.get("/telemetry")
def telemetry_route(
    request: Request,
    actor: Annotated[Actor, Depends(Requires("platform:records.read"))],
    site: str | None = None,
) -> list[DeviceTelemetryOut]:
    """What the telemetry ingest did per device: accepted, duplicates, replays, refusals by reason."""
    with store_of(request).transaction() as session:
        rows: list[DeviceTelemetryStatus] = telemetry_status(session, site=site)
    visible = [row for row in rows if actor.may_see(row.site)]
    return [DeviceTelemetryOut(**vars(row)) for row in visible]
