"""TLS for the server: plain HTTP only on loopback, a locally generated certificate otherwise
(until the platform's own PKI issues one)."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwarden.core.errors import ConfigurationError
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
    if server.tls == "off":
        if not loopback:
            raise ConfigurationError(
                f"server.tls = off is refused for {server.host}: plain HTTP is allowed only on "
                "loopback; use tls = auto (a generated certificate) or configure server.tls_cert"
            )
        return None
    if server.tls == "auto" and loopback and server.tls_cert is None:
        return None
    if (server.tls_cert is None) != (server.tls_key is None):
        raise ConfigurationError("server.tls_cert and server.tls_key must be set together")
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
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
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


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)
