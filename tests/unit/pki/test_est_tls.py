"""The server's TLS plumbing for EST: uvicorn (in this process, on a real socket) asks TLS clients
for a certificate of the platform CA, optionally; a route sees the one the handshake verified in
the ASGI TLS extension, an empty chain when the client sent none; a certificate of another CA
fails the handshake."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import Receive, Scope, Send

from plantwarden.web.tls import ClientCertificateProtocol, asking_for_client_certificates, ensure_self_signed
from tests.helpers import free_port, wait_for


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _client_files(directory: Path, name: str, ca_name: str) -> tuple[Path, Path, x509.Certificate, bytes]:
    """A CA and a client certificate it issued, written as PEM files; (cert, key, cert, CA PEM)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _issue(ca_name, ca_key, _name(ca_name), ca_key, ca=True)
    cert = _issue(name, key, ca.subject, ca_key, ca=False)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(_pem(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, cert, _pem(ca)


async def echo_tls(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the TLS extension of the request, as JSON (uvicorn runs it with lifespan off)."""
    tls = (scope.get("extensions") or {}).get("tls")
    body = json.dumps(tls).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path, Path, x509.Certificate, Path]]:
    """uvicorn with the server's TLS files and the client-certificate plumbing; yields the port,
    the server's certificate, the client certificate and key files, and the certificate."""
    tls = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    cert_path, key_path, cert, ca_pem = _client_files(tmp_path, "plc-7", "Test Issuing CA")
    port = free_port()
    config = uvicorn.Config(
        echo_tls,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        http=ClientCertificateProtocol,
        ssl_context_factory=asking_for_client_certificates(ca_pem),
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: True if server.started else None, what="uvicorn start")
    try:
        yield port, tls.cert, cert_path, cert, key_path
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _get(port: int, server_cert: Path, client: tuple[Path, Path] | None) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(server_cert))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=context, timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_a_verified_client_certificate_reaches_the_route(
    served: tuple[int, Path, Path, x509.Certificate, Path],
) -> None:
    port, server_cert, cert_path, cert, key_path = served
    tls = _get(port, server_cert, (cert_path, key_path))
    chain = tls["client_cert_chain"]
    assert isinstance(chain, list) and len(chain) == 1
    assert x509.load_pem_x509_certificate(chain[0].encode()) == cert
    assert tls["tls_version"] in (0x0303, 0x0304)


def test_a_client_without_a_certificate_still_connects(
    served: tuple[int, Path, Path, x509.Certificate, Path],
) -> None:
    port, server_cert, *_ = served
    assert _get(port, server_cert, None)["client_cert_chain"] == []


def test_a_certificate_of_another_ca_fails_the_handshake(
    served: tuple[int, Path, Path, x509.Certificate, Path], tmp_path: Path
) -> None:
    port, server_cert, *_ = served
    other_cert, other_key, _, _ = _client_files(tmp_path, "intruder", "Some Other CA")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _get(port, server_cert, (other_cert, other_key))
