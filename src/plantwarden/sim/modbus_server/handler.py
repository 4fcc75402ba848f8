"""The per-connection request handler: Modbus/TCP framing, and every request answered in order.

pymodbus's own handler (3.16.1) loses requests: it takes one request per packet (the next waits
for more data), a reply it sends drops whatever else was received, a buffer past 264 bytes (about
twenty pipelined reads) is dropped whole, a frame with another protocol id stops the connection
for good, and a 1-byte request PDU followed by 1 byte of the next frame eats that byte. This
handler frames the stream itself: each complete frame is decoded (by pymodbus's decoder) and
answered through `respond`, in the order received, and nothing of a frame stays behind once it
is taken, whether it was answered or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from plantwarden.sim.modbus_server._pymodbus import (
    ExcCodes,
    ExceptionResponse,
    ModbusPDU,
    ModbusTcpServer,
    ServerRequestHandler,
    untyped,
)
from plantwarden.sim.modbus_server.datastore import ClientAddress, PlcDatastore

log = logging.getLogger(__name__)

Respond = Callable[[ModbusPDU, ClientAddress | None], Awaitable[ModbusPDU | None]]
"""`respond(request, client)`: the answer to a request, or None to answer nothing."""

HEADER_SIZE = 6
"""Transaction id, protocol id and length: the MBAP bytes the length field does not count."""
LENGTHS = range(2, 255)
"""The length fields a Modbus/TCP frame can have: the unit id and a 1-253 byte PDU."""


class UndecodableRequest(ModbusPDU):
    """A complete frame whose function code (or data) pymodbus cannot decode."""


class PlcRequestHandler(ServerRequestHandler):
    """One client connection of a `PlcModbusServer`.

    A frame with another protocol id than 0 (not Modbus) is dropped without an answer; a length
    field that no Modbus/TCP frame has leaves no way to find the next frame, so the connection is
    closed.
    """

    server: PlcModbusServer
    _received = b""
    _turn: asyncio.Task[None] | None = None

    def data_received(self, data: bytes) -> None:
        self._received += data
        taken = self._take_requests(self._received)
        self._received = self._received[taken:]

    def _take_requests(self, data: bytes) -> int:
        """Take every complete frame at the start of `data`; how many bytes they make."""
        taken = 0
        while len(data) - taken >= HEADER_SIZE:
            length = int.from_bytes(data[taken + 4 : taken + 6], "big")
            if length not in LENGTHS:
                log.info("a Modbus/TCP frame of length %d: closing the connection", length)
                self.close()
                return len(data)
            end = taken + HEADER_SIZE + length
            if end > len(data):
                break
            self._take_request(data[taken:end])
            taken = end
        return taken

    def _take_request(self, frame: bytes) -> None:
        if frame[2:4] != b"\x00\x00":
            log.debug("a frame with protocol id %d is not Modbus: dropped", int.from_bytes(frame[2:4], "big"))
            return
        request: ModbusPDU | None = self.framer.decoder.decode(frame[7:])
        if request is None:
            request = UndecodableRequest()
            request.function_code = frame[7]
        request.dev_id = frame[6]
        request.transaction_id = int.from_bytes(frame[0:2], "big")
        self._turn = self.loop.create_task(self._answer(self._turn, request))

    async def _answer(self, previous: asyncio.Task[None] | None, request: ModbusPDU) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        peer = self.transport.get_extra_info("peername") if self.transport else None
        try:
            response = await self.server.respond(request, peer)
        except Exception:
            log.exception("failed to answer %s", request)
            response = ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)
        if response is None or not self.transport:
            return
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        self.pdu_send(response)


class PlcModbusServer(ModbusTcpServer):
    """pymodbus's Modbus/TCP server, with a `PlcRequestHandler` per connection."""

    def __init__(self, datastore: PlcDatastore, address: tuple[str, int], respond: Respond) -> None:
        super().__init__(datastore, address=address)
        self.respond = respond

    def callback_new_connection(self) -> PlcRequestHandler:
        handler: PlcRequestHandler = untyped(PlcRequestHandler)(self, None, None, None)
        return handler
