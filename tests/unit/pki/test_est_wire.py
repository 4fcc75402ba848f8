"""EST's wire formats against openssl as the independent writer and reader: a CSR openssl wrote
(base64 with and without line breaks, PEM) is read; a certs-only PKCS#7 we write is read back by
`openssl pkcs7`; bad bodies are refused with a clear message; HTTP Basic is parsed."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plantwarden.core.errors import InvalidInput
from plantwarden.pki import est_wire


def openssl(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False, cwd=cwd)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.fixture
def openssl_csr(tmp_path: Path) -> Path:
    """A P-256 key and a CSR for CN=plc-7, written by openssl."""
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "device.key", cwd=tmp_path)
    openssl("req", "-new", "-key", "device.key", "-subj", "/CN=plc-7", "-out", "device.csr", cwd=tmp_path)
    return tmp_path / "device.csr"


def certificate(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_a_csr_openssl_wrote_is_read_in_every_form_clients_send(openssl_csr: Path, tmp_path: Path) -> None:
    der = openssl("req", "-in", str(openssl_csr), "-outform", "DER")
    wrapped = openssl("base64", stdin=der)  # 64 characters a line, as EST clients send it
    assert b"\n" in wrapped.strip()
    for body in (wrapped, wrapped.replace(b"\n", b"\r\n"), base64.b64encode(der), openssl_csr.read_bytes()):
        csr = est_wire.read_csr(body)
        assert csr.subject.rfc4514_string() == "CN=plc-7"
        assert csr.is_signature_valid


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is empty"),
        (b"not base64 at all!", "not base64"),
        (base64.b64encode(b"\x30\x03\x02\x01\x01"), "not a DER PKCS#10"),
        (b"A" * (est_wire.MAX_CSR_BYTES + 1), "larger than"),
    ],
)
def test_bad_bodies_are_refused_with_a_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        est_wire.read_csr(body)


def test_a_certificate_is_not_taken_for_a_csr() -> None:
    der = certificate("x").public_bytes(serialization.Encoding.DER)
    with pytest.raises(InvalidInput, match="not a DER PKCS#10"):
        est_wire.read_csr(base64.b64encode(der))


def test_certs_only_is_read_by_openssl_pkcs7(tmp_path: Path) -> None:
    first, second = certificate("issuing"), certificate("root")
    body = est_wire.certs_only([first, second])
    lines = body.split(b"\r\n")
    assert all(len(line) <= 64 for line in lines) and len(lines) > 2
    der = openssl("base64", "-d", stdin=body.replace(b"\r\n", b"\n"))
    printed = openssl("pkcs7", "-inform", "DER", "-print_certs", stdin=der).decode().replace(" = ", "=")
    assert printed.count("-----BEGIN CERTIFICATE-----") == 2
    assert "subject=CN=issuing" in printed and "subject=CN=root" in printed
    assert set(est_wire.read_certs_only(body)) == {first, second}  # a SET OF: DER sorts it
    with pytest.raises(ValueError, match="at least one"):
        est_wire.certs_only([])


def test_a_pem_csr_of_the_json_api() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")]))
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    assert est_wire.read_pem_csr(pem) == csr
    with pytest.raises(InvalidInput, match="not a PEM certificate request"):
        est_wire.read_pem_csr("hello")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + base64.b64encode(b"plc-7:s3cr:et").decode(), ("plc-7", "s3cr:et")),
        ("basic " + base64.b64encode(b":token").decode(), ("", "token")),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic %%%", None),
        ("Bearer pwt_x", None),
        ("", None),
        (None, None),
    ],
)
def test_basic_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    assert est_wire.basic_credentials(header) == expected
