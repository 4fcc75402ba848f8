"""Settings of the notifier: the webhook, the syslog server, what to send, how to retry."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.settings import Secret, SettingsSection, setting

SEVERITIES = ("info", "low", "medium", "high", "critical")
FACILITIES = {f"local{n}": 16 + n for n in range(8)} | {"user": 1, "daemon": 3, "auth": 4, "security": 13}
SYSLOG_PORTS = {"tls": 6514, "tcp": 601, "udp": 514}
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class SyslogAddress:
    """Where syslog messages go: `tls`, `tcp` or `udp`, a host and a port."""

    transport: str
    host: str
    port: int


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (plain transports are allowed there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_syslog_address(address: str) -> SyslogAddress:
    """Split `tls://host[:port]`, `tcp://host[:port]` or `udp://host[:port]` (IPv6 in brackets)."""
    where = f"setting 'notify.syslog_address' {address!r}"
    scheme, sep, _ = address.partition("://")
    if not sep or scheme not in SYSLOG_PORTS:
        raise ConfigurationError(f"{where}: write tls://host:6514 (or tcp:// or udp:// for a lab)")
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port or SYSLOG_PORTS[scheme]
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None
    if not host:
        raise ConfigurationError(f"{where}: no host")
    return SyslogAddress(scheme, host, port)


def _check_webhook_url(url: str, allow_plaintext: bool) -> None:
    where = f"setting 'notify.webhook_url' {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{where}: write https://host[:port]/path")
    if parts.scheme == "http" and not (allow_plaintext or is_loopback(parts.hostname)):
        raise ConfigurationError(
            f"{where}: plain http crosses the network unencrypted; use https "
            "(or set notify.allow_plaintext = true on a lab network)"
        )


@dataclass(frozen=True)
class NotifySettings(SettingsSection):
    """Where alert notifications go, and how they are retried."""

    section = "notify"
    doc = (
        "Alert events are delivered to a webhook (signed JSON) and to a syslog server (RFC 5424 over "
        "TLS); each target keeps its own cursor in the event log and is retried until it accepts, so "
        "nothing is lost across a restart (duplicates are possible, marked by the event id). "
        "`plantwarden up` runs `plantwarden notify run` when a target is set; see docs/notifications.md."
    )

    webhook_url: str | None = setting(None, "POST each notification here (https; http only on loopback).")
    webhook_secret: Secret | None = setting(
        None, "Key of the HMAC-SHA256 in the X-Plantwarden-Signature header (at least 16 characters)."
    )
    webhook_timeout: float = setting(10.0, "Seconds to wait for the webhook's answer.")
    webhook_ca_file: Path | None = setting(
        None, "CA certificates (PEM) that sign the webhook's certificate (https only); unset: the system's."
    )
    syslog_address: str | None = setting(
        None, "Syslog server: tls://host:6514 (RFC 5425), or tcp:// or udp:// on loopback or a lab network."
    )
    syslog_ca_file: Path | None = setting(
        None,
        "CA certificates (PEM) that sign the syslog server's certificate (tls:// only); unset: the system's.",
    )
    syslog_client_cert: Path | None = setting(
        None, "Client certificate (PEM) presented to the syslog server, for mutual TLS (tls:// only)."
    )
    syslog_client_key: Path | None = setting(
        None, "Private key (PEM) of the client certificate; unset: read from the certificate file."
    )
    syslog_facility: str = setting("local0", "Syslog facility of the messages.", choices=tuple(FACILITIES))
    syslog_hostname: str | None = setting(None, "HOSTNAME field of the messages; unset: this host's name.")
    syslog_timeout: float = setting(10.0, "Seconds to connect, send and see the server acknowledge.")
    syslog_max_bytes: int = setting(
        8192, "Longest syslog message in bytes; the free text is shortened to fit (RFC 5425: 2048 to 8192)."
    )
    events: str = setting(
        "alerts.Alert*",
        "Comma-separated event types to deliver; `*` matches any run of characters (the default: "
        "every event of an alert's life, not those of suppressions).",
    )
    min_severity: str = setting(
        "info", "Deliver only alerts of this severity or worse (as the alert is now).", choices=SEVERITIES
    )
    from_start: bool = setting(
        False,
        "When a target runs for the first time, deliver every matching event already in the log; "
        "false: start at the end of the log.",
    )
    retry_initial_seconds: float = setting(
        1.0, "Wait after a first failed delivery; doubled at each failure."
    )
    retry_max_seconds: float = setting(300.0, "Longest wait between two attempts of a failing target.")
    batch_size: int = setting(100, "Events read from the log at a time.")
    allow_plaintext: bool = setting(
        False, "Allow http:// webhooks and tcp:// or udp:// syslog to hosts other than loopback."
    )

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            _check_webhook_url(self.webhook_url, self.allow_plaintext)
            if self.webhook_ca_file is not None and urlsplit(self.webhook_url).scheme != "https":
                raise ConfigurationError(
                    "setting 'notify.webhook_ca_file' goes with an https:// notify.webhook_url, not"
                    " http://, which uses no certificate"
                )
            secret = self.webhook_secret.reveal() if self.webhook_secret else ""
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"setting 'notify.webhook_secret' must hold at least {MIN_SECRET_LENGTH} characters "
                    "when notify.webhook_url is set (the receiver checks the signature with it)"
                )
        if self.syslog_address is not None:
            self._check_syslog(parse_syslog_address(self.syslog_address))
        self._check_positive()

    def _check_syslog(self, address: SyslogAddress) -> None:
        if address.transport != "tls" and not (self.allow_plaintext or is_loopback(address.host)):
            raise ConfigurationError(
                f"setting 'notify.syslog_address': {address.transport}:// sends alerts unencrypted "
                "across the network; use tls:// (or set notify.allow_plaintext = true on a lab network)"
            )
        if self.syslog_client_key is not None and self.syslog_client_cert is None:
            raise ConfigurationError("setting 'notify.syslog_client_key' needs notify.syslog_client_cert")
        if address.transport != "tls":
            for key in ("syslog_ca_file", "syslog_client_cert", "syslog_client_key"):
                if getattr(self, key) is not None:  # set for TLS that a plain address never uses
                    raise ConfigurationError(
                        f"setting 'notify.{key}' goes with a tls:// notify.syslog_address, not"
                        f" {address.transport}://, which uses no certificate"
                    )

    def _check_positive(self) -> None:
        positive = {
            "webhook_timeout": self.webhook_timeout,
            "syslog_timeout": self.syslog_timeout,
            "retry_initial_seconds": self.retry_initial_seconds,
            "retry_max_seconds": self.retry_max_seconds,
            "batch_size": self.batch_size,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"setting 'notify.{key}' must be positive, got {value}")
        if self.syslog_max_bytes < 2048:
            raise ConfigurationError(
                "setting 'notify.syslog_max_bytes' must be at least 2048 (every RFC 5425 receiver takes that)"
            )
        if not self.event_patterns:
            raise ConfigurationError("setting 'notify.events' names no event type")

    @property
    def event_patterns(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.events.split(",") if part.strip())

    @property
    def targets(self) -> tuple[str, ...]:
        """The names of the configured targets (`webhook`, `syslog`); empty: nothing to run."""
        configured = {"webhook": self.webhook_url, "syslog": self.syslog_address}
        return tuple(name for name, value in configured.items() if value is not None)
