"""Events of the plant model."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.events import event_type


@event_type("zones.SiteCreated")
@dataclass(frozen=True)
class SiteCreated:
    """A site was added to the plant model, with its default network segment."""

    site: str
    name: str


@event_type("zones.SegmentAdded")
@dataclass(frozen=True)
class SegmentAdded:
    """A network segment was added to a site."""

    site: str
    segment: str
    description: str


@event_type("zones.PlantApplied")
@dataclass(frozen=True)
class PlantApplied:
    """A plant model (plant.yaml) was applied: its SHA-256, the one it replaced, the sites it
    declares, the file it came from, who applied it, and the sites and segments it created."""

    version: str
    previous: str | None
    sites: list[str]
    source: str
    applied_by: str
    created: list[str]
