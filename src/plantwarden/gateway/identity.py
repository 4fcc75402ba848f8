"""Who a client is: a verified certificate's role (mbaps), or its source address (plain Modbus/TCP).

mbaps (Modbus/TCP Security): TLS 1.2 or 1.3 with a client certificate REQUIRED and verified by
OpenSSL against the platform CA chain (issuing CA and root); then `CertificateChecker` asks the
certificate inventory that the certificate is one the platform issued, for this site, neither
revoked nor expired, and reads its role from the role extension (1.3.6.1.4.1.50316.802.1). Only
then does the session read a request; a refused client is disconnected before any PLC is touched.

Plain Modbus/TCP: the subject is the source address; plant.yaml's bindings grant it a role.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from plantwarden.core.clock import Clock
from plantwarden.core.db import Store
from plantwarden.pki.certs import fingerprint, identity_of, serial_text
from plantwarden.pki.errors import InvalidRequest
from plantwarden.pki.queries import CertificateStatus, status
from plantwarden.pki.service_certs import ServiceIdentity
from plantwarden.policy.model import Subject
from plantwarden.zones.plant.model import SiteModel


@dataclass(frozen=True, slots=True)
class Client:
    """A verified client: the policy subject, the role it acts in, and (mbaps) its certificate."""

    subject: Subject
    role: str
    device: str = ""
    fingerprint: bytes = b""
    serial: str = ""
    not_after: datetime | None = None

    def __str__(self) -> str:
        return f"{self.subject} ({self.device})" if self.device else str(self.subject)


class ClientRefused(Exception):
    """The client may not use the gateway: `reason` (a short code) and a sentence for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def server_context(identity: ServiceIdentity) -> ssl.SSLContext:
    """The mbaps server context: our certificate, TLS 1.2+, client certificates required and
    verified against the platform CA chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(identity.certificate, identity.key)
    context.load_verify_locations(cafile=str(identity.chain))
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.options |= ssl.OP_NO_RENEGOTIATION  # TLS 1.2: no client-initiated renegotiation
    return context


def address_client(address: str, site: SiteModel | None) -> Client:
    """The subject of a plain Modbus/TCP client: its address (IPv4-mapped IPv6 as IPv4), and the
    role its binding gives it ("" when none: every request is then refused by default)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bindings = () if site is None else site.bindings
    role = next((b.role for b in bindings if b.address == ip), "")
    return Client(Subject("address", str(ip)), role)


class CertificateChecker:
    """Checks a TLS peer certificate against the certificate inventory of the store."""

    def __init__(self, store: Store, clock: Clock, site: str) -> None:
        self.store, self.clock, self.site = store, clock, site

    def check(self, der: bytes | None) -> Client:
        """The client the certificate speaks for; `ClientRefused` says why not (blocking: call it
        from a thread)."""
        if not der:
            raise ClientRefused("no_certificate", "the client presented no certificate")
        certificate = x509.load_der_x509_certificate(der)
        try:
            identity = identity_of(certificate)
        except InvalidRequest as error:
            raise ClientRefused("not_a_device_certificate", error.message) from None
        if identity.site != self.site:
            raise ClientRefused(
                "other_site",
                f"the certificate of {identity.device} is for site {identity.site}, not {self.site}",
            )
        if identity.role is None:
            raise ClientRefused("no_role", f"the certificate of {identity.device} carries no Modbus role")
        digest = fingerprint(certificate)
        try:
            with self.store.transaction() as session:
                found = status(session, digest, self.clock.now())
        except Exception as error:  # the store is unreachable: refuse (fail closed)
            raise ClientRefused(
                "store_unreachable", f"the certificate inventory cannot be read: {error}"
            ) from None
        if found is not CertificateStatus.VALID:
            raise ClientRefused(
                str(found),
                f"the certificate {serial_text(certificate)} of {identity.device} is {found.value}",
            )
        return Client(
            Subject("cert_role", identity.role),
            identity.role,
            identity.device,
            digest,
            serial_text(certificate),
            certificate.not_valid_after_utc,
        )
