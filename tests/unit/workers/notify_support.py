"""Real receivers for the notifier's tests: a webhook server that checks signatures, a syslog
server (TLS with client certificates, or plain TCP) that parses RFC 5425 frames and RFC 5424
messages, certificates made on the spot, and alerts raised through the alerts service."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import json
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwarden.alerts import services as alerts
from plantwarden.alerts.models import Severity
from plantwarden.core import eventlog
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.events import Event
from plantwarden.core.runtime import Runtime
from plantwarden.workers.notify.document import Notification

SECRET = "webhook-secret-for-tests-0123456789"


# --- notifications built by hand ---------------------------------------------------------------

AT = datetime(2026, 11, 26, 8, 0, 1, 250000, tzinfo=UTC)


def notification(alert: dict[str, Any] | None, *, event_type: str = "alerts.AlertClosed") -> Notification:
    payload = {"alert_id": str(uuid.UUID(int=7)), "by": "erika", "reason": "planned test", "future": [1, 2]}
    event = Event(uuid.UUID(int=42), event_type, 1, "plant-a", AT, "server", None, payload)
    return Notification(position=17, event=event, alert=alert, alert_as_of=AT)


ALERT = {
    "id": str(uuid.UUID(int=7)),
    "site": "plant-a",
    "zone": 'cell "1"]',
    "title": "Write to PLC-3 outside the window",
    "description": "setpoint 10 -> 99",
    "severity": "high",
    "status": "closed",
    "rule_id": "zones.write\\outside",
    "detector": "zone-check",
    "occurrences": 3,
}


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Plantwarden test CA", ca_key, None)
    files = {"ca": ca.public_bytes(serialization.Encoding.PEM)}
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"{role}.test", key, (ca.subject, ca_key))
        files[f"{role}_cert"] = cert.public_bytes(serialization.Encoding.PEM)
        files[f"{role}_key"] = _key_pem(key)
    paths = {name: directory / f"{name}.pem" for name in files}
    for name, data in files.items():
        paths[name].write_bytes(data)
    return Pki(**paths)


def server_context(pki: Pki, *, require_client: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client:
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- the webhook receiver -----------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """An HTTP(S) server in a thread that checks each POST's signature and keeps the documents."""

    secret: str = SECRET
    context: ssl.SSLContext | None = None
    status: int = 200
    delay: float = 0.0
    port: int = 0
    documents: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        if self.context is not None:
            self._server.socket = self.context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}/hooks/plantwarden"

    def event_ids(self) -> list[str]:
        return [d["event"]["id"] for d in list(self.documents)]

    def answer(self, body: bytes, signature: str | None, headers: dict[str, str]) -> int:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(signature, expected):
            self.bad_signatures += 1
            return 401
        if self.status // 100 == 2:
            self.documents.append(json.loads(body))
            self.headers.append(headers)
        return self.status


def _handler(receiver: WebhookReceiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if receiver.delay:
                threading.Event().wait(receiver.delay)
            status = receiver.answer(body, self.headers.get("X-Plantwarden-Signature"), dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass

    return Handler


# --- the syslog receiver ------------------------------------------------------------------------

HEADER = re.compile(rb"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
ELEMENT = re.compile(r'\[([^ \]=]+)((?: [^ =\]"]+="(?:[^"\\\]]|\\.)*")*)\]')
PARAMETER = re.compile(r' ([^ =\]"]+)="((?:[^"\\\]]|\\.)*)"')


@dataclass(frozen=True)
class SyslogMessage:
    priority: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    data: dict[str, dict[str, str]]
    text: str


def parse_rfc5424(raw: bytes) -> SyslogMessage:
    """Parse one RFC 5424 message (a ValueError for anything that is not one)."""
    header = HEADER.match(raw)
    if header is None:
        raise ValueError(f"not an RFC 5424 header: {raw[:80]!r}")
    rest = raw[header.end() :].decode("utf-8")
    data: dict[str, dict[str, str]] = {}
    while rest.startswith("["):
        found = ELEMENT.match(rest)
        if found is None:
            raise ValueError(f"malformed structured data: {rest[:80]!r}")
        data[found[1]] = {name: re.sub(r"\\(.)", r"\1", value) for name, value in PARAMETER.findall(found[2])}
        rest = rest[found.end() :]
    if not data and rest.startswith("-"):
        rest = rest[1:]
    if rest and not rest.startswith(" "):
        raise ValueError(f"no space before MSG: {rest[:80]!r}")
    text = rest[1:].removeprefix("\ufeff")
    timestamp, hostname, app_name, procid, msgid = (part.decode() for part in header.groups()[1:])
    return SyslogMessage(int(header[1]), timestamp, hostname, app_name, procid, msgid, data, text)


def read_frames(connection: socket.socket, deliver: Callable[[bytes], None]) -> None:
    """Read RFC 5425 octet-counted frames until the connection ends."""
    buffer = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b" " in buffer[:12]:
            length_text, _, after = buffer.partition(b" ")
            length = int(length_text)
            if len(after) < length:
                break
            deliver(after[:length])
            buffer = after[length:]


@dataclass
class SyslogReceiver:
    """A TCP (optionally TLS) syslog server in a thread; every message is parsed on arrival."""

    context: ssl.SSLContext | None = None
    port: int = 0
    messages: list[SyslogMessage] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    _listener: socket.socket | None = None
    _connections: list[socket.socket] = field(default_factory=list)

    def start(self) -> SyslogReceiver:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.context is not None:
                connection = self.context.wrap_socket(connection, server_side=True)
                self.peers.append(connection.getpeercert()["subject"][0][0][1])  # type: ignore[index]
            self._connections.append(connection)
            read_frames(connection, lambda raw: self.messages.append(parse_rfc5424(raw)))
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        """Close the listener and every connection (the server is down)."""
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._connections.clear()

    @property
    def address(self) -> str:
        return f"{'tls' if self.context else 'tcp'}://127.0.0.1:{self.port}"

    def event_ids(self) -> list[str]:
        return [m.data["plantwarden@32473"]["eventId"] for m in list(self.messages)]


# --- alerts and the log -------------------------------------------------------------------------


def raise_alerts(store: Store, count: int, *, start: int = 0, severity: Severity = Severity.HIGH) -> None:
    """Raise `count` alerts, one transaction each (as detectors do)."""
    ctx = Context(source="test")
    for number in range(start, start + count):
        draft = alerts.AlertDraft(
            site="plant-a",
            zone="cell-1",
            title=f"Write to PLC-{number} outside the maintenance window",
            description='Register 40001 "setpoint" changed] from 10 to 99',
            severity=severity,
            detector="zone-check",
            rule_id=f"rule-{number}",
            rule_name="Writes outside a window",
            techniques=["T0836"],
            assets=[f"plc-{number}"],
        )
        with store.transaction() as session:
            alerts.raise_alert(session, ctx, draft)


def alert_event_ids(store: Store) -> list[str]:
    """The ids of every alert event in the log, in log order."""
    with store.transaction() as session:
        events = eventlog.read_after(session, 0, 100_000)
    return [str(e.id) for _, e in events if e.type.startswith("alerts.")]


def first_seen_order(ids: list[str]) -> list[str]:
    """The ids in the order of their first arrival (copies removed)."""
    return list(dict.fromkeys(ids))


class Provider:
    """The command line's context object as `plantwarden notify` sees it."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime
