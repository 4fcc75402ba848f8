"""One client connection: read ADUs, decide each, forward what is allowed, answer, record.

A session starts only once its client is verified (`identity.py`). Each ADU is decoded by the
sensor's exact decoder, routed by its unit id to a PLC, and decided (`decide.py`); a refusal is
answered with the exception code of its verdict, recorded, and reported to the denial alerts; an
allowed request goes through the PLC's upstream pool, and the PLC's answer goes back under the
client's own transaction id. A stream that loses its framing is dropped (and recorded); so is a
session the gateway closes (revoked certificate, quarantined subject, expired certificate).
Requests of one client are handled in order, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from plantwarden.core.records.schema import Operation as RecordOperation
from plantwarden.gateway.alerts import Denial
from plantwarden.gateway.decide import FAIL_CLOSED, Verdict
from plantwarden.gateway.frames import (
    GATEWAY_PATH_UNAVAILABLE,
    GATEWAY_TARGET_FAILED,
    ILLEGAL_FUNCTION,
    Adu,
    AduReader,
    FrameRefused,
    exception_response,
    response_adu,
)
from plantwarden.gateway.identity import Client
from plantwarden.gateway.records import Endpoints
from plantwarden.gateway.upstream import UpstreamError
from plantwarden.protocols.modbus.exact import decode
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.messages import ModbusMessage

if TYPE_CHECKING:
    from plantwarden.gateway.server import Gateway

log = logging.getLogger(__name__)
NO_ROUTE = "gateway:no-route"
FRAME = "gateway:frame"
CLOSED = "gateway:session-closed"
UPSTREAM = "gateway:upstream"
_HIGH_WATER = 256 * 1024

RECORD_OPERATION = {
    Operation.NONE: RecordOperation.MALFORMED,
    Operation.READ: RecordOperation.READ,
    Operation.WRITE: RecordOperation.WRITE,
    Operation.PROGRAM: RecordOperation.PROGRAM,
    Operation.CONTROL: RecordOperation.CONTROL,
    Operation.DIAGNOSTIC: RecordOperation.DIAGNOSTIC,
    Operation.IDENTIFY: RecordOperation.IDENTIFY,
    Operation.OTHER: RecordOperation.OTHER,
}


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a record says about the request (from the decoded message)."""

    operation: int
    function: int
    unit: int
    address: int
    quantity: int
    value: float


