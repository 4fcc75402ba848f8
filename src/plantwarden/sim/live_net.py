"""The live plant's client connections: TCP from a host's own loopback address, reported to the tap.

Every host of the plant has its own 127.x address, so a connection is opened from that address
(`local_addr`) and the server sees the host, not 127.0.0.1. What a connection sends and receives
is reported to the software tap, if there is one. On top: a Modbus/TCP client speaking
`modbus_messages`, an MQTT publisher and a minimal HTTP/1.1 exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from plantwarden.core.errors import InvalidInput, NotFound, PlantwardenError
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim import mqtt
from plantwarden.sim.tap import Endpoint, Tap

CONNECT_TIMEOUT = 2.0
ANSWER_TIMEOUT = 2.0
MAX_ABANDONED = 256
"""Transactions given up on whose late answers are still recognised (and dropped)."""


class Unreachable(NotFound):
    """Nothing accepts connections at that address and port."""

    code = "unreachable"


class PeerClosed(PlantwardenError):
    """The peer closed the connection before its answer was whole."""

    code = "peer_closed"


class LiveConnection:
    """A TCP connection from a plant host's address, each byte reported to the tap."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tap: Tap | None) -> None:
        self.reader = reader
        self.writer = writer
        self.tap = tap
        local = writer.get_extra_info("sockname")
        remote = writer.get_extra_info("peername")
        self.client: Endpoint = (local[0], local[1])
        self.server: Endpoint = (remote[0], remote[1])

    @classmethod
    async def open(cls, source: str, host: str, port: int, tap: Tap | None = None) -> LiveConnection:
        """Connect from `source` to `host`:`port`; Unreachable if refused or unanswered."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        except (OSError, TimeoutError) as error:
            raise Unreachable(f"{host}:{port} does not accept connections from {source} ({error})") from error
        connection = cls(reader, writer, tap)
        if tap is not None:
            tap.opened(connection.client, connection.server)
        return connection

    async def send(self, data: bytes) -> None:
        """Send `data` to the server."""
        self.writer.write(data)
        await self.writer.drain()
        if self.tap is not None:
            self.tap.sent(self.client, self.server, data, from_client=True)

    def received(self, data: bytes) -> bytes:
        """Report `data` read from the server to the tap (as one segment), and return it."""
        if self.tap is not None:
            self.tap.sent(self.client, self.server, data, from_client=False)
        return data

    async def receive_exactly(
        self, count: int, timeout: float = ANSWER_TIMEOUT, *, report: bool = True
    ) -> bytes:
        """Exactly `count` bytes; TimeoutError or IncompleteReadError if they do not come.

        With `report=False` the caller reports them itself (`received`), so that a message read
        in pieces reaches the tap as the one segment the server sent.
        """
        async with asyncio.timeout(timeout):
            data = await self.reader.readexactly(count)
        return self.received(data) if report else data

    async def receive_until(self, separator: bytes, timeout: float = ANSWER_TIMEOUT) -> bytes:
        """Bytes up to and including `separator`."""
        async with asyncio.timeout(timeout):
            return self.received(await self.reader.readuntil(separator))

    async def close(self) -> None:
        """Close the connection (reported to the tap first)."""
        if self.tap is not None:
            self.tap.closed(self.client, self.server)
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> LiveConnection:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


class LiveModbusClient:
    """Modbus/TCP requests over a `LiveConnection`, one at a time or pipelined."""

    def __init__(self, connection: LiveConnection, unit_id: int, transaction: int = 0) -> None:
        self.connection = connection
        self.unit_id = unit_id
        self.transaction = transaction
        self.abandoned: dict[int, None] = {}  # insertion-ordered, at most MAX_ABANDONED

    def _adu(self, request: modbus.Request) -> tuple[int, bytes]:
        self.transaction = (self.transaction + 1) & 0xFFFF
        return self.transaction, modbus.adu(self.transaction, self.unit_id, modbus.request_pdu(request))

    async def call(self, request: modbus.Request, timeout: float = ANSWER_TIMEOUT) -> modbus.Response | None:
        """Send `request` and read its answer; None when the PLC answers nothing in `timeout`."""
        answers = await self.pipeline([request], timeout)
        return answers[0]

    async def pipeline(
        self, requests: list[modbus.Request], timeout: float = ANSWER_TIMEOUT
    ) -> list[modbus.Response | None]:
        """Send every request in one segment, then read the answers (None: no answer in time).

        The whole batch has one deadline: a PLC that answers nothing (listen-only) holds the
        client for `timeout`, not once per request. An answer that comes after its request was
        given up on is read and dropped when it arrives.
        """
        framed = [self._adu(request) for request in requests]
        await self.connection.send(b"".join(adu for _, adu in framed))
        deadline = asyncio.get_running_loop().time() + timeout
        answers: list[modbus.Response | None] = []
        for (transaction, _), request in zip(framed, requests, strict=True):
            answer = None
            if not _unanswered(request) and not self._late(deadline):
                answer = await self._answer(transaction, request, deadline)
            if answer is None:
                self.abandoned[transaction] = None
                if len(self.abandoned) > MAX_ABANDONED:
                    del self.abandoned[next(iter(self.abandoned))]
            answers.append(answer)
        return answers

    @staticmethod
    def _late(deadline: float) -> bool:
        return asyncio.get_running_loop().time() >= deadline

    async def _answer(
        self, transaction: int, request: modbus.Request, deadline: float
    ) -> modbus.Response | None:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                frame = await self._frame(remaining)
            except TimeoutError:
                return None
            answered, _unit, pdu = modbus.split_adu(frame)
            if answered == transaction:
                return modbus.decode_response(request, pdu)
            if answered not in self.abandoned:
                raise InvalidInput(f"an answer to transaction {answered} came for {transaction}")
            del self.abandoned[answered]

    async def _frame(self, timeout: float) -> bytes:
        """One whole Modbus/TCP frame from the PLC, reported to the tap as one segment."""
        try:
            header = await self.connection.receive_exactly(modbus.MBAP.size, timeout, report=False)
            length = int.from_bytes(header[4:6], "big")
            body = await self.connection.receive_exactly(length - 1, timeout, report=False)
        except asyncio.IncompleteReadError as error:
            where = "in the middle of an answer" if error.partial else "before answering"
            raise PeerClosed(f"the PLC closed the connection {where}") from error
        return self.connection.received(header + body)


def _unanswered(request: modbus.Request) -> bool:
    """Force Listen Only Mode is never answered (Modbus over serial line, 6.8.1.4)."""
    return (
        request.function_code == modbus.DIAGNOSTICS and request.sub_function == modbus.FORCE_LISTEN_ONLY_MODE
    )


async def mqtt_session(connection: LiveConnection, client_id: str) -> None:
    """CONNECT and wait for an accepting CONNACK; PlantwardenError if the broker refuses."""
    await connection.send(mqtt.connect(client_id))
    answer = await connection.receive_exactly(4)
    if answer[0] >> 4 != mqtt.CONNACK or answer[3] != 0:
        raise PlantwardenError(f"the MQTT broker refused {client_id} (CONNACK {answer.hex()})")


async def http_exchange(connection: LiveConnection, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send an HTTP/1.1 request and read the answer: status, headers (lower-case names), body."""
    await connection.send(request)
    head = (await connection.receive_until(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), value.strip())
    length = int(headers.get("content-length", "0"))
    body = await connection.receive_exactly(length) if length else b""
    return int(status_line.split()[1]), headers, body
