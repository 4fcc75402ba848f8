"""Delivery to real receivers: a signed HTTPS webhook, syslog over mutual TLS, targets that are
down for a while, a broken target next to a working one (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from plantwarden.alerts import services as alerts
from plantwarden.alerts.models import Alert, Severity
from plantwarden.cli.catalog import SECTIONS
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Secret, load_settings
from plantwarden.workers.notify.cli import notify_group, targets_from
from plantwarden.workers.notify.delivery import TargetWorker, drain, run_workers
from plantwarden.workers.notify.settings import NotifySettings
from plantwarden.workers.notify.target import DeliveryFailed
from tests.helpers import wait_for
from tests.unit.workers.notify_support import (
    SECRET,
    Pki,
    Provider,
    SyslogReceiver,
    WebhookReceiver,
    alert_event_ids,
    first_seen_order,
    make_pki,
    raise_alerts,
    server_context,
)


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def webhook(pki: Pki) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(context=server_context(pki, require_client=False)).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def syslog(pki: Pki) -> Iterator[SyslogReceiver]:
    receiver = SyslogReceiver(context=server_context(pki, require_client=True)).start()
    yield receiver
    receiver.stop()


def settings_for(pki: Pki, webhook: WebhookReceiver | None, syslog: SyslogReceiver | None) -> NotifySettings:
    return NotifySettings(
        webhook_url=webhook.url if webhook else None,
        webhook_secret=Secret(SECRET),
        webhook_ca_file=pki.ca,
        webhook_timeout=2.0,
        syslog_address=syslog.address if syslog else None,
        syslog_ca_file=pki.ca,
        syslog_client_cert=pki.client_cert,
        syslog_client_key=pki.client_key,
        syslog_timeout=2.0,
        from_start=True,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
    )


def workers(store: Store, settings: NotifySettings) -> list[TargetWorker]:
    return [TargetWorker(store, target, settings) for target in targets_from(settings)]


class Running:
    """The workers running in threads, as `notify run` runs them."""

    def __init__(self, running: list[TargetWorker]) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_workers, args=(running, self.stop), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_every_alert_event_reaches_both_targets_signed_and_in_order(
    ready: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver
) -> None:
    raise_alerts(ready, 5)
    for worker in workers(ready, settings_for(pki, webhook, syslog)):
        assert drain(worker) == 5
    expected = alert_event_ids(ready)
    assert len(expected) == 5 and webhook.event_ids() == expected
    # Acknowledged by the server's TCP: its reader thread may still be parsing the last frames.
    wait_for(lambda: True if len(syslog.messages) == 5 else None, what="syslog to read its messages")
    assert syslog.event_ids() == expected
    assert webhook.bad_signatures == 0
    document = webhook.documents[0]
    assert document["alert"]["title"] == "Write to PLC-0 outside the maintenance window"
    assert document["alert"]["severity"] == "high" and document["alert"]["techniques"] == ["T0836"]
    assert webhook.headers[0]["X-Plantwarden-Event-Id"] == expected[0]
    assert syslog.peers == ["client.test"]  # the client certificate was presented and checked
    assert syslog.messages[0].priority == 16 * 8 + 3


def test_lifecycle_events_carry_the_alert_as_it_is_now(
    ready: Store, pki: Pki, webhook: WebhookReceiver
) -> None:
    raise_alerts(ready, 1)
    with ready.transaction() as session:
        alert_id = session.scalars(select(Alert.id)).one()
        alerts.acknowledge(session, Context(source="test", actor="erika"), alert_id, "on it")
    with ready.transaction() as session:
        draft = alerts.AlertDraft("plant-a", "Scan", Severity.LOW, "rules", "r-9", "Scan", dedup_key="scan")
        alerts.raise_alert(session, Context(source="test"), draft)
        alerts.raise_alert(session, Context(source="test"), replace(draft, severity=Severity.CRITICAL))
    assert drain(workers(ready, settings_for(pki, webhook, None))[0]) == 4
    types = [d["event"]["type"] for d in webhook.documents]
    assert types == [
        "alerts.AlertRaised",
        "alerts.AlertAcknowledged",
        "alerts.AlertRaised",
        "alerts.AlertRepeated",
    ]
    assert webhook.documents[1]["event"]["payload"]["note"] == "on it"
    assert webhook.documents[0]["alert"]["status"] == "acknowledged"  # the alert as it is at delivery
    # the alert raised at low severity and repeated at critical is shown critical in both
    assert [d["alert"]["severity"] for d in webhook.documents[2:]] == ["critical", "critical"]


def test_a_refused_signature_or_error_status_moves_no_cursor(
    ready: Store, pki: Pki, webhook: WebhookReceiver
) -> None:
    raise_alerts(ready, 2)
    settings = replace(settings_for(pki, webhook, None), webhook_secret=Secret("another-secret-of-16+"))
    worker = workers(ready, settings)[0]
    worker.start()
    with pytest.raises(DeliveryFailed, match="answered 401"):
        worker.run_once()
    assert worker.position() == 0 and webhook.bad_signatures == 1
    webhook.secret = "another-secret-of-16+"
    webhook.status = 503
    with pytest.raises(DeliveryFailed, match="answered 503"):
        worker.run_once()
    assert worker.position() == 0 and webhook.documents == []


def test_an_untrusted_certificate_is_a_failed_delivery(
    ready: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver, tmp_path: Path
) -> None:
    raise_alerts(ready, 1)
    stranger = make_pki(tmp_path)  # a CA that did not sign the servers' certificates
    settings = replace(
        settings_for(pki, webhook, syslog), webhook_ca_file=stranger.ca, syslog_ca_file=stranger.ca
    )
    for worker in workers(ready, settings):
        with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
            drain(worker)
        assert worker.position() == 0
    assert webhook.documents == [] and syslog.messages == []


def test_targets_down_for_a_while_get_every_event_in_order_when_back(
    ready: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver
) -> None:
    running = Running(workers(ready, settings_for(pki, webhook, syslog)))
    try:
        raise_alerts(ready, 5)
        wait_for(lambda: True if len(syslog.messages) == 5 and len(webhook.documents) == 5 else None)
        webhook.stop()
        syslog.stop()
        raise_alerts(ready, 20, start=5)
        threading.Event().wait(0.5)  # several failed attempts
        assert len(webhook.documents) == len(syslog.messages) == 5
        webhook.start()
        syslog.start()
        expected = alert_event_ids(ready)
        wait_for(
            lambda: True if len(set(webhook.event_ids())) == 25 else None, what="the webhook to catch up"
        )
        wait_for(lambda: True if len(set(syslog.event_ids())) == 25 else None, what="syslog to catch up")
    finally:
        running.close()
    assert first_seen_order(webhook.event_ids()) == expected
    assert first_seen_order(syslog.event_ids()) == expected
    assert len(webhook.event_ids()) == 25  # the webhook acknowledges each POST: no copies


def test_a_broken_target_does_not_hold_up_the_other(
    ready: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver
) -> None:
    webhook.status = 500
    running = Running(workers(ready, settings_for(pki, webhook, syslog)))
    try:
        raise_alerts(ready, 10)
        wait_for(lambda: True if len(syslog.messages) == 10 else None, what="syslog to get everything")
        assert webhook.documents == []
        webhook.status = 204
        wait_for(lambda: True if len(webhook.documents) == 10 else None, what="the webhook to recover")
    finally:
        running.close()
    assert webhook.event_ids() == syslog.event_ids() == alert_event_ids(ready)


def test_the_severity_threshold_and_a_first_start_at_the_head(
    ready: Store, pki: Pki, webhook: WebhookReceiver
) -> None:
    raise_alerts(ready, 2)  # before the target's first run: not sent unless from_start
    settings = replace(settings_for(pki, webhook, None), from_start=False, min_severity="critical")
    worker = workers(ready, settings)[0]
    worker.start()
    raise_alerts(ready, 2, start=10, severity=Severity.MEDIUM)
    raise_alerts(ready, 1, start=20, severity=Severity.CRITICAL)
    assert drain(worker) == 1
    assert [d["alert"]["rule_id"] for d in webhook.documents] == ["rule-20"]
    assert worker.position() == len(alert_event_ids(ready))  # skipped by filter, not left behind


def test_notify_run_drain_and_status_report_each_target(
    ready: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver, tmp_path: Path
) -> None:
    raise_alerts(ready, 3)
    syslog.stop()
    overrides = {
        "data_dir": str(tmp_path),
        "database_url": _url_of(ready),
        "notify.webhook_url": webhook.url,
        "notify.webhook_secret": SECRET,
        "notify.webhook_ca_file": str(pki.ca),
        "notify.syslog_address": syslog.address,
        "notify.syslog_ca_file": str(pki.ca),
        "notify.syslog_client_cert": str(pki.client_cert),
        "notify.syslog_client_key": str(pki.client_key),
        "notify.from_start": "true",
    }
    sections = SECTIONS if NotifySettings in SECTIONS else (*SECTIONS, NotifySettings)
    runtime = Runtime(load_settings(sections, environ={}, cwd=tmp_path, overrides=overrides))
    try:
        result = CliRunner().invoke(notify_group, ["run", "--drain"], obj=Provider(runtime))
        status = CliRunner().invoke(notify_group, ["status"], obj=Provider(runtime))
    finally:
        runtime.close()
    assert result.exit_code == 1, result.output
    assert "webhook: delivered 3, cursor at 3" in result.output
    assert "syslog: syslog tls://127.0.0.1" in result.output and "Connection refused" in result.output
    assert "webhook  cursor 3, log head 3, 0 events behind" in status.output
    assert "syslog   cursor 0, log head 3, 3 events behind" in status.output


def _url_of(store: Store) -> str:
    """The store's URL, for another engine (on PostgreSQL with the test's schema as search path)."""
    url = store.engine.url
    if store.dialect == "postgresql":
        with store.engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)
