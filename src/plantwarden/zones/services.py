"""Use cases of the plant model: take a session and plain values, raise domain errors."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.context import Context
from plantwarden.core.events import envelope
from plantwarden.core.parsing import one_line
from plantwarden.zones.errors import InvalidIdentifier, SegmentExists, SiteExists, SiteNotFound
from plantwarden.zones.events import SegmentAdded, SiteCreated
from plantwarden.zones.models import NetworkSegment, Site
from plantwarden.zones.plant.schema import SITE_NAME_LENGTH

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DEFAULT_SEGMENT = "default"


def _check_slug(kind: str, value: str) -> None:
    if not SLUG.fullmatch(value):
        raise InvalidIdentifier(
            f"{kind} {value!r} is not valid: use 1-63 lower-case letters, digits and inner hyphens"
        )


def create_site(session: Session, ctx: Context, site_id: str, name: str) -> Site:
    """Create a site with its `default` network segment; announces `SiteCreated`."""
    _check_slug("site id", site_id)
    if not name.strip():
        raise InvalidIdentifier("a site needs a name")
    shown = one_line(name, "the site name", SITE_NAME_LENGTH)  # whole, and one line of `site list`
    if session.get(Site, site_id) is not None:
        raise SiteExists(f"site {site_id!r} already exists", details={"site": site_id})
    now = ctx.clock.now()
    site = Site(id=site_id, name=shown, created_at=now)
    site.segments.append(
        NetworkSegment(
            name=DEFAULT_SEGMENT,
            description="The site's network before it is divided into segments.",
            created_at=now,
        )
    )
    session.add(site)
    session.flush()
    eventlog.record(
        session, envelope(SiteCreated(site.id, site.name), clock=ctx.clock, source=ctx.source, site=site.id)
    )
    return site


def add_segment(
    session: Session, ctx: Context, site_id: str, name: str, description: str = ""
) -> NetworkSegment:
    """Add a network segment to a site; announces `SegmentAdded`."""
    _check_slug("segment name", name)
    site = get_site(session, site_id)
    if session.get(NetworkSegment, (site_id, name)) is not None:
        raise SegmentExists(f"site {site_id!r} already has a segment {name!r}")
    segment = NetworkSegment(name=name, description=description, created_at=ctx.clock.now())
    site.segments.append(segment)
    session.flush()
    added = SegmentAdded(site_id, name, description)
    eventlog.record(session, envelope(added, clock=ctx.clock, source=ctx.source, site=site_id))
    return segment


def get_site(session: Session, site_id: str) -> Site:
    """The site with this id, or `SiteNotFound`."""
    site = session.get(Site, site_id)
    if site is None:
        raise SiteNotFound(f"no site {site_id!r}", details={"site": site_id})
    return site


def list_sites(session: Session) -> Sequence[Site]:
    """Every site, by id."""
    return session.scalars(select(Site).order_by(Site.id)).all()
