"""Quarantine through a live gateway with real peers: `plantwarden quarantine add` (the service
it calls) closes a live session of the subject within a second, a released subject connects
again, a quarantined certificate is closed and then refused at the handshake, and a quarantined
asset gets nothing forwarded. The list in force when the gateway starts is loaded."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient, ModbusTlsClient
from pymodbus.exceptions import ModbusException

from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.gateway.identity import CertificateChecker, server_context
from plantwarden.gateway.quarantine_watch import QuarantineWatch
from plantwarden.gateway.server import Gateway, GatewayConfig
from plantwarden.gateway.state import store_loader
from plantwarden.incidents import quarantine as services
from plantwarden.incidents.quarantine import QuarantineTarget
from tests.functional.test_gateway import LoopThread
from tests.unit.gateway.peers import Pki, RecordingPlc
from tests.unit.gateway.support import SITE, plant

CTX = Context(source="test", actor="sam")


class Running:
    def __init__(self, pki: Pki, plc: RecordingPlc, gateway: Gateway, host: LoopThread) -> None:
        self.pki, self.plc, self.gateway, self.host = pki, plc, gateway, host

    def plain_client(self) -> Any:
        client: Any = ModbusTcpClient(
            "127.0.0.1", port=self.gateway.addresses["modbus"][1], timeout=2, retries=0
        )
        assert client.connect()
        return client

    def change(self, target: str, *, on: bool = True) -> None:
        action = services.quarantine if on else services.release
        with self.pki.store.transaction() as session:
            action(session, CTX, None, site=SITE, target=QuarantineTarget.parse(target), reason="incident 7")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory: Path = tmp_path_factory.mktemp("gateway-quarantine")
    pki = Pki.create(directory)
    with pki.store.transaction() as session:  # in force before the gateway starts
        operators = QuarantineTarget.parse("cert_role:operator")
        services.quarantine(session, CTX, None, site=SITE, target=operators, reason="workstations reimaged")
    host = LoopThread()
    plc = RecordingPlc()
    host.run(plc.start())
    config = GatewayConfig(site=SITE, listen=("127.0.0.1", 0), mbaps=("127.0.0.1", 0), frame_timeout=0.5)
    gateway = Gateway(
        config,
        store_loader(pki.store, plant(), SITE, {"plc-1": ("127.0.0.1", plc.port)}),
        tls=server_context(pki.server),
        checker=CertificateChecker(pki.store, SystemClock(), SITE),
        quarantine=QuarantineWatch(pki.store, SITE),
    )
    host.run(gateway.start())
    yield Running(pki, plc, gateway, host)
    host.run(gateway.stop())
    host.run(plc.stop())
    host.close()
    pki.store.close()


def is_refused(client: Any) -> bool:
    """Whether a read is refused: exception 01, or the connection closed under it."""
    try:
        answer = client.read_holding_registers(0, count=1, device_id=1)
    except ModbusException:
        return True
    return bool(answer.isError())


def closed_within(sock: Any, seconds: float) -> float:
    """Seconds until the gateway closed the connection (the socket reads end of stream)."""
    started = time.monotonic()
    sock.settimeout(seconds + 1.0)
    try:
        data = sock.recv(100)
    except (ssl.SSLError, ConnectionError):
        data = b""
    except TimeoutError:
        data = b"still open"
    elapsed = time.monotonic() - started
    assert data == b"", "the session was not closed"
    return elapsed


def test_quarantining_an_address_closes_its_live_session_within_a_second_and_release_lets_it_in(
    running: Running,
) -> None:
    client = running.plain_client()
    try:
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()
        running.change("address:127.0.0.1")
        elapsed = closed_within(client.socket, 1.0)
        assert elapsed < 1.0, f"closed after {elapsed:.3f} s"
    finally:
        client.close()
    running.plc.received.clear()
    refused = running.plain_client()  # it may connect, but nothing it asks reaches the PLC
    try:
        assert is_refused(refused)
    finally:
        refused.close()
    assert running.plc.received == []
    running.change("address:127.0.0.1", on=False)
    time.sleep(running.gateway.config.tick * 2 + 0.1)
    again = running.plain_client()
    try:
        assert not again.read_holding_registers(0, count=1, device_id=1).isError()
    finally:
        again.close()


def test_the_list_in_force_at_start_is_loaded(running: Running) -> None:
    operator = running.pki.client(f"hmi-{time.monotonic_ns()}", "operator")
    client: Any = ModbusTlsClient("127.0.0.1", port=running.gateway.addresses["mbaps"][1],
                                  sslctx=running.pki.client_context(operator, check_hostname=False),
                                  timeout=1, retries=0)  # fmt: skip
    running.plc.received.clear()
    try:
        assert client.connect()
        assert is_refused(client)
    finally:
        client.close()
    assert running.plc.received == []


def test_a_quarantined_certificate_is_closed_and_then_refused_at_the_handshake(running: Running) -> None:
    files = running.pki.client(f"eng-{time.monotonic_ns()}", "engineer")
    port = running.gateway.addresses["mbaps"][1]
    context = running.pki.client_context(files, check_hostname=False)
    client: Any = ModbusTlsClient("127.0.0.1", port=port, sslctx=context, timeout=1, retries=0)
    try:
        assert client.connect()
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()
        running.change(f"certificate:{files.serial}")
        elapsed = closed_within(client.socket, 1.0)
        assert elapsed < 1.0, f"closed after {elapsed:.3f} s"
    finally:
        client.close()
    other = running.pki.client(f"eng-{time.monotonic_ns()}", "engineer")  # the role itself is not quarantined
    running.plc.received.clear()
    for files_, allowed in ((files, False), (other, True)):
        sslctx = running.pki.client_context(files_, check_hostname=False)
        again: Any = ModbusTlsClient("127.0.0.1", port=port, sslctx=sslctx, timeout=1, retries=0)
        try:
            assert again.connect()
            if allowed:
                assert not again.read_holding_registers(0, count=1, device_id=1).isError()
            else:
                with pytest.raises(ModbusException):
                    again.read_holding_registers(0, count=1, device_id=1)
        finally:
            again.close()
    assert len(running.plc.received) == 1


def test_a_quarantined_asset_gets_nothing_forwarded(running: Running) -> None:
    running.change("asset:plc-1")
    time.sleep(running.gateway.config.tick * 2 + 0.1)
    running.plc.received.clear()
    client = running.plain_client()
    try:
        answer = client.read_holding_registers(0, count=1, device_id=1)
        assert answer.isError() and answer.exception_code == 1
    finally:
        client.close()
    assert running.plc.received == []
    running.change("asset:plc-1", on=False)
    time.sleep(running.gateway.config.tick * 2 + 0.1)
    client = running.plain_client()
    try:
        assert not client.read_holding_registers(0, count=1, device_id=1).isError()
    finally:
        client.close()
    assert len(running.plc.received) == 1
