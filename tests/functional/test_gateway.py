"""The gateway between real peers: pymodbus TLS clients with platform certificates, plain clients
by address, and a PLC that records every ADU it receives. Only allowed, well-formed requests may
reach the PLC; refused clients never cause an upstream connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient, ModbusTlsClient
from pymodbus.exceptions import ModbusException
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.records.partitions import SQLitePartitions
from plantwarden.core.records.plane import RecordWriter
from plantwarden.gateway.alerts import RULE_ID, DenialAlerts
from plantwarden.gateway.identity import CertificateChecker, server_context
from plantwarden.gateway.records import RecordBuffer, read_gateway_records
from plantwarden.gateway.revocations import RevocationFeed
from plantwarden.gateway.server import Gateway, GatewayConfig
from plantwarden.gateway.state import store_loader
from plantwarden.pki.revocation import revoke
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from tests.unit.gateway.peers import ClientFiles, Pki, RecordingPlc
from tests.unit.gateway.support import SITE, adu, plant, read_holding

T = TypeVar("T")


class LoopThread:
    """An event loop in a thread of its own, where the gateway and the PLC run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Harness:
    pki: Pki
    plc: RecordingPlc
    gateway: Gateway
    host: LoopThread
    backend: SQLitePartitions
    operator: ClientFiles
    engineer: ClientFiles

    @property
    def mbaps(self) -> int:
        return self.gateway.addresses["mbaps"][1]

    @property
    def plain(self) -> int:
        return self.gateway.addresses["modbus"][1]

    def tls_client(self, files: ClientFiles | None, *, tls13: bool = True) -> Any:
        """A connected pymodbus TLS client (untyped: pymodbus's sync client has no annotations)."""
        client: Any = ModbusTlsClient(
            "127.0.0.1",
            port=self.mbaps,
            sslctx=self.pki.client_context(files, tls13=tls13, check_hostname=False),
            timeout=2,
            retries=0,
        )
        assert client.connect()
        return client


@contextlib.contextmanager
def running_gateway(directory: Path, config: GatewayConfig, *, alerts: bool = True) -> Iterator[Harness]:
    """A gateway of `config` in a loop thread, with a platform PKI, a recording PLC and records
    under `directory`; stopped and cleaned up on the way out."""
    pki = Pki.create(directory)
    host = LoopThread()
    plc = RecordingPlc()
    host.run(plc.start())
    backend = SQLitePartitions(directory / "records")
    gateway = Gateway(
        config,
        store_loader(pki.store, plant(), SITE, {"plc-1": ("127.0.0.1", plc.port)}),
        tls=server_context(pki.server),
        checker=CertificateChecker(pki.store, SystemClock(), SITE),
        revocations=RevocationFeed(pki.store),
        records=RecordBuffer(RecordWriter(backend, "gateway-plant-a")),
        alerts=DenialAlerts(pki.store, Context(source="gateway")) if alerts else None,
    )
    host.run(gateway.start())
    try:
        yield Harness(
            pki, plc, gateway, host, backend, pki.client("hmi-1", "operator"), pki.client("eng-1", "engineer")
        )
    finally:
        host.run(gateway.stop())
        host.run(plc.stop())
        host.close()
        pki.store.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    config = GatewayConfig(site=SITE, listen=("127.0.0.1", 0), mbaps=("127.0.0.1", 0), frame_timeout=0.5)
    with running_gateway(tmp_path_factory.mktemp("gateway"), config) as running:
        yield running


def test_an_operator_certificate_reads_but_cannot_write(harness: Harness) -> None:
    harness.plc.received.clear()
    client = harness.tls_client(harness.operator)
    try:
        answer = client.read_holding_registers(2, count=2, device_id=1)  # flow_limit (float32)
        assert not answer.isError() and answer.registers == [0, 0]
        refused = client.write_register(0, 800, device_id=1)
        assert refused.isError() and refused.exception_code == 1
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()  # the session goes on
    finally:
        client.close()
    assert [m.function_code for m in harness.plc.messages()] == [3, 3]


