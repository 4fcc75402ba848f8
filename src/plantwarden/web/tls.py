"""TLS for the server: plain HTTP only on loopback, a locally generated certificate otherwise
(until the platform's own PKI issues one).

When a platform CA exists, the server also asks TLS clients for a certificate, optionally, and
verifies one it is given against the CA's chain (EST's simplereenroll authenticates a device by its
current certificate, RFC 7030 3.3.2). uvicorn does not pass the peer certificate into the ASGI
scope, so `ClientCertificateProtocol` (uvicorn's h11 protocol, one instance per connection) reads
it when the connection is made and puts it into the scope of every request of that connection as
the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`, PEM).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.files import atomic_write
from plantwarden.web.settings import ServerSettings

log = logging.getLogger(__name__)
CERT_VALIDITY = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    generated: bool


def is_loopback(host: str) -> bool:
    """True for loopback addresses and `localhost`; any other name or address is not."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_for(server: ServerSettings, data_dir: Path) -> TLSFiles | None:
    """Decide whether the server uses TLS, and with which files; refuse plain HTTP off loopback."""
    loopback = is_loopback(server.host)
    if (server.tls_cert is None) != (server.tls_key is None):
        raise ConfigurationError("server.tls_cert and server.tls_key must be set together")
    if server.tls == "off":
        if not loopback:
            raise ConfigurationError(
                f"server.tls = off is refused for {server.host}: plain HTTP is allowed only on "
                "loopback; use tls = auto (a generated certificate) or configure server.tls_cert"
            )
        if server.tls_cert is not None:  # set for TLS, and unused: the console would be plain HTTP
            raise ConfigurationError(
                "server.tls_cert and server.tls_key are set, but server.tls = off serves plain HTTP;"
                " use tls = auto or on to serve them, or unset them"
            )
        return None
    if server.tls == "auto" and loopback and server.tls_cert is None:
        return None
    if server.tls_cert is not None and server.tls_key is not None:
        for path in (server.tls_cert, server.tls_key):
            if not path.is_file():
                raise ConfigurationError(f"TLS file {path} does not exist")
        return TLSFiles(server.tls_cert, server.tls_key, generated=False)
    return ensure_self_signed(data_dir / "tls", server.host)


def ensure_self_signed(directory: Path, host: str) -> TLSFiles:
    """A self-signed certificate for this host, generated once and renewed before it expires."""
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC):
            return TLSFiles(cert_path, key_path, generated=True)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, host)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(key_path, private, mode=0o600)  # a new file, never one an older version made 0644
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
    log.warning("generated a self-signed TLS certificate %s (SHA-256 %s)", cert_path, fingerprint)
    return TLSFiles(cert_path, key_path, generated=True)


def _self_signed(key: ec.EllipticCurvePrivateKey, host: str) -> x509.Certificate:
    hostname = socket.gethostname()
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(hostname)]
    addresses = {"127.0.0.1", "::1"}
    try:
        if not ipaddress.ip_address(host).is_unspecified:
            addresses.add(host)
    except ValueError:
        names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses)]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plantwarden"),
            x509.NameAttribute(NameOID.COMMON_NAME, hostname),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
SSLContextFactory = Callable[[Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def asking_for_client_certificates(ca_chain_pem: bytes) -> SSLContextFactory:
    """An uvicorn `ssl_context_factory`: the server's usual context, which also asks clients for a
    certificate (CERT_OPTIONAL: a browser or a client without one still connects) and verifies a
    certificate it is given against `ca_chain_pem` (one that does not verify fails the handshake).
    Revocation is not checked here: the route that relies on the certificate asks the PKI."""

    def factory(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default()
        context.load_verify_locations(cadata=ca_chain_pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    return factory


class ClientCertificateProtocol(H11Protocol):
    """uvicorn's h11 protocol, giving each request of a TLS connection the ASGI TLS extension with
    the client certificate the handshake verified (an empty chain when the client sent none)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            self.app = with_tls_extension(self.config.loaded_app, tls_extension(ssl_object))


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, object]:
    """The ASGI TLS extension of a connection (https://asgi.readthedocs.io/en/latest/specs/tls.html)."""
    der = ssl_object.getpeercert(binary_form=True)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) if der else None
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [pem.decode()] if pem else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


def with_tls_extension(app: ASGIApp, extension: dict[str, object]) -> ASGIApp:
    """`app`, called with `extension` as `scope["extensions"]["tls"]` (the scope is copied)."""

    async def app_with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            extensions = {**(scope.get("extensions") or {}), "tls": extension}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return app_with_tls