class Session:
    """The loop of one verified client on one connection."""

    def __init__(
        self,
        gateway: Gateway,
        client: Client,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ends: Endpoints,
    ) -> None:
        self.gateway, self.client, self.reader, self.writer, self.ends = gateway, client, reader, writer, ends
        self.closed = False
        self.requests = 0
        self.source = gateway.peer_text(ends)
        """The client's address: requests are rate-limited per address, whatever the role."""

    async def run(self) -> None:
        """Serve requests until the client leaves, the stream breaks or the gateway closes it."""
        settings = self.gateway.config
        adus = AduReader(
            self.reader, frame_timeout=settings.frame_timeout, idle_timeout=settings.idle_timeout
        )
        try:
            while not self.closed:
                item = await adus.read()
                if item is None or self.closed:
                    return
                if isinstance(item, FrameRefused):
                    self._record_broken(item)
                    return
                await self._handle(item)
        except (ConnectionError, OSError) as error:
            log.debug("session of %s ended: %s", self.client, error)
        finally:
            adus.close()
            self.closed = True
            self.writer.close()

    def close(self, rule: str, reason: str) -> None:
        """End the session now (from the gateway's supervisor), recording why."""
        if self.closed:
            return
        self.closed = True
        self._record_event(rule, reason, RecordOperation.OTHER)
        self.writer.close()

    async def _handle(self, adu: Adu) -> None:
        started = time.perf_counter_ns()
        gateway = self.gateway
        message = decode(adu.raw, False)
        asked = _asked(message)
        state = gateway.state
        target = None if state is None else state.route(adu.unit_id)
        if target is None:
            code = ILLEGAL_FUNCTION if state is None else GATEWAY_PATH_UNAVAILABLE
            rule = FAIL_CLOSED if state is None else NO_ROUTE
            reason = "the gateway holds no policy snapshot yet" if state is None else (
                f"no PLC behind the gateway answers to unit id {adu.unit_id}")  # fmt: skip
            verdict = Verdict(False, rule, reason, code, message.operation)
        else:
            wall = datetime.now(UTC)
            verdict = gateway.decider.decide(
                self.client.subject,
                self.client.role,
                target,
                message,
                wall,
                time.monotonic(),
                source=self.source,
            )
        asset = "" if target is None else target.asset
        if not verdict.allowed:
            self._send(
                exception_response(adu.transaction_id, adu.unit_id, adu.pdu[0], verdict.exception_code)
            )
            self._record(asked, verdict.exception_code, -1, verdict, asset)
            gateway.denied(self._denial(verdict, asked, asset, "" if target is None else target.zone))
            await self._drain_if_full()  # a client that sends refused requests and never reads
            return
        assert target is not None
        try:
            answer = await gateway.pool(target).request(adu.unit_id, adu.pdu)
        except UpstreamError as error:
            if self.closed:
                return
            self._send(exception_response(adu.transaction_id, adu.unit_id, adu.pdu[0], GATEWAY_TARGET_FAILED))
            failed = verdict._replace(rule=f"{UPSTREAM}:{error.reason}", reason=error.message)
            self._record(asked, -1, -1, failed, asset, allowed=True)
            await self._drain_if_full()
            return
        if self.closed:
            return  # closed while the PLC answered: the answer is not delivered
        self._send(response_adu(adu.transaction_id, adu.unit_id, answer))
        status = answer[1] if len(answer) > 1 and answer[0] & 0x80 else 0
        self._record(asked, status, time.perf_counter_ns() - started, verdict, asset)
        await self._drain_if_full()

    async def _drain_if_full(self) -> None:
        """Wait for a client that does not read its answers. Asking a TLS transport its buffer size
        costs more than deciding, and an answer is at most 260 bytes: look every 16th request."""
        if not self.requests & 15 and self.writer.transport.get_write_buffer_size() > _HIGH_WATER:
            await self.writer.drain()

    def _send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def _record(
        self,
        asked: _Asked,
        status: int,
        response_ns: int,
        verdict: Verdict,
        asset: str,
        *,
        allowed: bool | None = None,
    ) -> None:
        self.requests += 1
        self.gateway.record(
            time.time_ns(),
            self.ends,
            operation=asked.operation,
            function=asked.function,
            unit=asked.unit,
            address=asked.address,
            quantity=asked.quantity,
            status=status,
            value=asked.value,
            response_ns=response_ns,
            allowed=verdict.allowed if allowed is None else allowed,
            rule=verdict.rule,
            reason=verdict.reason,
            policy_version=self.gateway.decider.version,
            subject=str(self.client.subject),
            device=self.client.device,
            asset=asset,
        )

    def _record_event(self, rule: str, reason: str, operation: int) -> None:
        self.gateway.record(
            time.time_ns(), self.ends, operation=operation, function=-1, unit=-1, address=-1, quantity=0,
            status=-2, value=math.nan, response_ns=-1, allowed=False, rule=rule, reason=reason,
            policy_version=self.gateway.decider.version, subject=str(self.client.subject),
            device=self.client.device, asset="",
        )  # fmt: skip

    def _record_broken(self, refused: FrameRefused) -> None:
        reason = (
            f"the stream lost its framing ({refused.problem.value}, {len(refused.raw)} bytes);"
            " the connection was dropped"
        )
        self._record_event(f"{FRAME}:{refused.problem.value}", reason, RecordOperation.MALFORMED)
        denial = Denial(self.ends.site, "", "", str(self.client.subject), self.client.device,
                        self.gateway.peer_text(self.ends), f"{FRAME}:{refused.problem.value}", reason, -1, -1,
                        time.time_ns())  # fmt: skip
        self.gateway.denied(denial)

    def _denial(self, verdict: Verdict, asked: _Asked, asset: str, zone: str) -> Denial:
        return Denial(
            self.ends.site, zone, asset, str(self.client.subject), self.client.device,
            self.gateway.peer_text(self.ends), verdict.rule, verdict.reason, asked.function, asked.address,
            time.time_ns(),
        )  # fmt: skip


def _asked(message: ModbusMessage) -> _Asked:
    operation = RECORD_OPERATION.get(message.operation, RecordOperation.OTHER)
    if message.finding != ModbusFinding.OK:
        operation = RecordOperation.MALFORMED
    address = message.write_address if message.function_code == 23 else message.address
    value = float(message.values[0]) if message.values else math.nan
    return _Asked(int(operation), message.function_code, message.unit_id, address, message.quantity, value)
