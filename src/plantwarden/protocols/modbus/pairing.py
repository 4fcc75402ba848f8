"""Pair Modbus requests with their responses by (connection, transaction id), across batches.

A `Pairing` keeps the requests still waiting for an answer. `feed` takes a batch of PDU rows
(they are far fewer than packets, so a dict walk is fast enough) and returns the exchanges it
closed; `expire(now)` closes the requests older than the timeout.

Memory is bounded: at most `max_outstanding` waiting requests per connection (the oldest is
closed as `EVICTED` to make room; Modbus/TCP clients rarely keep more than a few in flight) and
at most `max_connections` connections with waiting requests (the connection that opened first is
closed, all its requests `EVICTED`). So the state never holds more than
`max_outstanding * max_connections` requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


class PairStatus(IntEnum):
    """How an exchange closed."""

    ANSWERED = 0
    TIMED_OUT = 1
    """No response within the timeout (`expire`)."""
    EVICTED = 2
    """Dropped to keep memory bounded (too many waiting requests or connections)."""
    REPLACED = 3
    """The client reused the transaction id before any response came."""
    UNSOLICITED = 4
    """A response with no waiting request (its request came before the capture, or was evicted)."""


class _Waiting(NamedTuple):
    timestamp: int
    function_code: int
    row: int


@dataclass(frozen=True, slots=True)
class Pairs:
    """Closed exchanges, one row each; -1 where there is no request or no response."""

    connection: npt.NDArray[np.int64]
    transaction_id: npt.NDArray[np.int32]
    function_code: npt.NDArray[np.int16]
    """The request's function code (the response's for `UNSOLICITED`)."""
    request_row: npt.NDArray[np.int64]
    response_row: npt.NDArray[np.int64]
    request_time: npt.NDArray[np.int64]
    response_time: npt.NDArray[np.int64]
    exception_code: npt.NDArray[np.int16]
    function_mismatch: npt.NDArray[np.bool_]
    """The response's function code differs from the request's."""
    status: npt.NDArray[np.uint8]

    @property
    def answered(self) -> npt.NDArray[np.bool_]:
        """Whether each request got its response."""
        answered: npt.NDArray[np.bool_] = self.status == PairStatus.ANSWERED
        return answered

    @property
    def latency_ns(self) -> npt.NDArray[np.int64]:
        """Response time minus request time for answered requests, else -1."""
        return np.where(self.answered, self.response_time - self.request_time, -1)

    def __len__(self) -> int:
        """The number of closed exchanges."""
        return len(self.status)


_DTYPES = (np.int64, np.int32, np.int16, np.int64, np.int64, np.int64, np.int64, np.int16, np.bool_, np.uint8)


def _pairs(rows: list[tuple[int, ...]]) -> Pairs:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(_DTYPES)
    return Pairs(*(np.array(column, dtype=dtype) for column, dtype in zip(columns, _DTYPES, strict=True)))


class Pairing:
    """Requests waiting for responses, fed batch by batch."""

    def __init__(
        self, timeout_ns: int = 5_000_000_000, max_outstanding: int = 64, max_connections: int = 100_000
    ) -> None:
        """Close requests after `timeout_ns`; keep at most the bounds the module describes."""
        self.timeout_ns, self.max_outstanding, self.max_connections = (
            timeout_ns,
            max_outstanding,
            max_connections,
        )
        self._waiting: dict[int, dict[int, _Waiting]] = {}
        self._closed: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        """How many requests are waiting."""
        return sum(len(waiting) for waiting in self._waiting.values())

    def feed(
        self,
        connection: Array,
        timestamp: Array,
        transaction_id: Array,
        is_response: Array,
        function_code: Array,
        exception_code: Array,
        rows: Array | None = None,
    ) -> Pairs:
        """Take a batch of PDU rows (any order: sorted by time here); return the exchanges closed.

        `rows` labels each input row in the output (default: its index in this batch).
        """
        labels = np.arange(len(connection)) if rows is None else np.asarray(rows)
        order = np.argsort(timestamp, kind="stable")
        columns = (connection, timestamp, transaction_id, is_response, function_code, exception_code, labels)
        for values in zip(*(np.asarray(column)[order].tolist() for column in columns), strict=True):
            self._one(*values)
        return self._flush()

    def expire(self, now: int) -> Pairs:
        """Close as `TIMED_OUT` every request that has waited `timeout_ns` or more at `now`."""
        deadline = now - self.timeout_ns
        for connection in list(self._waiting):
            waiting = self._waiting[connection]
            while (
                waiting
                and (oldest := next(iter(waiting))) is not None
                and waiting[oldest].timestamp <= deadline
            ):
                self._close(connection, oldest, waiting.pop(oldest), PairStatus.TIMED_OUT)
            if not waiting:
                del self._waiting[connection]
        return self._flush()

    def _one(
        self, connection: int, time: int, tid: int, response: bool, code: int, exception: int, row: int
    ) -> None:
        if response:
            self._answer(connection, time, tid, code, exception, row)
        else:
            self._wait(connection, tid, _Waiting(time, code, row))

    def _wait(self, connection: int, tid: int, request: _Waiting) -> None:
        waiting = self._waiting.get(connection)
        if waiting is None:
            waiting = self._open_connection(connection)
        if tid in waiting:
            self._close(connection, tid, waiting.pop(tid), PairStatus.REPLACED)
        elif len(waiting) >= self.max_outstanding:
            oldest = next(iter(waiting))
            self._close(connection, oldest, waiting.pop(oldest), PairStatus.EVICTED)
        waiting[tid] = request

    def _open_connection(self, connection: int) -> dict[int, _Waiting]:
        if len(self._waiting) >= self.max_connections:
            first = next(iter(self._waiting))
            for tid, request in self._waiting.pop(first).items():
                self._close(first, tid, request, PairStatus.EVICTED)
        waiting: dict[int, _Waiting] = {}
        self._waiting[connection] = waiting
        return waiting

    def _answer(self, connection: int, time: int, tid: int, code: int, exception: int, row: int) -> None:
        waiting = self._waiting.get(connection, {})
        request = waiting.pop(tid, None)
        if request is None:
            self._closed.append(
                (connection, tid, code, -1, row, -1, time, exception, False, PairStatus.UNSOLICITED)
            )
            return
        if not waiting:
            del self._waiting[connection]
        mismatch = code != request.function_code
        self._closed.append(
            (
                connection,
                tid,
                request.function_code,
                request.row,
                row,
                request.timestamp,
                time,
                exception,
                mismatch,
                0,
            )
        )

    def _close(self, connection: int, tid: int, request: _Waiting, status: PairStatus) -> None:
        self._closed.append(
            (connection, tid, request.function_code, request.row, -1, request.timestamp, -1, 0, False, status)
        )

    def _flush(self) -> Pairs:
        closed, self._closed = self._closed, []
        return _pairs(closed)
