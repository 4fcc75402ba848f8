"""Client TLS from files that no option names: the ingest's service certificate (under
`<data_dir>/pki/services/`) and an enrolled device's directory.

A file that cannot be read, or does not hold what it should, is named with whose it is and what it
is (the CA chain, the certificate, the key) and what to do about it, not as an option of another
command (`telemetry subscribe --tls-ca`) or as OpenSSL's "[PEM] ASN1 lib" without a file.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from plantwarden.core.errors import InvalidInput, PlantwardenError


@dataclass(frozen=True)
class ClientFiles:
    """A client's CA chain (it verifies the broker), certificate and key; `whose` ("the ingest's")
    and `remedy` word the errors, raised as `error`."""

    chain: Path
    certificate: Path
    key: Path
    whose: str
    remedy: str
    error: type[PlantwardenError] = InvalidInput


def client_tls_context(files: ClientFiles) -> ssl.SSLContext:
    """TLS 1.2 or later, the broker verified by the chain alone (not the system's CAs), the
    client certificate presented."""
    _certificates(files, files.chain, "CA chain")
    try:
        context = ssl.create_default_context(cafile=str(files.chain))
    except (ssl.SSLError, OSError) as error:  # changed since it was read
        raise _fault(files, files.chain, "CA chain", f"cannot be used ({_reason(error)})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    present_certificate(context, files)
    return context


def present_certificate(context: ssl.SSLContext, files: ClientFiles) -> None:
    """Load the client certificate and key into `context`, naming the file at fault."""
    _certificates(files, files.certificate, "certificate")
    _key(files)
    try:
        context.load_cert_chain(str(files.certificate), str(files.key))
    except (ssl.SSLError, OSError) as error:  # each read well alone: not a pair, or changed since
        if isinstance(error, ssl.SSLError) and error.reason == "KEY_VALUES_MISMATCH":
            reason = f"is not the key of the certificate {files.certificate}"
            raise _fault(files, files.key, "key", reason) from None
        raise files.error(
            f"{files.whose} certificate {files.certificate} and key {files.key} cannot be used together"
            f" ({_reason(error)}); {files.remedy}"
        ) from None


def _read(files: ClientFiles, path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise _fault(files, path, what, f"cannot be read: {error.strerror}") from None


def _certificates(files: ClientFiles, path: Path, what: str) -> None:
    try:
        x509.load_pem_x509_certificates(_read(files, path, what))
    except ValueError:
        raise _fault(files, path, what, "is damaged: not PEM certificates, or one of them broken") from None


def _key(files: ClientFiles) -> None:
    try:
        serialization.load_pem_private_key(_read(files, files.key, "key"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _fault(files, files.key, "key", "is damaged: not an unencrypted PEM private key") from None


def _fault(files: ClientFiles, path: Path, what: str, reason: str) -> PlantwardenError:
    return files.error(f"{files.whose} {what} {path} {reason}; {files.remedy}")


def _reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error)
    return error.strerror or str(error)
