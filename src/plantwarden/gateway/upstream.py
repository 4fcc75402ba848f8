"""A bounded pool of Modbus/TCP connections to one PLC, shared by every client of the gateway.

Many PLCs accept only a few TCP connections (often 2 to 8, shared with the HMIs and the
engineering station), so the gateway never opens one per client: at most `size` connections,
opened when first needed and kept. Requests from all clients are multiplexed over them: each gets
a fresh transaction id on the connection it is sent on (a 16-bit counter per connection that
skips ids still in flight), several may be in flight on one connection (pipelining), and answers
are matched by transaction id, since a PLC (or a serial gateway behind it) may answer out of order.

Not every server takes pipelined requests: pymodbus's own server (3.16.1) loses all but the first
request of a packet, and many small PLCs handle one transaction at a time. For them,
`pipeline_depth=1` keeps one request in flight per connection; the others wait in one line, first
come first sent, for a connection with room (within their request timeout).

An answer is only handed to the request it belongs to: protocol id 0, a known transaction id,
the request's unit id and function code (or its exception form). Anything else is dropped and
counted; the request it might have been meant for keeps waiting and times out, because a wrong
answer forwarded to a client is worse than none. A length field no Modbus/TCP frame has leaves no
way to find the next frame, so the connection is closed.

This sits on the gateway's latency path, so it is driven by callbacks: `submit` takes the function
to call with the answer, and a request costs one small object, one heap entry and one write: no
future, no task and no timer per request. One timer per pool, armed at the earliest deadline,
expires what is due (in flight or in line); each connection is an asyncio protocol whose
`data_received` hands every whole answer that arrived straight to its request's callback, in the
loop iteration that read it. `request` wraps `submit` in a future, for callers that await.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import math
import struct
from collections.abc import Callable
from typing import Literal, cast

from plantwarden.core.errors import InvalidInput, PlantwardenError

log = logging.getLogger(__name__)

Reason = Literal["timeout", "unavailable", "closed"]

MBAP = struct.Struct(">HHHB")
"""Transaction id, protocol id, length (of what follows it), unit id."""
HEADER = MBAP.size
ANSWER_LENGTHS = range(2, 255)
"""The length fields a Modbus/TCP frame can have: the unit id and a 1-253 byte PDU."""
MAX_PDU = 253
BACKOFF = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Seconds before a connection attempt, by how many failures came in a row since the last answer:
the first reconnect is immediate (a PLC may close idle connections), then it slows down."""
WRITE_BUFFER_LIMIT = 64 * 1024
"""Above this many unsent bytes on a connection the PLC is not keeping up: nothing more is sent on
it (requests wait in line, within their timeout) until its buffer is down to a quarter of it."""


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


Done = Callable[[bytes | UpstreamError], None]
"""What `submit` calls, once, with the answer PDU or the UpstreamError."""


class Submitted:
    """One request from `submit` until its callback is called (`finished`): in line while
    `connection` is None, then in flight on it under `transaction_id`. `deadline` is inf while it
    waits for a connection to open (connecting has its own timeout)."""

    __slots__ = (
        "connection",
        "deadline",
        "done",
        "finished",
        "function_code",
        "pdu",
        "transaction_id",
        "unit_id",
    )

    def __init__(self, done: Done, unit_id: int, pdu: bytes, deadline: float) -> None:
        self.done = done
        self.unit_id = unit_id
        self.pdu = pdu
        self.function_code = pdu[0]
        self.deadline = deadline
        self.finished = False
        self.connection: _Connection | None = None
        self.transaction_id = 0


