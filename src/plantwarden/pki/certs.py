"""Device certificates: the identity they carry (site, device, zone, role, asset), how it is
written into a certificate and read back, the SHA-256 fingerprint that names a certificate
everywhere (the COSE `kid` of device telemetry), and the checks a CSR must pass.

Subject: CN=<device>, OU=<zone>, O=<site>; SAN: URI urn:plantwarden:<site>:device:<device> (and
urn:uuid:<asset> when linked to an inventory asset); the Modbus/TCP Security role, when any, in
its own extension (`role_extension`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plantwarden.pki.errors import InvalidRequest
from plantwarden.pki.role_extension import ROLE_OID, check_role, decode_role, encode_role

DEFAULT_LIFETIME = timedelta(days=90)
CLOCK_SKEW = timedelta(minutes=5)  # not_before is backdated by this much: device clocks drift
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
URN_PREFIX = "urn:plantwarden:"


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a device certificate speaks for: the device of a site, its zone, its Modbus/TCP
    Security role (at most one) and the inventory asset it is."""

    site: str
    device: str
    zone: str
    role: str | None = None
    asset_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        for field, value in (("site", self.site), ("device", self.device), ("zone", self.zone)):
            if not _NAME.fullmatch(value or ""):
                raise InvalidRequest(
                    f"{field} {value!r} is not a name: 1-63 letters, digits, '.', '_' or '-',"
                    " starting with a letter or digit"
                )
        if self.role is not None:
            check_role(self.role)

    @property
    def urn(self) -> str:
        return f"{URN_PREFIX}{self.site}:device:{self.device}"


def fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER: 32 bytes, the telemetry's COSE `kid`."""
    return certificate.fingerprint(hashes.SHA256())


def serial_text(certificate: x509.Certificate) -> str:
    """The serial number as the store keeps it: lower-case hex, no leading zeros."""
    return format(certificate.serial_number, "x")


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER; `InvalidRequest` when it is neither (the reason in words, not the ASN.1
    parser's)."""
    pem = data.lstrip().startswith(b"-----BEGIN")
    try:
        return x509.load_pem_x509_csr(data) if pem else x509.load_der_x509_csr(data)
    except ValueError:
        if not data.strip():
            reason = "the file is empty"
        elif pem:
            reason = "the PEM block is cut short, or its base64 does not hold a CSR"
        else:
            reason = "not PEM, and not DER (binary ASN.1) of a CSR, or cut short"
        raise InvalidRequest(f"not a certificate signing request (PKCS#10, PEM or DER): {reason}") from None


def check_csr(csr: x509.CertificateSigningRequest) -> ec.EllipticCurvePublicKey:
    """The CSR's public key, once its signature verifies and it is an ECDSA P-256 key."""
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, x509.UnsupportedGeneralNameType) as error:
        raise InvalidRequest(f"the CSR cannot be read: {error}") from error
    if not valid:
        raise InvalidRequest("the CSR's signature does not verify: it was altered or not signed by its key")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidRequest(
            f"the CSR's key is {type(key).__name__.removeprefix('_')}"
            f"{'/' + key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else ''};"
            " devices need an ECDSA P-256 (secp256r1) key"
        )
    return key


def device_certificate(
    identity: DeviceIdentity,
    public_key: ec.EllipticCurvePublicKey,
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> x509.Certificate:
    """A client certificate for `identity`'s device, signed by the issuing CA."""
    if lifetime <= timedelta(0):
        raise InvalidRequest("a certificate's lifetime must be positive")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.site),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.zone),
            x509.NameAttribute(NameOID.COMMON_NAME, identity.device),
        ]
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.urn)]
    if identity.asset_id is not None:
        names.append(x509.UniformResourceIdentifier(identity.asset_id.urn))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_device_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    if identity.role is not None:
        role = x509.UnrecognizedExtension(ROLE_OID, encode_role(identity.role))
        builder = builder.add_extension(role, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _device_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def role_of(certificate: x509.Certificate) -> str | None:
    """The certificate's Modbus/TCP Security role, None without the extension; `InvalidRequest`
    when the extension holds more than one value, appears twice or is malformed."""
    try:
        extension = certificate.extensions.get_extension_for_oid(ROLE_OID)
    except x509.ExtensionNotFound:
        return None
    except x509.DuplicateExtension as error:
        raise InvalidRequest(
            "the certificate carries the role extension twice; exactly one role is allowed"
        ) from error
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise InvalidRequest("the role extension cannot be read")
    return decode_role(value.value)


def identity_of(certificate: x509.Certificate) -> DeviceIdentity:
    """The identity a device certificate carries; `InvalidRequest` when it is not one of ours."""
    subject = certificate.subject
    site, zone, device = (_single(subject, oid) for oid in _SUBJECT_OIDS)
    uris = _uris(certificate)
    identity = DeviceIdentity(site, device, zone, role_of(certificate), _asset(uris))
    if identity.urn not in uris:
        raise InvalidRequest(f"the certificate does not name {identity.urn} in its subject alternative name")
    return identity


_SUBJECT_OIDS = (NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME)


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise InvalidRequest(f"the subject must hold exactly one {oid._name}, it holds {len(values)}")
    return str(values[0].value)


def _uris(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidRequest(
            "the certificate has no subject alternative name: not a device certificate"
        ) from None
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def _asset(uris: list[str]) -> uuid.UUID | None:
    for uri in uris:
        if uri.startswith("urn:uuid:"):
            try:
                return uuid.UUID(uri.removeprefix("urn:uuid:"))
            except ValueError:
                raise InvalidRequest(f"malformed asset URN {uri!r}") from None
    return None


def renewal_starts(certificate: x509.Certificate) -> datetime:
    """When the device should renew: at the start of the last third of the lifetime."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return start + (end - start) * 2 / 3
