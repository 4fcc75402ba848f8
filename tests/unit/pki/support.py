"""Helpers of the PKI tests: device keys and CSRs, PEM files for openssl, openssl itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PASSPHRASE = b"correct horse battery staple"


def device_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(
    key: ec.EllipticCurvePrivateKey | None = None, common_name: str = "plc-1"
) -> x509.CertificateSigningRequest:
    """A CSR as a device makes it (its subject does not matter: the platform sets the identity)."""
    key = key if key is not None else device_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def pem(item: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return item.public_bytes(serialization.Encoding.PEM)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the openssl binary (the independent reader of what we write)."""
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=check, timeout=30)
