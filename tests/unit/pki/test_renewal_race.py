"""Two renewals of one certificate at the same time (two devices holding a copy of one key, or a
device retrying while its first request is still being served) on PostgreSQL, where transactions
really run side by side: the second must wait for the first and be refused, never produce a
second valid successor."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.errors import CertificateStateConflict
from plantwarden.pki.models import CertificateRecord
from plantwarden.pki.services import DeviceIdentity
from tests.conftest import PostgresSchemas
from tests.unit.pki.support import make_csr

PLC = DeviceIdentity("plant-a", "plc-1", "cell-1", "operator")


def _wait_until_blocked_on_a_lock(store: Store, pid: int) -> None:
    """Until the backend `pid` waits for a row lock (the first renewal's)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with store.transaction() as session:
            waiting = session.scalar(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
        if waiting == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"the second renewal (backend {pid}) never waited for the first one's lock")


def test_of_two_concurrent_renewals_the_second_is_refused(
    postgres: PostgresSchemas, ctx: Context, ca: CertificateAuthority, clock: FixedClock
) -> None:
    store = postgres.store()
    migrate.ensure_ready(store)
    with store.transaction() as session:
        current = services.issue(session, ctx, None, ca, identity=PLC, csr=make_csr()).certificate
    clock.advance(timedelta(days=70))

    pid: list[int] = []
    started = threading.Event()
    outcome: list[BaseException | services.IssuedCertificate] = []

    def second_renewal() -> None:
        try:
            with store.transaction() as session:
                pid.append(int(session.scalar(text("SELECT pg_backend_pid()")) or 0))
                started.set()
                outcome.append(services.renew(session, ctx, None, ca, current=current, csr=make_csr()))
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)
            started.set()

    with store.transaction() as session:
        first = services.renew(session, ctx, None, ca, current=current, csr=make_csr())
        thread = threading.Thread(target=second_renewal, daemon=True)
        thread.start()
        assert started.wait(20) and pid, outcome
        _wait_until_blocked_on_a_lock(store, pid[0])
    # the first renewal is committed: the second goes on
    thread.join(30)
    assert not thread.is_alive()
    (result,) = outcome
    if not isinstance(result, CertificateStateConflict):
        pytest.fail(f"the second concurrent renewal was not refused: {result!r}")
    assert f"already renewed (by {first.record.serial}" in str(result)
    with store.transaction() as session:
        successors = session.scalars(
            select(CertificateRecord.serial).where(
                CertificateRecord.replaces == first.record.replaces, CertificateRecord.status == "valid"
            )
        ).all()
    assert successors == [first.record.serial]
