"""The notifier as a process: killed mid-way and restarted it loses nothing (SQLite and PostgreSQL);
a server that resets the connection, and UDP in a lab."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from plantwarden.core import migrate
from plantwarden.core.db import Store
from plantwarden.workers.notify.settings import SyslogAddress
from plantwarden.workers.notify.syslog import SyslogTarget
from plantwarden.workers.notify.target import DeliveryFailed
from tests.helpers import clean_environment, wait_for
from tests.unit.workers.notify_support import (
    ALERT,
    SECRET,
    Pki,
    SyslogReceiver,
    WebhookReceiver,
    alert_event_ids,
    first_seen_order,
    make_pki,
    notification,
    parse_rfc5424,
    raise_alerts,
    server_context,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def receivers(pki: Pki) -> Iterator[tuple[WebhookReceiver, SyslogReceiver]]:
    webhook = WebhookReceiver(delay=0.02).start()  # plain http on loopback, slow enough to kill mid-way
    syslog = SyslogReceiver(context=server_context(pki, require_client=True)).start()
    yield webhook, syslog
    webhook.stop()
    syslog.stop()


def url_of(store: Store) -> str:
    url = store.engine.url
    if store.dialect == "postgresql":
        with store.engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def start_notifier(store: Store, pki: Pki, webhook: WebhookReceiver, syslog: SyslogReceiver, cwd: Path) -> (
    subprocess.Popen[bytes]
):  # fmt: skip
    env = {
        "PLANTWARDEN_DATA_DIR": str(cwd),
        "PLANTWARDEN_DATABASE_URL": url_of(store),
        "PLANTWARDEN_NOTIFY_WEBHOOK_URL": webhook.url,
        "PLANTWARDEN_NOTIFY_WEBHOOK_SECRET": SECRET,
        "PLANTWARDEN_NOTIFY_SYSLOG_ADDRESS": syslog.address,
        "PLANTWARDEN_NOTIFY_SYSLOG_CA_FILE": str(pki.ca),
        "PLANTWARDEN_NOTIFY_SYSLOG_CLIENT_CERT": str(pki.client_cert),
        "PLANTWARDEN_NOTIFY_SYSLOG_CLIENT_KEY": str(pki.client_key),
        "PLANTWARDEN_NOTIFY_SYSLOG_TIMEOUT": "2",
        "PLANTWARDEN_NOTIFY_BATCH_SIZE": "10",
        "PLANTWARDEN_NOTIFY_RETRY_INITIAL_SECONDS": "0.1",
        "PLANTWARDEN_NOTIFY_RETRY_MAX_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "tests.unit.workers.notify_runner", "run"]
    with (cwd / "stderr.log").open("ab") as stderr:
        return subprocess.Popen(command, env=clean_environment(env), cwd=cwd, stderr=stderr)


def test_a_killed_notifier_resumes_and_every_event_arrives_at_least_once_in_order(
    ready: Store, pki: Pki, receivers: tuple[WebhookReceiver, SyslogReceiver], tmp_path: Path
) -> None:
    webhook, syslog = receivers
    process = start_notifier(ready, pki, webhook, syslog, tmp_path)
    try:
        wait_for(lambda: True if (tmp_path / "stderr.log").read_text().count("notifying") == 2 else None)
        raise_alerts(ready, 60)
        wait_for(lambda: True if len(webhook.documents) >= 15 else None, what="deliveries to start")
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = len(set(webhook.event_ids()))
        raise_alerts(ready, 40, start=60)  # more alerts while the notifier is down
        process = start_notifier(ready, pki, webhook, syslog, tmp_path)
        expected = alert_event_ids(ready)
        wait_for(lambda: True if len(set(webhook.event_ids())) == 100 else None, timeout=40, what="webhook")
        wait_for(lambda: True if len(set(syslog.event_ids())) == 100 else None, timeout=20, what="syslog")
        process.send_signal(signal.SIGTERM)  # a clean stop ends the current delivery and exits
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert 15 <= killed_at < 100
    assert first_seen_order(webhook.event_ids()) == expected
    assert first_seen_order(syslog.event_ids()) == expected
    assert len(webhook.event_ids()) - 100 <= 1  # one POST may have been answered but not recorded
    assert len(syslog.event_ids()) - 100 <= 10  # at most one batch of the syslog target again
    assert webhook.bad_signatures == 0


@pytest.mark.parametrize(
    ("behaviour", "failure"),
    [
        ("hangs", r"acknowledged \d+ of \d+ bytes within 0.5 s|timed out"),
        ("resets", "closed the connection|reset"),
    ],
)
def test_a_batch_the_server_never_took_is_not_delivered(behaviour: str, failure: str) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, soon full
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def stop_reading() -> None:
        connection, _ = listener.accept()
        accepted.append(connection)
        if behaviour == "resets":
            threading.Event().wait(0.3)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # linger 0: a reset, the unread data discarded

    threading.Thread(target=stop_reading, daemon=True).start()
    address = SyslogAddress("tcp", "127.0.0.1", listener.getsockname()[1])
    timeout = 0.5 if behaviour == "hangs" else 5.0
    target = SyslogTarget(address, context=None, facility=16, hostname="h", timeout=timeout, max_bytes=8192)
    try:
        with pytest.raises(DeliveryFailed, match=failure):
            target.deliver([notification(ALERT)] * 400)  # about 250 kB, far beyond the window
    finally:
        target.close()
        for connection in accepted:
            connection.close()
        listener.close()


def test_udp_sends_one_rfc_5424_message_per_datagram() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        address = SyslogAddress("udp", "127.0.0.1", receiver.getsockname()[1])
        target = SyslogTarget(address, context=None, facility=4, hostname="h", timeout=1.0, max_bytes=2048)
        target.deliver([notification(ALERT), notification(None)])
        first, second = (parse_rfc5424(receiver.recv(4096)) for _ in range(2))
    assert first.priority == 4 * 8 + 3 and first.data["plantwarden@32473"]["status"] == "closed"
    assert second.priority == 4 * 8 + 5 and "status" not in second.data["plantwarden@32473"]