def test_an_engineer_certificate_writes_within_the_limits_and_not_beyond(harness: Harness) -> None:
    harness.plc.received.clear()
    client = harness.tls_client(harness.engineer, tls13=False)  # TLS 1.2 works too
    try:
        assert not client.write_register(0, 800, device_id=1).isError()  # 80.0 %
        beyond = client.write_register(0, 990, device_id=1)  # 99.0 %, outside [50, 95]
        assert beyond.isError() and beyond.exception_code == 1
        elsewhere = client.write_register(6, 1, device_id=1)  # no register there lists engineer
        assert elsewhere.isError() and elsewhere.exception_code == 1
        unrouted = client.read_holding_registers(0, count=1, device_id=9)
        assert unrouted.isError() and unrouted.exception_code == 0x0A
    finally:
        client.close()
    assert [(m.function_code, m.address, m.values) for m in harness.plc.messages()] == [(6, 0, (800,))]


@pytest.mark.parametrize(
    "kind", ["valid", "revoked", "expired", "foreign", "absent", "no-role", "other-site"]
)
def test_refused_certificates_get_their_refusal_on_the_first_read(harness: Harness, kind: str) -> None:
    harness.plc.received.clear()
    connections = harness.plc.connections
    files = harness.engineer if kind == "valid" else _bad_client(harness, kind)
    context = harness.pki.client_context(files)
    request = adu(1, 1, read_holding(0, 1))

    async def first_read() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.mbaps, ssl=context)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"  # the client's handshake is done
        writer.write(request)
        try:
            return await asyncio.wait_for(reader.read(100), 5)
        except (ssl.SSLError, ConnectionError):
            return b""  # the refusal: a TLS alert, or the connection reset
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    answer = asyncio.run(first_read())
    time.sleep(0.1)
    if kind == "valid":
        assert answer == struct.pack(">HHHBBBH", 1, 0, 5, 1, 3, 2, 0)
        assert [raw[2:] for raw in harness.plc.received] == [request[2:]]  # the pool renumbers it
        return
    assert answer == b""  # never an answer
    assert harness.plc.received == []
    assert harness.plc.connections == connections  # no upstream connection for them


def _bad_client(harness: Harness, kind: str) -> ClientFiles | None:
    pki = harness.pki
    if kind == "revoked":
        files = pki.client(f"revoked-{time.monotonic_ns()}", "engineer")
        with pki.store.transaction() as session:
            revoke(session, Context(source="test"), None, serial=files.serial, reason="key compromise")
        return files
    if kind == "expired":
        return pki.client(f"expired-{time.monotonic_ns()}", "engineer", expired=True)
    if kind == "foreign":
        return pki.foreign_client("intruder", "engineer")
    if kind == "no-role":
        return pki.client(f"norole-{time.monotonic_ns()}", None)
    if kind == "other-site":
        return _other_site(pki)
    return None


def _other_site(pki: Pki) -> ClientFiles:
    from cryptography.hazmat.primitives.asymmetric import ec

    from plantwarden.pki.certs import DeviceIdentity
    from plantwarden.pki.issuing import issue
    from tests.unit.pki.support import make_csr, pem

    key = ec.generate_private_key(ec.SECP256R1())
    with pki.store.transaction() as session:
        issued = issue(
            session,
            Context(source="test"),
            None,
            pki.ca,
            identity=DeviceIdentity("plant-b", "visitor", "cell-1", "engineer"),
            csr=make_csr(key),
        )
        serial, certificate = issued.record.serial, issued.certificate
    return pki._files("visitor", pem(certificate), key, serial)


