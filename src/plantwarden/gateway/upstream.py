"""A bounded pool of Modbus/TCP connections to one PLC, shared by every client of the gateway.

Many PLCs accept only a few TCP connections (often 2 to 8, shared with the HMIs and the
engineering station), so the gateway never opens one per client: at most `size` connections,
opened when first needed and kept. Requests from all clients are multiplexed over them: each gets
a fresh transaction id on the connection it is sent on (a 16-bit counter per connection that
skips ids still in flight), several may be in flight on one connection (pipelining), and answers
are matched by transaction id, since a PLC (or a serial gateway behind it) may answer out of order.

Not every server takes pipelined requests: pymodbus's own server (3.16.1) loses all but the first
request of a packet, and many small PLCs handle one transaction at a time. For them,
`pipeline_depth=1` keeps one request in flight per connection; the others wait, in the order
they came, for a connection with room (within their request timeout).

An answer is only handed to the request it belongs to: protocol id 0, a known transaction id,
the request's unit id and function code (or its exception form). Anything else is dropped and
counted; the request it might have been meant for keeps waiting and times out, because a wrong
answer forwarded to a client is worse than none. A length field no Modbus/TCP frame has leaves no
way to find the next frame, so the connection is closed.

This sits on the gateway's latency path, so a request costs one future, one heap entry and one
write: no task and no timer per request (one timer per pool, armed at the earliest deadline, expires
what is due). Each connection has one task, which reads its answers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import struct
from typing import Literal

from plantwarden.core.errors import InvalidInput, PlantwardenError

Reason = Literal["timeout", "unavailable", "closed"]

MBAP = struct.Struct(">HHHB")
"""Transaction id, protocol id, length (of what follows it), unit id."""
ANSWER_LENGTHS = range(2, 255)
"""The length fields a Modbus/TCP frame can have: the unit id and a 1-253 byte PDU."""
MAX_PDU = 253
BACKOFF = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Seconds before a connection attempt, by how many failures came in a row since the last answer:
the first reconnect is immediate (a PLC may close idle connections), then it slows down."""
WRITE_BUFFER_LIMIT = 64 * 1024
"""Above this many unsent bytes a request waits for the PLC to read (it is not keeping up)."""
READ_CHUNK = 64 * 1024
"""The most bytes one read of a connection takes (every whole answer in them is handed over)."""


class UpstreamError(PlantwardenError):
    """A request to the PLC got no answer: `reason` says why.

    - "timeout": no answer within the request timeout (the PLC may still run the request);
    - "unavailable": no connection could be opened, or the connection failed while it waited;
    - "closed": the pool was closed.
    The gateway answers its client with exception 0x0B (gateway target device failed to respond).
    """

    code = "upstream_error"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason: Reason = reason


Waiting = tuple["asyncio.Future[bytes]", int, int]
"""A request in flight: its future, unit id and function code."""


class _Connection:
    """One TCP connection to the PLC and the requests in flight on it, by transaction id."""

    __slots__ = ("alive", "answered", "last_id", "pending", "reader", "reading", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, Waiting] = {}
        self.last_id = 0
        self.reading: asyncio.Task[None] | None = None
        self.alive = True
        self.answered = False

    def next_id(self) -> int:
        """A transaction id not in flight on this connection (the caller checked one is free)."""
        transaction_id = (self.last_id + 1) & 0xFFFF
        while transaction_id in self.pending:
            transaction_id = (transaction_id + 1) & 0xFFFF
        self.last_id = transaction_id
        return transaction_id


