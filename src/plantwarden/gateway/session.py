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
    Framer,
    FrameRefused,
    exception_response,
    response_adu,
)
from plantwarden.gateway.identity import Client
from plantwarden.gateway.link import HIGH_WATER, Link
from plantwarden.gateway.records import Endpoints
from plantwarden.gateway.upstream import Submitted, UpstreamError, UpstreamPool
from plantwarden.protocols.modbus.exact import decode
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.messages import ModbusMessage

if TYPE_CHECKING:
    from plantwarden.gateway.server import Gateway

log = logging.getLogger(__name__)
SLICE = 32
"""ADUs of one client handled in one go before the event loop serves the others."""
NO_ROUTE = "gateway:no-route"
FRAME = "gateway:frame"
CLOSED = "gateway:session-closed"
UPSTREAM = "gateway:upstream"

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
class _AtPlc:
    """A request sent to the PLC: what its answer and its record need."""

    adu: Adu
    asked: _Asked
    verdict: Verdict
    asset: str
    started: int
    pool: UpstreamPool


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
        link: Link,
        ends: Endpoints,
    ) -> None:
        self.gateway, self.client, self.link, self.ends = gateway, client, link, ends
        self.closed = False
        self.requests = 0
        self.source = gateway.peer_text(ends)
        """The client's address: requests are rate-limited per address, whatever the role."""
        settings = gateway.config
        self._framer = Framer(frame_timeout=settings.frame_timeout, idle_timeout=settings.idle_timeout)
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._at_plc: _AtPlc | None = None
        """The request the PLC is answering (the next ADU waits for its answer)."""
        self._continuing = False
        """A slice of ADUs was handled and the next one is due (`_go_on`)."""
        self._pool_request: Submitted | None = None
        """The request at the PLC as its pool knows it (withdrawn when the session ends)."""
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    async def run(self) -> None:
        """Serve requests until the client leaves, the stream breaks or the gateway closes it."""
        link = self.link
        link.on_data = link.on_drained = self._feed
        try:
            self._feed()
            await self._ended
        finally:
            self._end()

    def close(self, rule: str, reason: str) -> None:
        """End the session now (from the gateway's supervisor), recording why."""
        if self.closed:
            return
        self._record_event(rule, reason, RecordOperation.OTHER)
        self._end()

    def _end(self) -> None:
        self.closed = True
        if self._at_plc is not None:  # still in line (all the PLC's connections busy): never sent
            self._at_plc.pool.withdraw(self._pool_request)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.detach()
        self.link.close()
        if not self._ended.done():
            self._ended.set_result(None)

    # --- the stream ---------------------------------------------------------------------------

    def _feed(self) -> None:
        """Handle the whole ADUs that arrived, one at a time (none while the PLC answers one, none
        while the client leaves its answers unread), at most `SLICE` in one go (the loop serves the
        other clients in between), then wait: for more bytes (within the frame or idle timeout),
        the PLC, or a client that reads."""
        self._continuing = False
        link, framer = self.link, self._framer
        buffer = link.incoming
        now = self._loop.time()
        handled = 0
        while self._at_plc is None and not self.closed and link.get_write_buffer_size() <= HIGH_WATER:
            if handled == SLICE:
                self._continuing = True
                self._loop.call_soon(self._go_on)
                return
            item = framer.take(buffer, now)
            if item is None:
                break
            if isinstance(item, FrameRefused):
                self._record_broken(item)
                self._end()
                return
            handled += 1
            try:
                self._handle(item)
            except Exception:  # a bug must not leave the client hanging: it loses the session
                log.exception("the session of %s failed on a request", self.client)
                self._end()
                return
        if self.closed:
            return
        backed_up = len(buffer) >= HIGH_WATER or link.get_write_buffer_size() > HIGH_WATER
        if self._at_plc is not None:
            self._deadline = None  # the PLC's answer comes within the request timeout
        elif link.eof or link.error is not None:
            if link.error is None and link.get_write_buffer_size() > HIGH_WATER:
                # it stopped sending, not reading: the rest when it has read (on_drained), or it
                # ends after the idle timeout
                self._deadline = framer.idle_deadline(now)
                if self._deadline is not None:
                    self._arm(self._deadline)
                return
            refused = framer.ended(buffer)
            if refused is not None:
                self._record_broken(refused)
            elif link.error is not None:
                log.debug("session of %s ended: %s", self.client, link.error)
            self._end()
            return
        else:
            if backed_up:  # the rest of a partial ADU waits in the kernel because we stopped reading
                framer.forgive()
            self._deadline = framer.idle_deadline(now) if backed_up else framer.deadline(buffer, now)
            if self._deadline is not None:
                self._arm(self._deadline)
        if backed_up:
            link.pause_reading()  # a client that sends faster than it is served, or does not read
        else:
            link.resume_reading()

    def _go_on(self) -> None:
        if self._continuing and not self.closed:
            self._feed()

    def _arm(self, deadline: float) -> None:
        # One timer per session, armed lazily: when it fires before the deadline (which moved
        # on), it is armed again at the deadline.
        if self._timer is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed:
            return
        if self._loop.time() < deadline:
            self._arm(deadline)
            return
        link = self.link
        # a client that left its answers unread that long is idle, not a slow sender
        unread = link.get_write_buffer_size() > HIGH_WATER
        refused = None if unread else self._framer.expired(link.incoming)
        if refused is not None:
            self._record_broken(refused)
        self._end()  # a slow sender; or an idle client, which ends cleanly

    # --- one request --------------------------------------------------------------------------

    def _handle(self, adu: Adu) -> None:
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
            busy = gateway.decider.source_refusal(self.source, time.monotonic(), message.operation)
            verdict = busy or Verdict(False, rule, reason, code, message.operation)
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
            return
        assert target is not None
        pool = gateway.pool(target)
        self._at_plc = _AtPlc(adu, asked, verdict, asset, started, pool)
        self._pool_request = pool.submit(adu.unit_id, adu.pdu, self._answered)

    def _answered(self, answer: bytes | UpstreamError) -> None:
        """The PLC's answer (or why there is none) to the request at the PLC: to the client."""
        at_plc, self._at_plc, self._pool_request = self._at_plc, None, None
        if at_plc is None or self.closed:
            return  # closed while the PLC answered: the answer is not delivered
        adu, asked, verdict = at_plc.adu, at_plc.asked, at_plc.verdict
        if isinstance(answer, UpstreamError):
            self._send(exception_response(adu.transaction_id, adu.unit_id, adu.pdu[0], GATEWAY_TARGET_FAILED))
            failed = verdict._replace(rule=f"{UPSTREAM}:{answer.reason}", reason=answer.message)
            self._record(asked, -1, -1, failed, at_plc.asset, allowed=True)
        else:
            self._send(response_adu(adu.transaction_id, adu.unit_id, answer))
            status = answer[1] if len(answer) > 1 and answer[0] & 0x80 else 0
            self._record(asked, status, time.perf_counter_ns() - at_plc.started, verdict, at_plc.asset)
        self._feed()

    def _send(self, data: bytes) -> None:
        self.link.write(data)

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
                        self.source, f"{FRAME}:{refused.problem.value}", reason, -1, -1,
                        time.time_ns())  # fmt: skip
        self.gateway.denied(denial)

    def _denial(self, verdict: Verdict, asked: _Asked, asset: str, zone: str) -> Denial:
        return Denial(
            self.ends.site, zone, asset, str(self.client.subject), self.client.device,
            self.source, verdict.rule, verdict.reason, asked.function, asked.address,
            time.time_ns(),
        )  # fmt: skip


def _asked(message: ModbusMessage) -> _Asked:
    operation = RECORD_OPERATION.get(message.operation, RecordOperation.OTHER)
    if message.finding != ModbusFinding.OK:
        operation = RecordOperation.MALFORMED
    address = message.write_address if message.function_code == 23 else message.address
    value = float(message.values[0]) if message.values else math.nan
    return _Asked(int(operation), message.function_code, message.unit_id, address, message.quantity, value)
