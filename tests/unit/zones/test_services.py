from __future__ import annotations

import pytest

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.zones import services
from plantwarden.zones.errors import InvalidIdentifier, SegmentExists, SiteExists, SiteNotFound


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def test_a_new_site_has_its_default_segment(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        services.create_site(session, ctx, "plant-a", "  Plant A ")
    with ready.transaction() as session:
        site = services.get_site(session, "plant-a")
        assert site.name == "Plant A"
        assert [(g.name, g.created_at) for g in site.segments] == [("default", ctx.clock.now())]


def test_a_site_id_is_unique(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        services.create_site(session, ctx, "plant-a", "Plant A")
    with pytest.raises(SiteExists, match="already exists"), ready.transaction() as session:
        services.create_site(session, ctx, "plant-a", "Another")


@pytest.mark.parametrize(
    "site_id", ["", "Plant-A", "-a", "a-", "a_b", "x" * 64, "a b", "ü", "plant-a\n", "\nplant-a"]
)
def test_site_ids_are_lower_case_slugs(ready: Store, ctx: Context, site_id: str) -> None:
    with pytest.raises(InvalidIdentifier, match="not valid"), ready.transaction() as session:
        services.create_site(session, ctx, site_id, "Name")


def test_a_site_needs_a_name(ready: Store, ctx: Context) -> None:
    with pytest.raises(InvalidIdentifier, match="needs a name"), ready.transaction() as session:
        services.create_site(session, ctx, "plant-a", "   ")


@pytest.mark.parametrize(
    ("name", "problem"),
    [("N" * 201, "the site name has 201 characters; at most 200"), ("Plant\nB", "holds a line break")],
)
def test_a_site_name_is_one_line_that_fits_its_column(
    ready: Store, ctx: Context, name: str, problem: str
) -> None:
    """Cut, it would lose its end (PostgreSQL refuses it inside the database); a line break would
    break `site list`."""
    with pytest.raises(InvalidInput, match=problem), ready.transaction() as session:
        services.create_site(session, ctx, "plant-b", name)
    with ready.transaction() as session:
        services.create_site(session, ctx, "plant-b", "N" * 200)
    with ready.transaction() as session:
        assert services.get_site(session, "plant-b").name == "N" * 200


def test_segments_are_unique_per_site_and_can_repeat_across_sites(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        for site in ("plant-a", "plant-b"):
            services.create_site(session, ctx, site, site)
            services.add_segment(session, ctx, site, "cell-1", "filling")
    with pytest.raises(SegmentExists), ready.transaction() as session:
        services.add_segment(session, ctx, "plant-a", "cell-1")
    with ready.transaction() as session:
        assert [[g.name for g in s.segments] for s in services.list_sites(session)] == [
            ["cell-1", "default"],
            ["cell-1", "default"],
        ]


def test_unknown_sites_are_reported(ready: Store, ctx: Context) -> None:
    with pytest.raises(SiteNotFound, match="no site 'nowhere'"), ready.transaction() as session:
        services.add_segment(session, ctx, "nowhere", "cell-1")
