"""Real peers of the gateway in tests: a PLC that records every ADU, and a platform PKI with
client certificates of every kind (operator, engineer, revoked, expired, foreign CA)."""

from __future__ import annotations

import asyncio
import ssl
import struct
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import make_url

from plantwarden.core import migrate
from plantwarden.core.clock import Clock, FixedClock, SystemClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store, create_store_engine
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import DeviceIdentity, device_certificate
from plantwarden.pki.issuing import issue
from plantwarden.pki.service_certs import Purpose, ServiceIdentity, ensure_service_identity
from plantwarden.protocols.modbus.exact import decode
from plantwarden.protocols.modbus.messages import ModbusMessage
from tests.unit.gateway.support import SITE
from tests.unit.pki.support import PASSPHRASE, make_csr, pem


@dataclass
class RecordingPlc:
    """A Modbus/TCP server that keeps every ADU it receives and answers like a PLC: reads with
    zeros, writes with their echo, anything else with exception 01."""

    received: list[bytes] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def messages(self) -> list[ModbusMessage]:
        return [decode(raw, False) for raw in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                header = await reader.readexactly(7)
                transaction, _, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                self.received.append(header + pdu)
                answer = _answer(pdu)
                writer.write(struct.pack(">HHHB", transaction, 0, len(answer) + 1, unit) + answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _answer(pdu: bytes) -> bytes:
    code = pdu[0]
    if code in (3, 4):
        count = struct.unpack(">H", pdu[3:5])[0]
        return bytes([code, 2 * count]) + bytes(2 * count)
    if code in (1, 2):
        count = struct.unpack(">H", pdu[3:5])[0]
        return bytes([code, (count + 7) // 8]) + bytes((count + 7) // 8)
    if code in (5, 6):
        return pdu[:5]
    if code in (15, 16):
        return pdu[:5]
    return bytes([code | 0x80, 1])


@dataclass
class ClientFiles:
    """A client's certificate and key as files (for ssl contexts), and its serial."""

    certificate: Path
    key: Path
    serial: str


@dataclass
class Pki:
    """The platform CA, its store (with the certificate inventory) and the gateway's identity."""

    directory: Path
    store: Store
    ca: CertificateAuthority
    server: ServiceIdentity

    @classmethod
    def create(cls, directory: Path) -> Pki:
        store = Store(create_store_engine(make_url(f"sqlite:///{directory}/store.db")))
        migrate.ensure_ready(store)
        ca = CertificateAuthority.initialise(directory / "pki", PASSPHRASE)
        server = ensure_service_identity(ca, "gateway", Purpose.SERVER, hosts=("127.0.0.1",))
        return cls(directory, store, ca, server)

    def client(self, device: str, role: str | None, *, expired: bool = False) -> ClientFiles:
        """Issue (and record) a device certificate with `role`; `expired`: one that ended yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        clock: Clock = SystemClock()
        lifetime = None
        if expired:
            clock = FixedClock(SystemClock().now() - timedelta(days=3))
            lifetime = timedelta(days=1)
        ctx = Context(source="test", clock=clock)
        with self.store.transaction() as session:
            issued = issue(session, ctx, None, self.ca, identity=DeviceIdentity(SITE, device, "cell-1", role),
                           csr=make_csr(key), lifetime=lifetime)  # fmt: skip
            serial = issued.record.serial
            certificate = issued.certificate
        return self._files(device, pem(certificate), key, serial)

    def foreign_client(self, device: str, role: str) -> ClientFiles:
        """A certificate of the same shape from another CA (not ours, not in the inventory)."""
        other = CertificateAuthority.initialise(self.directory / "foreign-pki", PASSPHRASE)
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = device_certificate(
            DeviceIdentity(SITE, device, "cell-1", role),
            key.public_key(),
            issuer=other.issuing,
            issuer_key=other.issuing_key,
            now=SystemClock().now(),
            lifetime=timedelta(days=30),
        )
        return self._files(device, pem(certificate) + other.chain_pem(), key, "")

    def _files(
        self, device: str, certificate: bytes, key: ec.EllipticCurvePrivateKey, serial: str
    ) -> ClientFiles:
        cert_path = self.directory / f"{device}.pem"
        key_path = self.directory / f"{device}.key"
        cert_path.write_bytes(certificate)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return ClientFiles(cert_path, key_path, serial)

    def client_context(
        self, files: ClientFiles | None, *, tls13: bool = True, check_hostname: bool = True
    ) -> ssl.SSLContext:
        """What a client uses: trusts the platform chain, presents `files` (None: no certificate).

        pymodbus's TLS client names no server host, so it checks the chain only."""
        context = ssl.create_default_context(cafile=str(self.server.chain))
        context.check_hostname = check_hostname
        if not tls13:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        if files is not None:
            context.load_cert_chain(files.certificate, files.key)
        return context