class UpstreamPool:
    """At most `size` connections to the PLC at `host`:`port`, shared by every request.

    `connect_timeout` bounds one connection attempt; `request_timeout` bounds the wait for an
    answer (and for room on a connection, when every one has `pipeline_depth` requests in flight;
    None: no limit). `stats` counts requests, answers, timeouts, unavailable
    (requests that failed so), dropped (answers no request waits for), mismatched (answers with
    another unit id or function code than their request), malformed (frames with a length no
    Modbus/TCP frame has), connects, reconnects and in_flight_max (the most requests in flight at
    once, over all connections).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int = 2,
        connect_timeout: float = 3.0,
        request_timeout: float = 2.0,
        pipeline_depth: int | None = None,
    ) -> None:
        if size < 1:
            raise InvalidInput(f"an upstream pool needs at least one connection, not size={size}")
        if connect_timeout <= 0 or request_timeout <= 0:
            raise InvalidInput(
                f"upstream timeouts must be positive (connect_timeout={connect_timeout}, "
                f"request_timeout={request_timeout})"
            )
        if pipeline_depth is not None and not 1 <= pipeline_depth <= 0x10000:
            raise InvalidInput(f"pipeline_depth must be 1-65536 or None (no limit), not {pipeline_depth}")
        self.host = host
        self.port = port
        self.size = size
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.pipeline_depth = pipeline_depth
        self._depth = pipeline_depth or 0x10000  # never more than the transaction ids there are
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "requests",
                "answers",
                "timeouts",
                "unavailable",
                "dropped",
                "mismatched",
                "malformed",
                "connects",
                "reconnects",
                "in_flight_max",
            ),
            0,
        )
        self._open: list[_Connection] = []
        self._opening: set[asyncio.Task[_Connection]] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._in_flight = 0
        self._failures = 0  # connection failures in a row since the last answer: the backoff step
        self._lost = 0  # connections lost or attempts failed, not yet replaced: reconnects to count
        self._closed = False
        self._deadlines: list[tuple[float, int, asyncio.Future[bytes], int, int]] = []
        self._order = itertools.count()  # ties in the heap never compare futures
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    async def request(self, unit_id: int, pdu: bytes) -> bytes:
        """Send one request PDU (function code + data) to `unit_id`; its answer PDU, which may be an
        exception answer (function code | 0x80). UpstreamError if there is none."""
        if not 0 <= unit_id <= 255 or not 1 <= len(pdu) <= MAX_PDU:
            raise InvalidInput(
                f"a Modbus request needs a unit id 0-255 and a 1-{MAX_PDU} byte PDU, "
                f"not unit id {unit_id} and {len(pdu)} bytes"
            )
        if self._closed:
            raise UpstreamError("closed", f"the upstream pool to {self.where} is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        connection = None if self._waiters else self._pick()  # no overtaking requests that wait
        if connection is None:
            connection, deadline = await self._connection(deadline)
        future: asyncio.Future[bytes] = loop.create_future()
        transaction_id = connection.next_id()
        waiting = (future, unit_id, pdu[0])
        connection.pending[transaction_id] = waiting
        stats = self.stats
        stats["requests"] += 1
        self._in_flight += 1
        if self._in_flight > stats["in_flight_max"]:
            stats["in_flight_max"] = self._in_flight
        heapq.heappush(self._deadlines, (deadline, next(self._order), future, unit_id, pdu[0]))
        if self._timer is None or self._timer_at > deadline:
            self._arm(loop, deadline)
        try:
            writer = connection.writer
            writer.write(MBAP.pack(transaction_id, 0, len(pdu) + 1, unit_id) + pdu)
            if writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                await writer.drain()
            return await future
        except (ConnectionError, OSError) as error:  # from drain: the connection failed meanwhile
            self._fail(connection, f"writing to {self.where} failed: {error}")
            raise UpstreamError("unavailable", f"writing to {self.where} failed: {error}") from error
        finally:
            if not future.done():
                future.cancel()  # left (cancelled, failed write): the sweep skips it
            self._in_flight -= 1
            deadlines = self._deadlines
            while deadlines and deadlines[0][2].done():  # the oldest are answered: forget them now
                heapq.heappop(deadlines)
            if connection.pending.get(transaction_id) is waiting:
                del connection.pending[transaction_id]  # forgotten: a late answer is dropped
            if self._waiters:
                self._wake()

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire the requests whose deadline passed (answered ones are only forgotten); arm the
        timer at the next deadline of a request still waiting."""
        self._timer = None
        deadlines, now = self._deadlines, loop.time()
        while deadlines:
            deadline, _, future, unit_id, function_code = deadlines[0]
            if future.done():
                heapq.heappop(deadlines)
            elif deadline <= now:
                heapq.heappop(deadlines)
                self._expire(future, unit_id, function_code)
            else:
                self._arm(loop, deadline)
                return

    def _expire(self, future: asyncio.Future[bytes], unit_id: int, function_code: int) -> None:
        if future.done():
            return
        self.stats["timeouts"] += 1
        future.set_exception(
            UpstreamError(
                "timeout",
                f"the PLC at {self.where} did not answer function code {function_code} for unit id "
                f"{unit_id} within {self.request_timeout} s",
            )
        )

    def _pick(self) -> _Connection | None:
        """The open connection with the fewest requests in flight, or None when another one may be
        opened (a request waits for an idle connection rather than behind another request) or
        every connection has `pipeline_depth` requests in flight."""
        best: _Connection | None = None
        for connection in self._open:
            load = len(connection.pending)
            if load == 0:
                return connection
            if best is None or load < len(best.pending):
                best = connection
        if best is None or len(self._open) + len(self._opening) < self.size:
            return None
        return best if len(best.pending) < self._depth else None

    async def _connection(self, deadline: float) -> tuple[_Connection, float]:
        """A connection with room for one more request, and the request's deadline: a new one
        (then the deadline starts again: connecting has its own timeout); or, when every one has
        `pipeline_depth` requests in flight, the first with room again, in the order requests came."""
        while True:
            if self._closed:
                raise UpstreamError("closed", f"the upstream pool to {self.where} is closed")
            if len(self._open) + len(self._opening) < self.size:
                attempt = asyncio.get_running_loop().create_task(self._connect())
                self._opening.add(attempt)
                attempt.add_done_callback(self._attempted)
                await self._attempt(attempt)
                deadline = asyncio.get_running_loop().time() + self.request_timeout
            elif self._opening and not self._open:
                await self._attempt(next(iter(self._opening)))
                deadline = asyncio.get_running_loop().time() + self.request_timeout
            else:
                await self._wait_for_room(deadline)
            connection = self._pick()
            if connection is not None:
                return connection, deadline

    async def _wait_for_room(self, deadline: float) -> None:
        """Wait in line until `_wake` says a connection has room (or changed)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        woken = False
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
            woken = True
        except TimeoutError:
            self.stats["timeouts"] += 1
            raise UpstreamError(
                "timeout",
                f"no connection to the PLC at {self.where} had room for another request within "
                f"{self.request_timeout} s (pipeline_depth={self.pipeline_depth}, size={self.size})",
            ) from None
        finally:
            # A woken waiter stays in line until it runs, so that no newcomer takes its room.
            if self._waiters and self._waiters[0] is waiter:
                self._waiters.popleft()
            else:
                self._waiters.remove(waiter)
            if not woken and waiter.done() and not waiter.cancelled():
                self._wake()  # woken but leaving without the room: it goes to the next in line

    def _wake(self, every: bool = False) -> None:
        """Tell the first request in line that is not told yet (or all of them) to look again."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                if not every:
                    return

    async def _attempt(self, attempt: asyncio.Task[_Connection]) -> None:
        # asyncio.wait, not shield or await: a waiter's cancellation must not cancel the attempt
        # others wait for, and close() cancelling the attempt is reported to them as "closed".
        await asyncio.wait([attempt])
        if attempt.cancelled():
            raise UpstreamError("closed", f"the upstream pool to {self.where} is closed")
        error = attempt.exception()
        if error is not None:
            if isinstance(error, UpstreamError) and error.reason == "unavailable":
                self.stats["unavailable"] += 1
            raise error

    def _attempted(self, attempt: asyncio.Task[_Connection]) -> None:
        self._opening.discard(attempt)
        self._wake(every=True)  # a new connection has room; a failed one leaves room to retry
        if not attempt.cancelled():
            attempt.exception()  # retrieved, in case every request that waited for it was cancelled

    async def _connect(self) -> _Connection:
        delay = BACKOFF[min(self._failures, len(BACKOFF) - 1)]
        if delay:
            await asyncio.sleep(delay)
        if self._lost:
            self._lost -= 1
            self.stats["reconnects"] += 1
        self.stats["connects"] += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (TimeoutError, OSError) as error:
            self._failures += 1
            self._lost += 1
            cause = "timed out" if isinstance(error, TimeoutError) else str(error)
            raise UpstreamError(
                "unavailable", f"cannot connect to the PLC at {self.where}: {cause}"
            ) from error
        connection = _Connection(reader, writer)
        if self._closed:  # close() ran while the connection was being opened
            writer.close()
            raise UpstreamError("closed", f"the upstream pool to {self.where} is closed")
        connection.reading = asyncio.get_running_loop().create_task(self._read_answers(connection))
        self._open.append(connection)
        return connection

    async def _read_answers(self, connection: _Connection) -> None:
        # One read takes whatever arrived (often one answer, several when pipelined), and every
        # whole frame in it is answered at once: one await per read, not two per frame.
        reader = connection.reader
        buffer = bytearray()
        problem = ""
        try:
            while not problem:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    problem = f"the PLC at {self.where} closed the connection"
                    break
                buffer += chunk
                while len(buffer) >= MBAP.size:
                    transaction_id, protocol_id, length, unit_id = MBAP.unpack_from(buffer)
                    if length not in ANSWER_LENGTHS:
                        self.stats["malformed"] += 1
                        problem = (
                            f"the PLC at {self.where} sent a frame of length {length}: no Modbus/TCP frame"
                        )
                        break
                    end = MBAP.size - 1 + length
                    if len(buffer) < end:
                        break
                    pdu = bytes(buffer[MBAP.size : end])
                    del buffer[:end]
                    self._answer(connection, transaction_id, protocol_id, unit_id, pdu)
        except OSError as error:
            problem = f"the connection to the PLC at {self.where} failed: {error}"
        self._fail(connection, problem)

    def _answer(
        self, connection: _Connection, transaction_id: int, protocol_id: int, unit_id: int, pdu: bytes
    ) -> None:
        waiting = connection.pending.get(transaction_id)
        if waiting is None or protocol_id != 0 or waiting[0].done():
            self.stats["dropped"] += 1
            return
        future, expected_unit, function_code = waiting
        if unit_id != expected_unit or pdu[0] & 0x7F != function_code:
            self.stats["mismatched"] += 1
            return
        del connection.pending[transaction_id]
        connection.answered = True
        self._failures = 0
        self.stats["answers"] += 1
        future.set_result(pdu)

    def _fail(self, connection: _Connection, problem: str) -> None:
        """Close a connection that failed; what was in flight on it fails as "unavailable"."""
        if not connection.alive:
            return
        connection.alive = False
        self._open.remove(connection)
        if not connection.answered:  # a PLC may close a connection it served: reconnect at once
            self._failures += 1
        self._lost += 1
        connection.writer.close()
        self._abandon(connection, "unavailable", problem)
        self._wake(every=True)

    def _abandon(self, connection: _Connection, reason: Reason, problem: str) -> None:
        pending, connection.pending = connection.pending, {}
        for future, _, _ in pending.values():
            if not future.done():
                if reason == "unavailable":
                    self.stats["unavailable"] += 1
                future.set_exception(UpstreamError(reason, problem))

    async def close(self) -> None:
        """Close every connection; requests in flight or waiting for a connection fail as "closed"."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake(every=True)
        for attempt in list(self._opening):
            attempt.cancel()
        connections, self._open = self._open, []
        problem = f"the upstream pool to {self.where} is closed"
        readers = []
        for connection in connections:
            connection.alive = False
            self._abandon(connection, "closed", problem)
            connection.writer.close()
            if connection.reading is not None:
                connection.reading.cancel()
                readers.append(connection.reading)
        for connection in connections:
            with contextlib.suppress(OSError):
                await connection.writer.wait_closed()
        await asyncio.gather(*readers, *self._opening, return_exceptions=True)
