"""The console benchmark's fill (`bench/console_fill.py`) writes what it says: the hosts asked for,
spread over both sites and their zones in a plant model that loads, and alerts that the console's
queries count as the fill meant them (open, closed, suppressed), each announced in the event log."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bench.console_fill import write_alerts
from bench.console_plant import SITES, ZONES, hosts, plant_yaml
from sqlalchemy import func, select

from plantwarden.alerts.models import Alert, AlertStatus
from plantwarden.alerts.queries import AlertFilter, count_suppressed, list_alerts
from plantwarden.core import migrate
from plantwarden.core.db import Store
from plantwarden.core.eventlog import EventRecord
from plantwarden.zones.plant.load import load_plant_bytes


def test_the_hosts_asked_for_are_spread_over_every_zone_of_both_sites() -> None:
    plant = hosts(501)
    assert len(plant) == 501 and len({h.ip for h in plant}) == 501 and len({h.mac for h in plant}) == 501
    per_place = Counter((h.site, h.zone) for h in plant)
    assert set(per_place) == {(site, zone[0]) for site in SITES for zone in ZONES}
    model = load_plant_bytes(plant_yaml(plant[::50]).encode())
    assert [(s.id, len(s.zones), len(s.conduits)) for s in model.sites] == [(site, 5, 3) for site in SITES]
    assert sum(len(s.assets) for s in model.sites) == len(plant[::50])


def test_the_alerts_are_stored_as_the_console_reads_them(store: Store) -> None:
    migrate.ensure_ready(store)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with store.transaction() as session:
        events = write_alerts(session, hosts(200), 400, now)
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 400
        raised = select(func.count()).where(EventRecord.type == "alerts.AlertRaised")
        assert session.scalar(raised) == 400
        assert session.scalar(select(func.count()).select_from(EventRecord)) == events > 400
        statuses = Counter(session.scalars(select(Alert.status)))
        assert all(statuses[status] > 0 for status in AlertStatus)
        shown = list_alerts(session, AlertFilter(suppressed=False, limit=1000))
        hidden = count_suppressed(session, AlertFilter(suppressed=False))
        assert hidden > 0 and len(shown) + hidden == 400
        assert any(a.rule_id.startswith("zone.") for a in shown)
