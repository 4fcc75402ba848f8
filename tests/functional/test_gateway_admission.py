"""Who the gateway lets in (the review of issue 13): connection caps overall and per source
address, and a certificate revoked between its inventory check and its session's start."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.gateway.identity import CertificateChecker, Client
from plantwarden.gateway.records import read_gateway_records
from plantwarden.gateway.server import GatewayConfig
from plantwarden.pki.revocation import revoke
from tests.functional.test_gateway import Harness, running_gateway
from tests.unit.gateway.support import SITE, adu, read_holding


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A gateway that takes 3 connections at once, 2 from one address."""
    config = GatewayConfig(
        site=SITE, listen=("127.0.0.1", 0), mbaps=("127.0.0.1", 0), max_sessions=3, max_sessions_per_address=2
    )
    with running_gateway(tmp_path_factory.mktemp("admission"), config, alerts=False) as running:
        yield running


def _plain(port: int, source: str = "127.0.0.1") -> Any:
    client: Any = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, source_address=(source, 0))
    assert client.connect()
    return client


def _refused_at_connect(port: int, source: str) -> bool:
    """Whether a connection from `source` is closed without an answer to a read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0))
    try:
        with contextlib.suppress(ConnectionError):
            sock.sendall(adu(1, 1, read_holding(0, 1)))
        try:
            return sock.recv(64) == b""
        except ConnectionError:
            return True
    finally:
        sock.close()


def _rows(small: Harness) -> list[dict[str, Any]]:
    time.sleep(1.3)  # one flush
    return [row for batch in read_gateway_records(small.backend, 0, 2**62) for row in batch.rows()]


def test_connections_are_capped_per_source_address_and_overall(small: Harness) -> None:
    port = small.plain
    first, second = _plain(port), _plain(port)
    try:
        assert not first.read_holding_registers(0, count=1, device_id=1).isError()
        assert _refused_at_connect(port, "127.0.0.1")  # a third from the same address
        assert not second.read_holding_registers(0, count=1, device_id=1).isError()
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 2
    while small.gateway.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert small.gateway.connections == {}  # closed connections leave the count
    again = _plain(port)
    try:
        assert not again.read_holding_registers(0, count=1, device_id=1).isError()
    finally:
        again.close()
    rows = _rows(small)
    assert any(
        r["rule"] == "gateway:client:capacity" and "max_sessions_per_address" in r["reason"] for r in rows
    )


def test_the_overall_cap_counts_every_address(small: Harness) -> None:
    port = small.plain
    holders = [
        socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(f"127.0.0.{n}", 0))
        for n in (1, 1)
    ]
    try:
        tls = socket.create_connection(("127.0.0.1", small.mbaps), timeout=2, source_address=("127.0.0.3", 0))
        try:  # a TLS handshake not yet made holds its place too
            deadline = time.monotonic() + 2
            while sum(small.gateway.connections.values()) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sum(small.gateway.connections.values()) == 3
            assert _refused_at_connect(port, "127.0.0.4")
        finally:
            tls.close()
    finally:
        for holder in holders:
            holder.close()
    rows = _rows(small)
    assert any(r["rule"] == "gateway:client:capacity" and "(max_sessions)" in r["reason"] for r in rows)


class _RevokedMeanwhile(CertificateChecker):
    """The inventory says valid; the certificate is revoked, and the supervisor reads the
    revocation, before the session is registered (the race of the review's finding 5)."""

    def __init__(self, small: Harness, serial: str) -> None:
        super().__init__(small.pki.store, SystemClock(), SITE)
        self.small, self.serial = small, serial

    def check(self, der: bytes | None) -> Client:
        client = super().check(der)
        if client.serial == self.serial:
            with self.store.transaction() as session:
                revoke(session, Context(source="test"), None, serial=self.serial, reason="laptop stolen")
            deadline = time.monotonic() + 3
            while client.fingerprint not in self.small.gateway._revoked and time.monotonic() < deadline:
                time.sleep(0.02)
            assert client.fingerprint in self.small.gateway._revoked
        return client


def test_a_certificate_revoked_between_its_check_and_its_session_is_not_served(small: Harness) -> None:
    files = small.pki.client(f"eng-{time.monotonic_ns()}", "engineer")
    received = len(small.plc.received)
    other = small.tls_client(small.operator)  # a live session: the supervisor reads revocations
    gateway = small.gateway
    checker = gateway.checker
    gateway.checker = _RevokedMeanwhile(small, files.serial)
    try:
        context = small.pki.client_context(files)

        async def first_read() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", small.mbaps, ssl=context)
            writer.write(adu(1, 1, read_holding(0, 1)))
            try:
                return await asyncio.wait_for(reader.read(100), 5)
            except (ssl.SSLError, ConnectionError):
                return b""
            finally:
                writer.close()
                with contextlib.suppress(ssl.SSLError, ConnectionError):
                    await writer.wait_closed()

        assert asyncio.run(first_read()) == b""
    finally:
        gateway.checker = checker
        other.close()
    rows = _rows(small)
    assert any(r["rule"] == "gateway:revoked" and files.serial in r["reason"] for r in rows)
    assert len(small.plc.received) == received  # the read never reached the PLC


def test_one_request_in_flight_per_plc_connection_by_default(small: Harness) -> None:
    target = small.gateway.state.route(1) if small.gateway.state is not None else None
    assert target is not None
    assert GatewayConfig(SITE).pipeline_depth == 1  # many PLCs take one transaction at a time
    assert small.gateway.pool(target).pipeline_depth == 1
