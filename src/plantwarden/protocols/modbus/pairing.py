"""Pair Modbus requests with their responses by (connection, transaction id), across batches.

A `Pairing` keeps the requests still waiting for an answer. `feed` takes a batch of PDU rows and
returns the exchanges it closed; `expire(now)` closes the requests older than the timeout.

`feed` means: walk the rows in time order (ties in input order) one by one, as `_feed_exactly`
does, and return the exchanges in the order that walk closes them (each row closes at most one
exchange unless a whole connection is evicted). It computes the same thing with numpy: rows are
sorted by (connection, transaction id, walk position), the requests still waiting from earlier
batches go in front of their key as if they were the batch's first rows, and then each row's
fate follows from the row before it in its key: a response after a request answers it, a request
after a request replaces it (`REPLACED`), a response after a response (or first) is
`UNSOLICITED`, and a request last in its key stays waiting. That holds as long as nothing is
evicted. A running count of all the waiting requests together, in walk order, shows at once
that nothing is (the usual batch: no connection keeps anywhere near `max_outstanding` in
flight); else a running count per connection finds the connections where `max_outstanding`
would evict, and the walk takes each over row by row (`_one`, on its own rows, in time order)
from its first eviction on, its waiting requests as the vectorised fates leave them there. A
batch where `max_connections` could evict walks row by row entirely. The waiting state
(including the order of both dicts, which decides what is evicted or expired first later) ends
up exactly as the walk leaves it.

Memory is bounded: at most `max_outstanding` waiting requests per connection (the oldest is
closed as `EVICTED` to make room; Modbus/TCP clients rarely keep more than a few in flight) and
at most `max_connections` connections with waiting requests (the connection that opened first is
closed, all its requests `EVICTED`). So the state never holds more than
`max_outstanding * max_connections` requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
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

    exact_below = 192
    """Batches with fewer rows than this are walked row by row (cheaper than numpy's set-up)."""

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

        `rows` labels each input row in the output (default: its index in this batch). The
        exchanges come in the order the time-ordered walk closes them (see the module).
        """
        columns = (connection, timestamp, transaction_id, is_response, function_code, exception_code, rows)
        if len(connection) < self.exact_below or self.max_outstanding < 1:
            return self._feed_exactly(*columns)
        return self._feed_vectorised(*columns)

    def _feed_exactly(
        self,
        connection: Array,
        timestamp: Array,
        transaction_id: Array,
        is_response: Array,
        function_code: Array,
        exception_code: Array,
        rows: Array | None = None,
    ) -> Pairs:
        """`feed` row by row: the reference the vectorised path must equal."""
        labels = np.arange(len(connection)) if rows is None else np.asarray(rows)
        order = np.argsort(timestamp, kind="stable")
        columns = (connection, timestamp, transaction_id, is_response, function_code, exception_code, labels)
        for values in zip(*(np.asarray(column)[order].tolist() for column in columns), strict=True):
            self._one(*values)
        return self._flush()

    def _feed_vectorised(
        self,
        connection: Array,
        timestamp: Array,
        transaction_id: Array,
        is_response: Array,
        function_code: Array,
        exception_code: Array,
        rows: Array | None = None,
    ) -> Pairs:
        """`feed` with numpy (see the module); `_feed_exactly` where `max_connections` may evict.

        The columns keep their dtypes (only the connection and the time are widened to int64),
        and are not reordered when the rows come in time order already, as a capture's do.
        """
        count = len(connection)
        if not count:
            return self._flush()
        order = _time_order(np.asarray(timestamp))
        conn = _reordered(connection, order).astype(np.int64, copy=False)
        uniques, index = _factorize(conn)
        names: list[int] = uniques.tolist()
        held = [self._waiting.get(name) for name in names]
        if len(self._waiting) + held.count(None) > self.max_connections:
            return self._feed_exactly(
                connection, timestamp, transaction_id, is_response, function_code, exception_code, rows
            )
        if rows is None:
            labels = np.arange(count, dtype=np.int64) if order is None else order
        else:
            labels = _reordered(rows, order)
        batch = _Rows(
            index,
            conn,
            _reordered(transaction_id, order),
            _reordered(timestamp, order).astype(np.int64, copy=False),
            _reordered(function_code, order),
            labels.astype(np.int64, copy=False),
            _reordered(exception_code, order),
            _reordered(is_response, order).astype(np.bool_, copy=False),
        )
        known = _known(names, held, batch)
        if known is not None:
            batch = _Rows(*(np.concatenate(pair) for pair in zip(known, batch, strict=True)))
        return self._resolve(batch, len(batch.ordinal) - count, names)

    def _resolve(self, rows: _Rows, known: int, names: list[int]) -> Pairs:
        """Close what `rows` close: the first `known` are the waiting requests, then the batch.

        Positions in `rows` are walk positions: the known rows first, each connection's in its
        dict's order, then the batch's in time order.
        """
        total, connections = len(rows.ordinal), len(names)
        response = rows.response
        # Each row's fate follows from the row before it in its key (connection, transaction id).
        by_key = _stable_order(rows.transaction_id, rows.ordinal, connections)
        key_ordinal, key_tid = rows.ordinal[by_key], rows.transaction_id[by_key]
        same = (key_ordinal[1:] == key_ordinal[:-1]) & (key_tid[1:] == key_tid[:-1])
        after_request = np.zeros(total, dtype=np.bool_)
        after_request[by_key[1:]] = same & ~response[by_key[:-1]]
        last = np.ones(total, dtype=np.bool_)
        last[by_key[:-1]] = ~same
        before = np.empty(total, dtype=np.int64)
        before[by_key[1:]] = by_key[:-1]
        before[by_key[0]] = by_key[0]
        # Each connection's waiting requests just before each row, if nothing is evicted: a
        # request that opens an exchange adds one, a response that answers one takes one away.
        opens, answers = ~response & ~after_request, response & after_request
        change = opens.view(np.int8) - answers.view(np.int8)
        exact = np.zeros(connections, dtype=np.bool_)
        exact_rows = None
        exact_closed: list[int] = []
        reopened: list[tuple[int, int, dict[int, _Waiting] | None]] = []
        if int(np.cumsum(change, dtype=np.int32).max()) < self.max_outstanding:
            # Not even all connections' requests together reach the bound: none is evicted.
            final = np.bincount(rows.ordinal, weights=change, minlength=connections).astype(np.int64)
            openings = opens.copy()
            openings[:known] = False
            opened_at = _last_openings(rows.ordinal, change, openings, final)
        else:
            count = _Counts(_Connections(rows.ordinal, connections), opens, answers, known)
            takeover = count.evicting(self.max_outstanding)
            exact = takeover < total
            # The exchanges closed row by row: where `max_outstanding` evicts, from the first eviction.
            if exact.any():
                exact_rows = np.arange(total) >= takeover[rows.ordinal]
                next_in_key = np.full(total, total, dtype=np.int64)
                next_in_key[by_key[:-1][same]] = by_key[1:][same]
                handed = self._hand_over(
                    rows, names, next_in_key, takeover, count.opened_at(takeover).tolist()
                )
                exact_closed = self._walk(rows, np.flatnonzero(exact_rows), reopened)
                reopened.extend(entry for entry in handed if entry[1] in self._waiting)
            final, opened_at = count.final(), count.opened_at()
        # The rest, vectorised: the closing rows, in walk order.
        closes = after_request | response
        if exact_rows is not None:
            closes &= ~exact_rows
        closing = np.flatnonzero(closes[known:]) + known
        self._settle(rows, known, names, ~exact, last, final.tolist(), opened_at.tolist(), reopened)
        closed = _closed(rows, closing, after_request[closing], before[closing])
        if not exact_closed:
            return closed
        walked = self._flush()
        merged = np.argsort(np.concatenate((closing, exact_closed)), kind="stable")
        return Pairs(
            *(
                np.concatenate((getattr(closed, field.name), getattr(walked, field.name)))[merged]
                for field in fields(Pairs)
            )
        )

    def _hand_over(
        self, rows: _Rows, names: list[int], next_in_key: Array, takeover: Array, opened_at: list[int]
    ) -> list[tuple[int, int, dict[int, _Waiting] | None]]:
        """Leave the waiting requests of the connections the walk takes over (those whose
        `takeover` position comes before the end) as they stand when it does: before, nothing
        was evicted, so the vectorised fates hold. Each connection's requests opened before and
        still waiting then, in walk order (its dict's); where it last (re)opened before, if it
        did (`opened_at`), to move it to its place in the outer dict later.
        """
        total = len(rows.ordinal)
        then = takeover[rows.ordinal]
        waiting = np.flatnonzero(
            (np.arange(total) < then) & (then < total) & ~rows.response & (next_in_key >= then)
        )
        states: dict[int, dict[int, _Waiting]] = {
            index: {} for index in np.flatnonzero(takeover < total).tolist()
        }
        columns = (rows.ordinal, rows.transaction_id, rows.time, rows.function_code, rows.label)
        for index, tid, time, code, row in zip(
            *(column[waiting].tolist() for column in columns), strict=True
        ):
            states[index][tid] = _Waiting(time, code, row)
        handed: list[tuple[int, int, dict[int, _Waiting] | None]] = []
        for index, requests in states.items():
            self._waiting[names[index]] = requests  # kept in place if it did not reopen
            if opened_at[index] >= 0:
                handed.append((opened_at[index], names[index], None))
        return handed

    def _walk(
        self, rows: _Rows, walk: Array, reopened: list[tuple[int, int, dict[int, _Waiting] | None]]
    ) -> list[int]:
        """Walk the rows at positions `walk` one by one; the position that closed each exchange.

        Note each connection that (re)opened, with the position of its last opening.
        """
        waiting, closed, triggers = self._waiting, self._closed, []
        opened: dict[int, int] = {}
        columns = (
            walk,
            rows.connection[walk],
            rows.time[walk],
            rows.transaction_id[walk],
            rows.response[walk],
            rows.function_code[walk],
            rows.exception[walk],
            rows.label[walk],
        )
        for position, connection, time, tid, response, code, exception, row in zip(
            *(column.tolist() for column in columns), strict=True
        ):
            if not response and connection not in waiting:
                opened[connection] = position
            already = len(closed)
            self._one(connection, time, tid, response, code, exception, row)
            triggers.extend([position] * (len(closed) - already))
        reopened.extend((position, name, None) for name, position in opened.items() if name in waiting)
        return triggers

    def _settle(
        self,
        rows: _Rows,
        known: int,
        names: list[int],
        settled: Array,
        last: Array,
        final: list[int],
        opened_at: list[int],
        reopened: list[tuple[int, int, dict[int, _Waiting] | None]],
    ) -> None:
        """Leave the vectorised connections' waiting requests as the walk would, order included.

        `settled` marks those connections; `final` counts each connection's waiting requests at
        the end, `opened_at` is the position where it last (re)opened (-1: never in this batch).
        A connection that reopened goes to the end of the outer dict in that order (`reopened`,
        which the walked connections joined already); one that stayed open keeps its place and
        its requests still waiting, then the new ones in walk order.
        """
        waiting = self._waiting
        targets: dict[int, dict[int, _Waiting]] = {}
        for position, (name, vectorised, left, at) in enumerate(
            zip(names, settled.tolist(), final, opened_at, strict=True)
        ):
            if not vectorised:
                continue
            if not left:
                waiting.pop(name, None)
            elif at >= 0:
                waiting.pop(name, None)
                fresh: dict[int, _Waiting] = {}
                targets[position] = fresh
                reopened.append((at, name, fresh))
            else:
                targets[position] = waiting[name]
        # Known requests that closed, in connections that stayed open (no-ops in the reopened).
        gone = np.flatnonzero(~last[:known] & settled[rows.ordinal[:known]])
        for index, tid in zip(rows.ordinal[gone].tolist(), rows.transaction_id[gone].tolist(), strict=True):
            if (requests := targets.get(index)) is not None:
                requests.pop(tid, None)
        stays = ~rows.response[known:] & last[known:]
        if not settled.all():
            stays &= settled[rows.ordinal[known:]]
        staying = np.flatnonzero(stays) + known
        columns = (rows.ordinal, rows.transaction_id, rows.time, rows.function_code, rows.label)
        for index, tid, time, code, row in zip(
            *(column[staying].tolist() for column in columns), strict=True
        ):
            targets[index][tid] = _Waiting(time, code, row)
        reopened.sort(key=lambda entry: entry[0])
        for _, name, requests in reopened:
            waiting[name] = waiting.pop(name) if requests is None else requests

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


class _Rows(NamedTuple):
    """Rows to pair, in walk order; `ordinal` numbers their connections 0, 1, ...

    The transaction ids, function and exception codes keep their input dtypes."""

    ordinal: Array
    """In `_index_dtype` of the connection count."""
    connection: npt.NDArray[np.int64]
    transaction_id: Array
    time: npt.NDArray[np.int64]
    function_code: Array
    label: npt.NDArray[np.int64]
    exception: Array
    response: npt.NDArray[np.bool_]


class _Connections:
    """The rows grouped by connection, in walk order within each (a stable sort: `order`); the
    connection of each (`group`, ascending), and where each connection's rows start."""

    def __init__(self, ordinal: Array, connections: int) -> None:
        self.order: npt.NDArray[np.intp] = np.argsort(ordinal, kind="stable")
        self.group = ordinal[self.order]
        self.starts = np.flatnonzero(np.concatenate(([True], self.group[1:] != self.group[:-1])))
        """Every connection has rows: `connections` of them, in ordinal order."""
        self.connections = connections


class _Counts:
    """Each connection's waiting requests along the walk, if nothing is evicted.

    A request that opens an exchange adds one to its connection's count, a response that
    answers one takes one away (a request that replaces one changes nothing).
    """

    def __init__(self, grouped: _Connections, opens: Array, answers: Array, known: int) -> None:
        by_connection, group, starts = grouped.order, grouped.group, grouped.starts
        steps = (opens.astype(np.int32) - answers)[by_connection]
        running = np.cumsum(steps, dtype=np.int32)
        before = running - steps
        self.waiting_before = before - before[starts][group]  # each connection starts at 0
        self._final = running[np.append(starts[1:], len(group)) - 1] - before[starts]
        self.request_row = opens[by_connection]
        if known:
            self.request_row &= by_connection >= known
        self.by_connection, self.group, self.connections = by_connection, group, grouped.connections

    def evicting(self, max_outstanding: int) -> npt.NDArray[np.int64]:
        """Per connection: the walk position of its first request of the batch that comes when
        `max_outstanding` wait (from there on, the counts do not hold); past the last row if none."""
        first = np.full(self.connections, len(self.by_connection), dtype=np.int64)
        at = np.flatnonzero(self.request_row & (self.waiting_before >= max_outstanding))
        if at.size:
            group = self.group[at]
            first_of = np.append(True, group[1:] != group[:-1])
            first[group[first_of]] = self.by_connection[at[first_of]]
        return first

    def final(self) -> npt.NDArray[np.int64]:
        """Per connection: the requests waiting at the end."""
        final: npt.NDArray[np.int64] = self._final.astype(np.int64)
        return final

    def opened_at(self, before: Array | None = None) -> npt.NDArray[np.int64]:
        """Per connection: the walk position where it last (re)opened (before `before`, per
        connection, if given); -1 if it did not."""
        opened_at = np.full(self.connections, -1, dtype=np.int64)
        opening = self.request_row & (self.waiting_before == 0)
        if before is not None:
            opening &= self.by_connection < before[self.group]
        at = np.flatnonzero(opening)
        if at.size:
            group = self.group[at]
            last_of = np.append(group[1:] != group[:-1], True)
            opened_at[group[last_of]] = self.by_connection[at[last_of]]
        return opened_at


def _last_openings(
    ordinal: Array, change: Array, openings: Array, final: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Per connection still waiting at the end (`final` > 0): the walk position of its last
    opening, a row of `openings` where none of its requests waits (-1 if none: it kept waiting
    all along), when nothing is evicted; -1 for the others.

    Those openings lie near the end, so they are looked for on a tail of the rows, made longer
    until it holds them all: the rows grouped by connection, each connection's count at the
    tail's start being its final count less the tail's changes (`change`).
    """
    opened_at = np.full(len(final), -1, dtype=np.int64)
    wanted = final > 0
    total, size = len(ordinal), 1 << 10
    while wanted.any():
        start = max(total - size, 0)
        order = np.argsort(ordinal[start:], kind="stable")
        group = ordinal[start:][order]
        steps = change[start:][order].astype(np.int32)
        first = np.concatenate(([True], group[1:] != group[:-1]))
        firsts, member = np.flatnonzero(first), np.cumsum(first) - 1
        at_start = final.copy()
        at_start[group[firsts]] -= np.add.reduceat(steps, firsts)
        before = np.cumsum(steps) - steps  # each group's count before each row, less its start's
        waiting_before = before - before[firsts][member] + at_start[group]
        at = np.flatnonzero(openings[start:][order] & (waiting_before == 0))
        if at.size:
            found = group[at]
            last_of = np.append(found[1:] != found[:-1], True)
            found, at = found[last_of], at[last_of]
            take = wanted[found]
            opened_at[found[take]] = start + order[at[take]]
            wanted[found] = False
        if not start:
            break
        size <<= 2
    return opened_at


def _time_order(timestamp: Array) -> npt.NDArray[np.intp] | None:
    """The rows' stable order by time; None when they are in it already (a capture's usually are)."""
    if len(timestamp) < 2 or not (timestamp[1:] < timestamp[:-1]).any():
        return None
    order: npt.NDArray[np.intp] = np.argsort(timestamp, kind="stable")
    return order


def _reordered(column: Array, order: npt.NDArray[np.intp] | None) -> Array:
    """`column` in `order` (as it is for None)."""
    values = np.asarray(column)
    return values if order is None else values[order]


def _factorize(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], Array]:
    """The distinct values, ascending, and each value's index among them (`np.unique`, faster),
    in the narrowest dtype that holds it (`_index_dtype`)."""
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if span <= 4 * len(values) + 1024:
        offsets = values - low
        present = np.bincount(offsets, minlength=span) > 0
        uniques = np.flatnonzero(present) + low
        ranks = (np.cumsum(present) - 1).astype(_index_dtype(len(uniques)))
        return uniques, ranks[offsets]
    uniques, inverse = np.unique(values, return_inverse=True)
    return uniques, inverse.reshape(-1).astype(_index_dtype(len(uniques)))


def _index_dtype(count: int) -> type[np.integer[Any]]:
    """The dtype of indexes in range(count): unsigned bytes or words (numpy sorts those with a
    radix sort, in linear time), else int64."""
    if count <= 1 << 8:
        return np.uint8
    return np.uint16 if count <= 1 << 16 else np.int64


def _stable_order(minor: Array | None, major: Array, majors: int) -> npt.NDArray[np.intp]:
    """The stable order by (major, minor) (`major` in range(majors), in `_index_dtype(majors)`):
    radix sorts where they fit."""
    order = None
    if minor is not None:
        low, high = int(minor.min()), int(minor.max())
        if low >= 0 and high < 1 << 16:  # transaction ids
            keys = minor.astype(np.uint16, copy=False)
        else:
            keys = (minor - low).astype(np.uint16) if high - low < 1 << 16 else minor
        order = np.argsort(keys, kind="stable")
        major = major[order]
    ranked: npt.NDArray[np.intp] = np.argsort(major, kind="stable")
    return ranked if order is None else order[ranked]


def _known(names: list[int], held: list[dict[int, _Waiting] | None], batch: _Rows) -> _Rows | None:
    """The requests waiting in these connections as rows (each connection's in its dict's order),
    in the batch's dtypes where their values fit (the concatenation then keeps those)."""
    index: list[int] = []
    connection: list[int] = []
    tids: list[int] = []
    requests: list[_Waiting] = []
    for position, (name, waiting) in enumerate(zip(names, held, strict=True)):
        if waiting:
            index.extend([position] * len(waiting))
            connection.extend([name] * len(waiting))
            tids.extend(waiting)
            requests.extend(waiting.values())
    if not index:
        return None
    times, codes, labels = zip(*requests, strict=True)
    zeros = np.zeros(len(index), dtype=batch.exception.dtype)
    return _Rows(
        np.array(index, dtype=batch.ordinal.dtype),
        np.array(connection, dtype=np.int64),
        _like(tids, batch.transaction_id),
        np.array(times, dtype=np.int64),
        _like(codes, batch.function_code),
        np.array(labels, dtype=np.int64),
        zeros,
        zeros.astype(np.bool_),
    )


def _like(values: Sequence[int], column: Array) -> Array:
    """`values` as an array of `column`'s dtype if they fit in it, else of int64."""
    array = np.array(values, dtype=np.int64)
    if np.issubdtype(column.dtype, np.integer):
        limits = np.iinfo(column.dtype)
        if limits.min <= array.min() and array.max() <= limits.max:
            return array.astype(column.dtype)
    return array


def _closed(rows: _Rows, closing: Array, has_request: Array, request: Array) -> Pairs:
    """The exchanges the rows at `closing` close; `request` is the waiting request's row, if any."""
    response = rows.response[closing]
    if has_request.all() and response.all():  # every one a response to its request: most batches
        code = rows.function_code[request]
        return Pairs(
            rows.connection[closing],
            rows.transaction_id[closing].astype(np.int32, copy=False),
            code.astype(np.int16, copy=False),
            rows.label[request],
            rows.label[closing],
            rows.time[request],
            rows.time[closing],
            rows.exception[closing].astype(np.int16, copy=False),
            code != rows.function_code[closing],
            np.full(len(closing), PairStatus.ANSWERED, dtype=np.uint8),
        )
    request = np.where(has_request, request, closing)
    code = rows.function_code[request]
    return Pairs(
        rows.connection[closing],
        rows.transaction_id[closing].astype(np.int32),
        code.astype(np.int16),
        np.where(has_request, rows.label[request], -1),
        np.where(response, rows.label[closing], -1),
        np.where(has_request, rows.time[request], -1),
        np.where(response, rows.time[closing], -1),
        np.where(response, rows.exception[closing], 0).astype(np.int16),
        has_request & response & (code != rows.function_code[closing]),
        np.where(
            has_request,
            np.where(response, PairStatus.ANSWERED, PairStatus.REPLACED),
            PairStatus.UNSOLICITED,
        ).astype(np.uint8),
    )
