"""What the telemetry ingest did per device: read from the windows and refusal counts it stores."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.devices.models import TelemetryRefusal, TelemetryWindow


@dataclass
class DeviceTelemetryStatus:
    """One device of one site: messages accepted, duplicates, replays, refusals by reason."""

    site: str
    device: str
    accepted: int = 0
    duplicates: int = 0
    replays: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    last_seen: datetime | None = None


def telemetry_status(session: Session, *, site: str | None = None) -> list[DeviceTelemetryStatus]:
    """Every device the ingest heard of (also those only refused), by site and device."""
    found: dict[tuple[str, str], DeviceTelemetryStatus] = {}
    windows = select(TelemetryWindow)
    refusals = select(TelemetryRefusal)
    if site is not None:
        windows = windows.where(TelemetryWindow.site == site)
        refusals = refusals.where(TelemetryRefusal.site == site)
    for row in session.scalars(windows):
        found[(row.site, row.device)] = DeviceTelemetryStatus(
            row.site, row.device, row.accepted, row.duplicates, row.replays, {}, row.updated_at
        )
    by_device: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for refusal in session.scalars(refusals):
        key = (refusal.site, refusal.device)
        by_device[key][refusal.reason] = refusal.count
        status = found.setdefault(key, DeviceTelemetryStatus(*key))
        if status.last_seen is None or refusal.last_at > status.last_seen:
            status.last_seen = refusal.last_at
    for key, reasons in by_device.items():
        found[key].refused = dict(sorted(reasons.items()))
    return [found[key] for key in sorted(found)]
