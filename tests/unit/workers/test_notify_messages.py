"""The notifier's settings, documents, signatures and RFC 5424 messages (no network)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.settings import REDACTED, load_settings
from plantwarden.workers.notify import rfc5424
from plantwarden.workers.notify.document import matches, severe_enough
from plantwarden.workers.notify.settings import NotifySettings, parse_syslog_address
from plantwarden.workers.notify.webhook import signature
from tests.unit.workers.notify_support import ALERT, SECRET, notification, parse_rfc5424


def notify_settings(tmp_path: Path, **values: str) -> NotifySettings:
    sections = SECTIONS if NotifySettings in SECTIONS else (*SECTIONS, NotifySettings)
    overrides = {"data_dir": str(tmp_path), **{f"notify.{k}": v for k, v in values.items()}}
    return load_settings(sections, environ={}, cwd=tmp_path, overrides=overrides)[NotifySettings]


def test_settings_refuse_unencrypted_targets_across_the_network(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="use https"):
        notify_settings(tmp_path, webhook_url="http://siem.example/hook", webhook_secret=SECRET)
    with pytest.raises(ConfigurationError, match="use tls://"):
        notify_settings(tmp_path, syslog_address="udp://10.0.0.9:514")
    allowed = notify_settings(
        tmp_path, syslog_address="udp://10.0.0.9", allow_plaintext="true", webhook_url="http://127.0.0.1:9/h"
        , webhook_secret=SECRET
    )  # fmt: skip
    assert allowed.targets == ("webhook", "syslog")
    assert parse_syslog_address(allowed.syslog_address or "").port == 514


@pytest.mark.parametrize("key", ["syslog_ca_file", "syslog_client_cert"])
def test_tls_files_with_a_plain_target_are_refused_not_unused(tmp_path: Path, key: str) -> None:
    """A CA or client certificate set for a tcp:// or http:// target was silently unused: the
    operator may believe the alerts travel under TLS."""
    with pytest.raises(
        ConfigurationError, match=re.escape(f"'notify.{key}' goes with a tls:// notify.syslog_address")
    ):
        notify_settings(tmp_path, syslog_address="tcp://127.0.0.1:601", **{key: str(tmp_path / "x.pem")})
    with pytest.raises(ConfigurationError, match=re.escape("'notify.webhook_ca_file' goes with an https://")):
        notify_settings(
            tmp_path, webhook_url="http://127.0.0.1:9/h", webhook_secret=SECRET, webhook_ca_file="ca.pem"
        )
    tls = notify_settings(tmp_path, syslog_address="tls://127.0.0.1", **{key: str(tmp_path / "x.pem")})
    assert getattr(tls, key) is not None


def test_a_webhook_needs_a_secret_of_some_length_which_is_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        notify_settings(tmp_path, webhook_url="https://siem.example/hook")
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        notify_settings(tmp_path, webhook_url="https://siem.example/hook", webhook_secret="short")
    sections = SECTIONS if NotifySettings in SECTIONS else (*SECTIONS, NotifySettings)
    resolved = load_settings(
        sections,
        environ={
            "PLANTWARDEN_NOTIFY_WEBHOOK_URL": "https://siem.example/h",
            "PLANTWARDEN_NOTIFY_WEBHOOK_SECRET": SECRET,
        },
        cwd=tmp_path,
        overrides={"data_dir": str(tmp_path)},
    )  # fmt: skip
    assert resolved.display("notify.webhook_secret") == REDACTED
    assert SECRET in resolved.secret_values()
    assert repr(resolved[NotifySettings]).count(SECRET) == 0


@pytest.mark.parametrize(
    "address", ["syslog.example:6514", "ftp://syslog.example", "tls://", "tls://host:99999"]
)
def test_a_malformed_syslog_address_is_named_in_the_error(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigurationError, match=r"notify\.syslog_address"):
        notify_settings(tmp_path, syslog_address=address)


def test_tls_syslog_defaults_to_port_6514_and_ipv6_is_accepted() -> None:
    assert parse_syslog_address("tls://logs.plant.example").port == 6514
    address = parse_syslog_address("tcp://[::1]:1514")
    assert (address.transport, address.host, address.port) == ("tcp", "::1", 1514)


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC 4231, test case 2: an oracle independent of the code under test.
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_the_document_carries_event_alert_and_the_duplicate_key() -> None:
    document = json.loads(notification(ALERT).body())
    assert document["schema"] == "plantwarden.notification/1"
    assert document["event"]["id"] == str(uuid.UUID(int=42))
    assert document["event"]["position"] == 17
    assert document["event"]["payload"]["future"] == [1, 2]  # fields this version does not know pass
    assert document["alert"]["occurrences"] == 3
    assert document["delivery"] == {"guarantee": "at-least-once", "duplicate_key": str(uuid.UUID(int=42))}
    assert json.loads(notification(None).body())["alert"] is None


def test_event_patterns_and_the_severity_threshold() -> None:
    assert matches("alerts.AlertRaised", ("alerts.*",))
    assert not matches("inventory.AssetDiscovered", ("alerts.*",))
    assert matches("alerts.AlertClosed", ("alerts.AlertRaised", "alerts.AlertClosed"))
    assert severe_enough(notification(ALERT), "high")
    assert not severe_enough(notification(ALERT), "critical")
    assert severe_enough(notification(None), "critical")  # a deleted alert is still announced
    assert severe_enough(notification({**ALERT, "severity": "catastrophic"}), "critical")


def test_the_syslog_message_parses_as_rfc_5424_with_escaped_structured_data() -> None:
    raw = rfc5424.message(notification(ALERT), facility=16, hostname="pw host", procid=4242, max_bytes=8192)
    parsed = parse_rfc5424(raw)
    assert parsed.priority == 16 * 8 + 3  # local0, high -> error
    assert parsed.timestamp == "2026-11-26T08:00:01.250000Z"
    assert (parsed.hostname, parsed.app_name, parsed.procid, parsed.msgid) == (
        "pw_host", "plantwarden", "4242", "AlertClosed"
    )  # fmt: skip
    data = parsed.data["plantwarden@32473"]
    assert data["zone"] == 'cell "1"]'
    assert data["ruleId"] == "zones.write\\outside"
    assert data["eventId"] == data["duplicateKey"] == str(uuid.UUID(int=42))
    assert data["guarantee"] == "at-least-once"
    assert parsed.data["origin"]["software"] == "plantwarden"
    assert parsed.text == (
        "alert closed by erika (planned test): Write to PLC-3 outside the window - setpoint 10 -> 99"
    )
    assert b"\xef\xbb\xbf" in raw


def test_a_long_message_is_shortened_on_a_character_boundary() -> None:
    long_alert = {**ALERT, "description": "Überschreitung " * 1000}
    raw = rfc5424.message(notification(long_alert), facility=16, hostname="h", procid=1, max_bytes=2048)
    assert len(raw) <= 2048
    assert parse_rfc5424(raw).text.endswith("...")
    assert rfc5424.frame(b"abc") == b"3 abc"