class _Connection(asyncio.Protocol):
    """One TCP connection to the PLC (TCP_NODELAY, as asyncio sets it on every TCP transport) and the
    requests in flight on it, by transaction id. The transport calls it: it cuts the answers out of
    what arrives and hands them to the pool, says when the PLC stopped reading (`paused`) and when
    the transport is closed (`closed`)."""

    __slots__ = (
        "alive",
        "answered",
        "buffer",
        "closed",
        "last_id",
        "paused",
        "pending",
        "pool",
        "problem",
        "transport",
    )
    transport: asyncio.Transport

    def __init__(self, pool: UpstreamPool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.pending: dict[int, Submitted] = {}
        self.last_id = 0
        self.alive = False  # handed out: from when the pool takes it until it fails or is closed
        self.answered = False
        self.problem = ""  # why it failed
        self.buffer = bytearray()  # the start of a frame whose end has not arrived
        self.paused = False  # more than WRITE_BUFFER_LIMIT bytes unsent: no room for requests
        self.closed: asyncio.Future[None] = loop.create_future()

    def next_id(self) -> int:
        """A transaction id not in flight on this connection (the caller checked one is free)."""
        transaction_id = (self.last_id + 1) & 0xFFFF
        while transaction_id in self.pending:
            transaction_id = (transaction_id + 1) & 0xFFFF
        self.last_id = transaction_id
        return transaction_id

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_LIMIT)

    def data_received(self, data: bytes) -> None:
        # Every whole frame in what arrived (often one answer, several when pipelined) is handed over
        # at once; the start of the next one waits in the buffer for the rest.
        buffer = self.buffer
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        pool, size, start = self.pool, len(data), 0
        while size - start >= HEADER:
            transaction_id, protocol_id, length, unit_id = MBAP.unpack_from(data, start)
            if length not in ANSWER_LENGTHS:
                pool._malformed(self, length)
                return
            end = start + HEADER - 1 + length
            if end > size:
                break
            pool._answer(self, transaction_id, protocol_id, unit_id, data[start + HEADER : end])
            start = end
        if start < size:
            buffer += data[start:]

    def eof_received(self) -> None:
        self.pool._fail(self, f"the PLC at {self.pool.where} closed the connection")

    def connection_lost(self, exc: Exception | None) -> None:
        where = self.pool.where
        self.pool._fail(
            self,
            f"the PLC at {where} closed the connection"
            if exc is None
            else f"the connection to the PLC at {where} failed: {exc}",
        )
        self.pool._connections.discard(self)
        self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.alive and self.pool._queue:
            self.pool._dispatch()


