"""Certificates of the platform's own services, issued by the platform CA and kept as files in
`<data_dir>/pki/services/`: the MQTT broker's server certificate, the telemetry ingest's client
certificate (it too connects to the broker with a certificate), and the telemetry recipient
(the key that devices encrypt their messages to).

They are not device certificates (no zone, no role) and are not in the device inventory; each is
re-issued by `ensure_service_identity` when it is missing, damaged (a warning names the file),
within its last third of life, for other hosts, or signed by another CA than the current issuing CA.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.errors import InvalidInput
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.keys import key_pem, load_key, new_key, replace_file, write_new_file

log = logging.getLogger(__name__)

SERVICE_LIFETIME = timedelta(days=397)
BACKDATE = timedelta(minutes=5)


class Purpose(enum.StrEnum):
    SERVER = "server"
    """A TLS server (the broker): serverAuth, the hosts as subject alternative names."""
    CLIENT = "client"
    """A TLS client of the platform (the telemetry ingest at the broker): clientAuth."""
    RECIPIENT = "recipient"
    """The telemetry recipient: a key-agreement key the devices encrypt to."""


@dataclass(frozen=True)
class ServiceIdentity:
    """A service's files: its certificate, its key (0600), and the CA chain (issuing, root)."""

    certificate: Path
    key: Path
    chain: Path

    def load_certificate(self) -> x509.Certificate:
        """The service's certificate (the file's first); ValueError when the file is not PEM
        certificates or one of them does not parse (TLS, which reads every block, would refuse it)."""
        return x509.load_pem_x509_certificates(self.certificate.read_bytes())[0]

    def load_key(self) -> ec.EllipticCurvePrivateKey:
        return load_key(self.key.read_bytes(), None, where=str(self.key))


def _alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c in host for c in " /:@"):
                raise InvalidInput(f"{host!r} is neither an IP address nor a host name") from None
            names.append(x509.DNSName(host))
    return names


def service_certificate(
    ca: CertificateAuthority,
    public_key: ec.EllipticCurvePublicKey,
    *,
    name: str,
    purpose: Purpose,
    hosts: tuple[str, ...] = (),
    now: datetime,
    lifetime: timedelta = SERVICE_LIFETIME,
) -> x509.Certificate:
    """A certificate for one of the platform's services, signed by the issuing CA."""
    if purpose is Purpose.SERVER and not hosts:
        raise InvalidInput("a server certificate needs at least one host name or address")
    usage = {
        "digital_signature": purpose is not Purpose.RECIPIENT,
        "key_agreement": purpose is Purpose.RECIPIENT,
    }
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plantwarden"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"platform {purpose.value}"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca.issuing.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + lifetime, ca.issuing.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
                **usage,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if purpose is not Purpose.RECIPIENT:
        eku = (
            ExtendedKeyUsageOID.SERVER_AUTH if purpose is Purpose.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
    return builder.sign(ca.issuing_key, hashes.SHA256())


def ensure_service_identity(
    ca: CertificateAuthority,
    name: str,
    purpose: Purpose,
    *,
    hosts: tuple[str, ...] = (),
    clock: Clock | None = None,
) -> ServiceIdentity:
    """The service's certificate and key under `<pki>/services/`, issued (or re-issued, keeping
    the key) when missing, damaged, stale, for other hosts, or from another issuing CA."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidInput(f"{name!r} is not a service name (letters, digits, '-', '_', '.')")
    now = (clock or SystemClock()).now()
    directory = ca.directory / "services"
    directory.mkdir(mode=0o700, exist_ok=True)
    identity = ServiceIdentity(
        directory / f"{name}.pem", directory / f"{name}.key", directory / "ca-chain.pem"
    )
    if not identity.key.exists():
        # O_EXCL: when two processes start at once, one key wins and both use it
        with contextlib.suppress(FileExistsError):
            write_new_file(identity.key, key_pem(new_key(), None))
    key = identity.load_key()
    if _stale(identity, ca, purpose, hosts, now):
        certificate = service_certificate(
            ca, key.public_key(), name=name, purpose=purpose, hosts=hosts, now=now
        )
        replace_file(identity.certificate, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    chain = ca.chain_pem()
    if not identity.chain.exists() or identity.chain.read_bytes() != chain:
        replace_file(identity.chain, chain, 0o644)  # not on every call: a public route calls this
    return identity


def _stale(
    identity: ServiceIdentity,
    ca: CertificateAuthority,
    purpose: Purpose,
    hosts: tuple[str, ...],
    now: datetime,
) -> bool:
    if not identity.certificate.exists():
        return True
    try:
        certificate = identity.load_certificate()
    except ValueError:
        log.warning(
            "the service certificate %s is damaged (not a PEM certificate, or a broken one):"
            " issuing it again from the platform CA",
            identity.certificate,
        )
        return True
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= end - (end - start) / 3 or certificate.issuer != ca.issuing.subject:
        return True
    try:
        certificate.verify_directly_issued_by(ca.issuing)
    except (ValueError, TypeError, InvalidSignature):
        return True
    if certificate.public_key() != identity.load_key().public_key():
        return True
    unit = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not unit or unit[0].value != f"platform {purpose.value}":
        return True
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return bool(hosts)
    return set(names) != set(_alt_names(hosts))
