"""`plantwarden events list` and `events consumers` on the embedded log, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from plantwarden.core import eventlog, migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.zones import services
from tests.conftest import make_settings
from tests.helpers import plantwarden


def test_events_list_and_consumers_show_the_log_and_how_far_each_consumer_read_it(
    data_dir: Path, ctx: Context
) -> None:
    env = {"PLANTWARDEN_DATA_DIR": str(data_dir)}
    empty = plantwarden("events", "consumers", cwd=data_dir, env=env)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == "no consumers yet (log head at 0)\n"
    store = Store.from_settings(make_settings(data_dir)[CoreSettings])
    try:
        migrate.ensure_ready(store)
        with store.transaction() as session:
            services.create_site(session, ctx, "plant-a", "Plant A")
        eventlog.Consumer(store, "audit-trail", lambda session, event: None).run_once()
        with store.transaction() as session:
            services.add_segment(session, ctx, "plant-a", "cell-1")
    finally:
        store.close()

    table = plantwarden("events", "list", cwd=data_dir, env=env).stdout.splitlines()
    assert [row.split() for row in table] == [
        ["position", "time", "type", "site", "source"],
        ["1", "2026-11-26T08:00:00+00:00", "zones.SiteCreated", "plant-a", "test"],
        ["2", "2026-11-26T08:00:00+00:00", "zones.SegmentAdded", "plant-a", "test"],
    ]
    newest = plantwarden("events", "list", "--limit", "1", "--format", "json", cwd=data_dir, env=env)
    assert [(e["position"], e["type"], e["payload"]["segment"]) for e in json.loads(newest.stdout)] == [
        (2, "zones.SegmentAdded", "cell-1")
    ]
    consumers = plantwarden("events", "consumers", cwd=data_dir, env=env).stdout.splitlines()
    assert [line.split()[:4] for line in consumers] == [
        ["consumer", "position", "head", "behind"],
        ["audit-trail", "1", "2", "1"],
    ]