class UpstreamPool:
    """At most `size` connections to the PLC at `host`:`port`, shared by every request.

    `connect_timeout` bounds one connection attempt; `request_timeout` bounds the wait for an
    answer (and for room on a connection, when every one has `pipeline_depth` requests in flight;
    None: no limit), from `submit` or, for a request that waited for a connection to open, from
    when it is sent on it. `stats` counts requests (sent), answers, timeouts (in flight or in
    line), unavailable (requests that failed so), dropped (answers no request waits for),
    mismatched (answers with another unit id or function code than their request), malformed
    (frames with a length no Modbus/TCP frame has), connects, reconnects and in_flight_max (the
    most requests in flight at once, over all connections).
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
        self._connections: set[_Connection] = set()  # handed out, their transport not closed yet
        self._opening: set[asyncio.Task[None]] = set()
        self._queue: collections.deque[Submitted] = collections.deque()  # in line, finished ones too
        self._in_flight = 0
        self._failures = 0  # connection failures in a row since the last answer: the backoff step
        self._lost = 0  # connections lost or attempts failed, not yet replaced: reconnects to count
        self._closed = False
        self._deadlines: list[tuple[float, int, Submitted]] = []  # finished or restarted: skipped
        self._order = itertools.count()  # ties in the heap never compare requests
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def submit(self, unit_id: int, pdu: bytes, done: Done) -> Submitted | None:
        """Send one request PDU (function code + data) to `unit_id`. `done` is called once, later
        (never from within `submit`), with the answer PDU, which may be an exception answer
        (function code | 0x80), or with the UpstreamError that says why there is none. A unit id or
        a PDU no Modbus request has is refused at once (InvalidInput). The request, for `withdraw`
        (None: the pool is closed, and `done` hears of it)."""
        return self._submit(unit_id, pdu, done)

    def withdraw(self, request: Submitted | None) -> None:
        """The caller of `submit` left (its client's session ended): a request still in line is
        never sent and its `done` never called. One already sent runs its course (the PLC may be
        executing it; its connection stays busy until it answers), and `done` hears of it."""
        if request is not None and not request.finished and request.connection is None:
            self._forget(request)

    async def request(self, unit_id: int, pdu: bytes) -> bytes:
        """`submit`, awaited: the answer PDU, or the UpstreamError raised. A caller that leaves
        (cancelled) is forgotten: the answer, if it comes, is dropped."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def done(answer: bytes | UpstreamError) -> None:
            if future.done():
                return
            if isinstance(answer, bytes):
                future.set_result(answer)
            else:
                future.set_exception(answer)

        request = self._submit(unit_id, pdu, done)
        try:
            return await future
        finally:
            if request is not None and not request.finished:
                self._forget(request)

    def _submit(self, unit_id: int, pdu: bytes, done: Done) -> Submitted | None:
        if not 0 <= unit_id <= 255 or not 1 <= len(pdu) <= MAX_PDU:
            raise InvalidInput(
                f"a Modbus request needs a unit id 0-255 and a 1-{MAX_PDU} byte PDU, "
                f"not unit id {unit_id} and {len(pdu)} bytes"
            )
        loop = asyncio.get_running_loop()
        if self._closed:
            closed = UpstreamError("closed", f"the upstream pool to {self.where} is closed")
            loop.call_soon(self._call, done, closed)
            return None
        deadline = loop.time() + self.request_timeout
        request = Submitted(done, unit_id, pdu, deadline)
        heapq.heappush(self._deadlines, (deadline, next(self._order), request))
        if self._timer is None or self._timer_at > deadline:
            self._arm(loop, deadline)
        connection = None if self._queue else self._pick()  # no overtaking requests in line
        if connection is None:
            self._queue.append(request)
            self._dispatch()
        else:
            self._send(connection, request)
        return request

    def _call(self, done: Done, outcome: bytes | UpstreamError) -> None:
        """Call a request's callback; one client's bug (it raises) must not break the pool."""
        try:
            done(outcome)
        except Exception:
            log.exception("a callback of the upstream pool to %s failed", self.where)

    def _settle(self, request: Submitted, outcome: bytes | UpstreamError) -> None:
        """Finish a request that is out of its connection's pending requests, and call it back."""
        request.finished = True
        if request.connection is not None:
            self._in_flight -= 1
        self._call(request.done, outcome)

    def _forget(self, request: Submitted) -> None:
        """A request whose caller left: it leaves the line (skipped there) or its connection (a late
        answer is dropped), and is never called back."""
        request.finished = True
        connection = request.connection
        if connection is not None:
            self._in_flight -= 1
            if connection.pending.get(request.transaction_id) is request:
                del connection.pending[request.transaction_id]
                if self._queue:
                    self._dispatch()

    def _pick(self) -> _Connection | None:
        """The open connection with the fewest requests in flight, or None when another one may be
        opened (a request waits for an idle connection rather than behind another request) or
        every connection has `pipeline_depth` requests in flight or is paused."""
        best: _Connection | None = None
        for connection in self._open:
            if connection.paused:
                continue
            load = len(connection.pending)
            if load == 0:
                return connection
            if best is None or load < len(best.pending):
                best = connection
        if best is None or len(self._open) + len(self._opening) < self.size:
            return None
        return best if len(best.pending) < self._depth else None

    def _send(self, connection: _Connection, request: Submitted) -> None:
        transaction_id = connection.next_id()
        connection.pending[transaction_id] = request
        request.connection = connection
        request.transaction_id = transaction_id
        stats = self.stats
        stats["requests"] += 1
        self._in_flight += 1
        if self._in_flight > stats["in_flight_max"]:
            stats["in_flight_max"] = self._in_flight
        pdu = request.pdu
        # A failed write does not raise: the transport closes, and connection_lost fails the
        # requests in flight, this one too.
        connection.transport.write(MBAP.pack(transaction_id, 0, len(pdu) + 1, request.unit_id) + pdu)

    def _dispatch(self, fresh: _Connection | None = None, deadline: float = 0.0) -> None:
        """Send what waits in line, in order, while a connection has room (what left the line is
        skipped); when none has, open one more if the pool may. A request sent on `fresh`, just
        opened, waited for it: its `deadline` starts now (connecting had its own timeout)."""
        queue = self._queue
        while queue:
            request = queue[0]
            if request.finished:
                queue.popleft()
                continue
            connection = self._pick()
            if connection is None:
                if len(self._open) + len(self._opening) < self.size and not self._closed:
                    attempt = asyncio.get_running_loop().create_task(self._connect())
                    self._opening.add(attempt)
                    attempt.add_done_callback(self._opening.discard)
                return
            queue.popleft()
            if connection is fresh and request.deadline != deadline:
                self._restart(request, deadline)
            self._send(connection, request)

    def _restart(self, request: Submitted, deadline: float) -> None:
        request.deadline = deadline  # the entry with the old one is skipped
        heapq.heappush(self._deadlines, (deadline, next(self._order), request))
        if self._timer is None or self._timer_at > deadline:
            self._arm(asyncio.get_running_loop(), deadline)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire the requests whose deadline passed (finished ones are only forgotten); arm the
        timer at the next deadline of a request still waiting. A request in line while no connection
        is open but one is being opened waits for it instead (connecting has its own timeout)."""
        self._timer = None
        deadlines, now = self._deadlines, loop.time()
        while deadlines:
            deadline, _, request = deadlines[0]
            if request.finished or request.deadline != deadline:
                heapq.heappop(deadlines)
            elif deadline <= now:
                heapq.heappop(deadlines)
                if request.connection is None and not self._open and self._opening:
                    request.deadline = math.inf  # restarted when a connection opens
                else:
                    self._expire(request)
            else:
                self._arm(loop, deadline)
                break
        if self._queue:
            self._dispatch()  # what timed out in flight left room

    def _expire(self, request: Submitted) -> None:
        self.stats["timeouts"] += 1
        connection = request.connection
        if connection is None:
            message = (
                f"no connection to the PLC at {self.where} had room for another request within "
                f"{self.request_timeout} s (pipeline_depth={self.pipeline_depth}, size={self.size})"
            )
        else:
            del connection.pending[request.transaction_id]  # forgotten: a late answer is dropped
            message = (
                f"the PLC at {self.where} did not answer function code {request.function_code} for "
                f"unit id {request.unit_id} within {self.request_timeout} s"
            )
        self._settle(request, UpstreamError("timeout", message))

    async def _connect(self) -> None:
        """One connection attempt, after the backoff. The new connection takes what waits in line;
        a failure fails what waits in line if no other connection is open or being opened."""
        delay = BACKOFF[min(self._failures, len(BACKOFF) - 1)]
        if delay:
            await asyncio.sleep(delay)
        if self._lost:
            self._lost -= 1
            self.stats["reconnects"] += 1
        self.stats["connects"] += 1
        loop = asyncio.get_running_loop()
        connection = _Connection(self, loop)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: connection, self.host, self.port)
        except (TimeoutError, OSError) as error:
            cause = "timed out" if isinstance(error, TimeoutError) else str(error)
            problem = f"cannot connect to the PLC at {self.where}: {cause}"
        else:
            if self._closed:  # close() ran while the connection was being opened
                connection.transport.abort()
                return
            # Failed before it was handed out (a PLC with no room closes at once)? asyncio's own
            # loop resumes this task before it reads, but nothing promises so: never hand it out.
            problem = connection.problem
        self._opening.discard(cast("asyncio.Task[None]", asyncio.current_task()))
        if problem:
            self._failures += 1
            self._lost += 1
            if not self._open and not self._opening:
                self._refuse_waiting(problem)
            return
        connection.alive = True
        self._open.append(connection)
        self._connections.add(connection)
        deadline = loop.time() + self.request_timeout
        self._dispatch(connection, deadline)
        for request in self._queue:
            if request.deadline == math.inf and not request.finished:
                self._restart(request, deadline)  # waited for a connection: now for room on one

    def _refuse_waiting(self, problem: str) -> None:
        waiting, self._queue = self._queue, collections.deque()
        for request in waiting:
            if not request.finished:
                self.stats["unavailable"] += 1
                self._settle(request, UpstreamError("unavailable", problem))

    def _answer(
        self, connection: _Connection, transaction_id: int, protocol_id: int, unit_id: int, pdu: bytes
    ) -> None:
        request = connection.pending.get(transaction_id)
        if request is None or protocol_id != 0:
            self.stats["dropped"] += 1
            return
        if unit_id != request.unit_id or pdu[0] & 0x7F != request.function_code:
            self.stats["mismatched"] += 1
            return
        del connection.pending[transaction_id]
        request.finished = True
        self._in_flight -= 1
        connection.answered = True
        self._failures = 0
        self.stats["answers"] += 1
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].finished:  # the oldest are answered: forget them now
            heapq.heappop(deadlines)
        if self._queue:
            self._dispatch()  # the room it leaves goes to the first in line, before anyone else
        try:
            request.done(pdu)
        except Exception:
            log.exception("a callback of the upstream pool to %s failed", self.where)

    def _malformed(self, connection: _Connection, length: int) -> None:
        self.stats["malformed"] += 1
        self._fail(
            connection, f"the PLC at {self.where} sent a frame of length {length}: no Modbus/TCP frame"
        )

    def _fail(self, connection: _Connection, problem: str) -> None:
        """Close a connection that failed; what was in flight on it fails as "unavailable", what
        waits in line goes to the other connections or to a new one."""
        connection.transport.abort()  # what is not sent yet never will be: no one waits for it
        if not connection.problem:
            connection.problem = problem
        if not connection.alive:  # failed already, closed by close(), or not handed out yet
            return
        connection.alive = False
        self._open.remove(connection)
        if not connection.answered:  # a PLC may close a connection it served: reconnect at once
            self._failures += 1
        self._lost += 1
        self._abandon(connection, "unavailable", problem)
        if self._queue:
            self._dispatch()

    def _abandon(self, connection: _Connection, reason: Reason, problem: str) -> None:
        pending, connection.pending = connection.pending, {}
        for request in pending.values():
            if reason == "unavailable":
                self.stats["unavailable"] += 1
            self._settle(request, UpstreamError(reason, problem))

    async def close(self) -> None:
        """Close every connection; requests in flight or in line fail as "closed"."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for attempt in list(self._opening):
            attempt.cancel()
        connections, self._open = self._open, []
        waiting, self._queue = self._queue, collections.deque()
        problem = f"the upstream pool to {self.where} is closed"
        for connection in connections:
            connection.alive = False
            connection.transport.abort()  # not close(): that waits for a PLC that may not read
            self._abandon(connection, "closed", problem)
        for request in waiting:
            if not request.finished:
                self._settle(request, UpstreamError("closed", problem))
        self._deadlines.clear()
        # abort() has the loop call connection_lost soon, whether the PLC is there or not.
        closing = [connection.closed for connection in self._connections]
        if closing:
            await asyncio.wait(closing)
        await asyncio.gather(*self._opening, return_exceptions=True)