def test_revoking_a_certificate_closes_its_live_session_within_a_second(harness: Harness) -> None:
    files = harness.pki.client(f"eng-{time.monotonic_ns()}", "engineer")
    client = harness.tls_client(files)
    try:
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()
        sock = client.socket
        assert sock is not None
        with harness.pki.store.transaction() as session:
            revoke(session, Context(source="test"), None, serial=files.serial, reason="laptop stolen")
        started = time.monotonic()
        sock.settimeout(2.0)
        try:
            data = sock.recv(100)
        except (ssl.SSLError, ConnectionError):
            data = b""
        elapsed = time.monotonic() - started
        assert data == b"" and elapsed < 1.0, f"closed after {elapsed:.3f} s"
    finally:
        client.close()


def test_plain_clients_act_in_the_role_their_address_is_bound_to(harness: Harness) -> None:
    harness.plc.received.clear()
    bound: Any = ModbusTcpClient("127.0.0.1", port=harness.plain, timeout=2, retries=0)
    assert bound.connect()
    try:
        assert not bound.read_holding_registers(0, count=1, device_id=1).isError()
        assert bound.write_register(0, 800, device_id=1).exception_code == 1  # operator: no writes
    finally:
        bound.close()
    connections = harness.plc.connections
    unbound = socket.create_connection(
        ("127.0.0.1", harness.plain), timeout=2, source_address=("127.0.0.2", 0)
    )
    try:  # refused at connect: closed before a byte is read
        with contextlib.suppress(ConnectionError):
            unbound.sendall(adu(1, 1, read_holding(0, 1)))
        with contextlib.suppress(ConnectionError):
            assert unbound.recv(64) == b""
    finally:
        unbound.close()
    assert [m.function_code for m in harness.plc.messages()] == [3]
    assert harness.plc.connections == connections
    assert any(
        r["rule"] == "gateway:client:unbound" and "127.0.0.2" in r["reason"] for r in _records_soon(harness)
    )


def _records_soon(harness: Harness) -> list[dict[str, Any]]:
    """The gateway's records after its next flush."""
    time.sleep(1.3)
    return [row for batch in read_gateway_records(harness.backend, 0, 2**62) for row in batch.rows()]


