"""The wire formats of EST (RFC 7030): base64 bodies, certs-only PKCS#7, HTTP Basic, plain-text errors.

EST carries DER in base64 (RFC 7030 4.1.3, 4.2.1, 4.2.3): a CSR goes up as `application/pkcs10`,
certificates come down as a certs-only CMC Simple PKI Response (`application/pkcs7-mime`), both
with `Content-Transfer-Encoding: base64`. This module only converts bytes: no request object, no
store, no CA, so that it can be tested against openssl as an independent reader.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from plantwarden.core.errors import InvalidInput

PKCS10 = "application/pkcs10"
PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
PKCS7 = "application/pkcs7-mime"
BASE64_LINE = 64  # RFC 2045 allows up to 76 characters a line; openssl writes 64
MAX_CSR_BYTES = 64 * 1024  # a P-256 CSR is some 400 bytes; anything this large is not one
_PEM_CSR = re.compile(
    rb"-----BEGIN (NEW )?CERTIFICATE REQUEST-----(.*?)-----END (NEW )?CERTIFICATE REQUEST-----", re.S
)
_BASE64 = re.compile(rb"^[A-Za-z0-9+/=]*$")


def base64_lines(data: bytes) -> bytes:
    """`data` in base64, broken into lines of 64 characters, each ending with CRLF (RFC 2045)."""
    text = base64.b64encode(data)
    return b"".join(text[i : i + BASE64_LINE] + b"\r\n" for i in range(0, len(text), BASE64_LINE))


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A certs-only PKCS#7 (RFC 7030's Simple PKI Response) of `certificates`, base64 with line breaks."""
    if not certificates:
        raise ValueError("a certs-only response needs at least one certificate")
    der = pkcs7.serialize_certificates(list(certificates), serialization.Encoding.DER)
    return base64_lines(der)


def read_certs_only(body: bytes) -> list[x509.Certificate]:
    """The certificates of a base64 certs-only PKCS#7 (what an EST client does with our answers)."""
    return pkcs7.load_der_pkcs7_certificates(decode_base64(body, what="PKCS#7"))


def decode_base64(body: bytes, *, what: str) -> bytes:
    """Base64 as EST sends it: line breaks and spaces tolerated, anything else refused."""
    compact = b"".join(body.split())
    if not compact:
        raise InvalidInput(f"the body is empty: send the {what} as base64-encoded DER")
    if not _BASE64.fullmatch(compact):
        raise InvalidInput(f"the body is not base64: send the {what} as base64-encoded DER")
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"the body is not valid base64: send the {what} as base64-encoded DER") from None


def read_csr(body: bytes) -> x509.CertificateSigningRequest:
    """The CSR of an `application/pkcs10` body: base64 DER (RFC 7030 4.2.1); a PEM CSR is also
    accepted, since some clients send one. Only the encoding is checked here: the signature and the
    key type are the CA's to check."""
    if len(body) > MAX_CSR_BYTES:
        raise InvalidInput(f"the CSR is larger than {MAX_CSR_BYTES} bytes")
    pem = _PEM_CSR.search(body)
    der = decode_base64(pem.group(2) if pem else body, what="CSR (PKCS#10)")
    try:
        return x509.load_der_x509_csr(der)
    except ValueError:
        raise InvalidInput("the body is base64 but not a DER PKCS#10 certificate request") from None


def read_pem_csr(text: str) -> x509.CertificateSigningRequest:
    """A CSR in PEM (the JSON API's form); a clear error for anything else."""
    try:
        return x509.load_pem_x509_csr(text.encode())
    except ValueError:
        raise InvalidInput(
            "csr is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----): "
            "make one with `openssl req -new -key device.key`"
        ) from None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic` header; None when there is no such header or it
    cannot be read (the caller then asks for credentials again)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
