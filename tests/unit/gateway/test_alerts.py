"""Denial alerts survive a store that is down: kept for the next flush, not lost."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from plantwarden.alerts.models import Alert
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.gateway.alerts import Denial, DenialAlerts


def test_alerts_wait_for_a_store_that_was_down(store: Store, ctx: Context) -> None:
    migrate.upgrade(store)
    down = Store(
        create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    )
    alerts = DenialAlerts(down, ctx)
    denial = Denial("plant-a", "cell-1", "plc-1", "cert_role operator", "hmi-1", "10.0.0.5", "default-deny",
                    "no rule allows it", 6, 0, time.time_ns())  # fmt: skip
    assert alerts.note(denial, 0.0)
    with pytest.raises(OperationalError):
        alerts.flush(1.0)
    alerts.store = store  # the store is back
    assert alerts.flush(2.0) == 1
    with store.transaction() as session:
        assert [a.rule_id for a in session.scalars(select(Alert))] == ["pw-gateway-denied"]