def _send_raw(port: int, data: bytes, *, pause: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        try:
            if pause:
                for byte in data:
                    sock.sendall(bytes([byte]))
                    time.sleep(pause)
            else:
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return b""  # the gateway dropped the connection while we were sending
        chunks = []
        try:
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        except (ConnectionError, TimeoutError):
            pass
        return b"".join(chunks)


def test_lying_lengths_partial_frames_and_slow_senders_never_reach_the_plc(harness: Harness) -> None:
    harness.plc.received.clear()
    lying = struct.pack(">HHHB", 1, 0, 200, 1) + read_holding(0, 1)
    assert _send_raw(harness.plain, lying) == b""
    assert _send_raw(harness.plain, adu(1, 1, read_holding(0, 1))[:9]) == b""
    slow = adu(7, 1, read_holding(0, 1))
    assert _send_raw(harness.plain, slow, pause=0.1) == b""  # 12 bytes over 1.2 s, frame timeout 0.5 s
    bad_protocol = struct.pack(">HHHB", 1, 1, 6, 1) + read_holding(0, 1)
    assert _send_raw(harness.plain, bad_protocol) == b""
    malformed = adu(3, 1, bytes([16, 0, 0, 0, 2, 3, 0, 0, 0]))  # byte count disagrees with quantity
    assert _send_raw(harness.plain, malformed) == struct.pack(">HHHBBB", 3, 0, 3, 1, 0x90, 3)
    assert harness.plc.received == []
    good = _send_raw(harness.plain, adu(9, 1, read_holding(0, 1)))
    assert good == struct.pack(">HHHBBBH", 9, 0, 5, 1, 3, 2, 0)  # the gateway still serves


def test_refusals_are_recorded_with_the_policy_version_and_alerted_once(harness: Harness) -> None:
    client = harness.tls_client(harness.operator)
    try:
        for _ in range(5):
            assert client.write_register(5, 1, device_id=1).exception_code == 1
    finally:
        client.close()
    engineer = harness.tls_client(harness.engineer)  # an allowed request, recorded as well
    try:
        assert not engineer.read_holding_registers(0, count=1, device_id=1).isError()
    finally:
        engineer.close()
    anonymous = harness.tls_client(None)  # a refused handshake (no client certificate), recorded too
    try:
        with contextlib.suppress(Exception):
            anonymous.read_holding_registers(0, count=1, device_id=1)
    finally:
        anonymous.close()
    time.sleep(1.5)  # one flush of records and alerts
    rows = [row for batch in read_gateway_records(harness.backend, 0, 2**62) for row in batch.rows()]
    refused = [
        r for r in rows if r["subject"] == "cert_role operator" and r["function"] == 6 and r["address"] == 5
    ]
    assert len(refused) >= 5
    version = harness.gateway.decider.version
    assert version and all(r["policy_version"] == version and r["allowed"] == 0 for r in refused)
    assert all(r["rule"] == "default-deny" and r["status"] == 1 and r["asset"] == "plc-1" for r in refused)
    assert any(r["allowed"] == 1 and r["subject"] == "cert_role engineer" for r in rows)
    assert any(r["rule"].startswith("gateway:client:") for r in rows)  # refused handshakes too
    with harness.pki.store.transaction() as session:
        alerts = session.scalars(select(Alert).where(Alert.rule_id == RULE_ID)).all()
        mine = [a for a in alerts if "cert_role operator" in a.title and "default-deny" in a.title]
        assert len(mine) == 1


_FUZZ = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda body, length: struct.pack(">HHHB", 1, 0, length, 1) + body,
        st.binary(max_size=40),
        st.integers(0, 65535),
    ),
    st.builds(lambda pdu, cut: adu(2, 1, pdu)[:cut], st.binary(min_size=1, max_size=30), st.integers(0, 40)),
    st.builds(lambda pdu: adu(3, 1, pdu), st.binary(min_size=1, max_size=30)),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_FUZZ)
def test_fuzzed_frames_never_reach_the_plc_unless_allowed_and_well_formed(
    harness: Harness, data: bytes
) -> None:
    before = len(harness.plc.received)
    _send_raw(harness.plain, data)
    for raw in harness.plc.received[before:]:  # a fuzzed frame may be a sound read by chance
        message = decode_request(raw)
        assert message.finding is ModbusFinding.OK
        assert message.operation in (Operation.READ, Operation.IDENTIFY)  # the bound role: operator
    assert _send_raw(harness.plain, adu(9, 1, read_holding(0, 1))) == struct.pack(
        ">HHHBBBH", 9, 0, 5, 1, 3, 2, 0
    )


def decode_request(raw: bytes) -> Any:
    from plantwarden.protocols.modbus.exact import decode

    return decode(raw, False)


def test_a_pymodbus_client_with_a_revoked_certificate_is_refused_on_its_first_request(
    harness: Harness,
) -> None:
    harness.plc.received.clear()
    files = _bad_client(harness, "revoked")
    client: Any = ModbusTlsClient(
        "127.0.0.1",
        port=harness.mbaps,
        sslctx=harness.pki.client_context(files, check_hostname=False),
        timeout=1,
        retries=0,
    )
    try:
        assert client.connect()  # TLS 1.3: the client's handshake completes
        with pytest.raises(ModbusException):
            client.read_holding_registers(0, count=1, device_id=1)
    finally:
        client.close()
    assert harness.plc.received == []


def test_garbage_instead_of_a_tls_handshake_is_dropped(harness: Harness) -> None:
    harness.plc.received.clear()
    assert _send_raw(harness.mbaps, adu(1, 1, read_holding(0, 1)) * 3) == b""
    client = harness.tls_client(harness.operator)
    try:
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()  # still serving
    finally:
        client.close()
    assert len(harness.plc.received) == 1
