"""Zone scoping at object level: a role granted for one zone neither reads nor changes an object
of another zone, and lists are filtered; a site-wide grant sees the whole site, no other site."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.accounts.models import RoleGrant
from plantwarden.alerts import services as alerts
from plantwarden.alerts.models import Severity
from tests.web_support import CTX, Server, server

PLACES = {
    "a1": ("plant-a", "cell-1"),
    "a2": ("plant-a", "cell-2"),
    "a": ("plant-a", None),
    "b1": ("plant-b", "cell-1"),
}


@pytest.fixture
def running(data_dir: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    for made in server(data_dir):
        made.user("otto", "operator", site="plant-a", zone="cell-1")
        made.user("vera", "viewer", site="plant-a")
        ids = {}
        with made.store.transaction() as session:
            for name, (site, zone) in PLACES.items():
                draft = alerts.AlertDraft(
                    site=site,
                    zone=zone,
                    title=name,
                    severity=Severity.HIGH,
                    detector="t",
                    rule_id="R",
                    rule_name="r",
                )
                ids[name] = str(alerts.raise_alert(session, CTX, draft).id)
        yield made, ids


def titles(made: Server, token: str) -> set[str]:
    response = made.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    return {a["title"] for a in response.json()["alerts"]}


def test_a_zone_operator_sees_and_changes_only_their_zone(running: tuple[Server, dict[str, str]]) -> None:
    made, ids = running
    token = made.token("otto")
    headers = {"Authorization": f"Bearer {token}"}
    assert titles(made, token) == {"a1"}
    assert made.client.get(f"/api/v1/alerts/{ids['a1']}", headers=headers).status_code == 200
    for other in ("a2", "a", "b1"):
        assert made.client.get(f"/api/v1/alerts/{ids[other]}", headers=headers).status_code == 404, other
        refused = made.client.post(f"/api/v1/alerts/{ids[other]}/acknowledge", json={}, headers=headers)
        assert refused.status_code == 404, other
    done = made.client.post(f"/api/v1/alerts/{ids['a1']}/acknowledge", json={"note": "mine"}, headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"


def test_a_site_wide_viewer_sees_the_whole_site_and_no_other(running: tuple[Server, dict[str, str]]) -> None:
    made, ids = running
    token = made.token("vera")
    assert titles(made, token) == {"a1", "a2", "a"}
    headers = {"Authorization": f"Bearer {token}"}
    assert made.client.get(f"/api/v1/alerts/{ids['b1']}", headers=headers).status_code == 404


def test_a_time_limited_grant_works_until_it_ends(data_dir: Path) -> None:
    for made in server(data_dir):
        made.user("tess")
        soon = datetime.now(UTC) + timedelta(hours=1)
        with made.store.transaction() as session:
            accounts.grant_role(session, CTX, "tess", "viewer", "plant-a", valid_until=soon)
            accounts.grant_role(session, CTX, "tess", "viewer", "plant-b", valid_until=soon)
            draft = alerts.AlertDraft(
                site="plant-b", title="b", severity=Severity.LOW, detector="t", rule_id="R", rule_name="r"
            )
            alert_id = alerts.raise_alert(session, CTX, draft).id
        headers = {"Authorization": f"Bearer {made.token('tess')}"}
        assert made.client.get(f"/api/v1/alerts/{alert_id}", headers=headers).status_code == 200
        with made.store.transaction() as session:  # the plant-b grant ends
            grant = session.scalars(select(RoleGrant).where(RoleGrant.site == "plant-b")).one()
            grant.valid_until = datetime.now(UTC) - timedelta(minutes=1)
        policy = getattr(made.client.app, "state").policy  # noqa: B009
        policy.invalidate()
        assert made.client.get(f"/api/v1/alerts/{alert_id}", headers=headers).status_code == 404
        assert made.client.get("/api/v1/alerts", headers=headers).status_code == 200  # plant-a still holds


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("0001-01-01T00:00+01:00", 422),  # no UTC form: before the first representable instant
        ("9999-12-31T23:59-01:00", 422),  # no UTC form: after the last
        ("0001-01-01T00:00-01:00", 200),
        ("2000-01-01T00:00", 200),  # naive: taken as UTC
    ],
)
def test_a_time_filter_out_of_range_is_refused_not_a_server_error(
    running: tuple[Server, dict[str, str]], since: str, expected: int
) -> None:
    made, _ = running
    headers = {"Authorization": f"Bearer {made.token('vera')}"}
    response = made.client.get("/api/v1/alerts", params={"since": since}, headers=headers)
    assert response.status_code == expected, response.text
    if expected == 422:
        assert "outside the range of storable times" in response.text
    else:
        assert {a["title"] for a in response.json()["alerts"]} == {"a1", "a2", "a"}
