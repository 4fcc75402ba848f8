"""One protocol's requests on their way to the records plane: paired with their answers across
batches, and recorded once their exchange closes.

A protocol record is one request with its answer's status: 0 answered normally, the answer's
result or exception code when it carries one, -1 (`NO_ANSWER_SEEN`) when no answer came
(within the timeout, or before the request was replaced or evicted, or at the end of the
input); an answer the timeout or more after its request counts as none (and as an answer
without request), whether or not the two came in one batch. The time is the capture's: where
its timestamps go backwards, a request may expire before answers stamped earlier than the
newest packet seen (in small batches more than in large ones). Requests that expect no answer
(`ONE_WAY`) are recorded at once with status -2 (`NO_ANSWER_EXPECTED`), so that they are not
taken for unanswered ones; answers that find no request (unsolicited) and PDUs that are neither
(`NOT_RECORDED`) are counted, not recorded.

Rows are labelled in order across batches; a request's record fields are read from its batch
when its exchange closes within it, else kept (as columns) until it does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.records.schema import NO_ANSWER_EXPECTED, NO_ANSWER_SEEN, PROTOCOL_RECORDS
from plantwarden.protocols.common import ONE_WAY
from plantwarden.protocols.modbus.pairing import Pairing, Pairs, PairStatus

Array = npt.NDArray[Any]
Fields = Callable[[npt.NDArray[np.int64]], dict[str, Array]]
"""Rows of a batch -> their record fields but `status` and `response_ns` (`ts`, addresses,
ports, `transport`, `operation`, `function`, `unit`, `address`, `quantity`, `value`)."""
STATUS_MAX = 0x7FFF


class RecordSink(Protocol):
    """Where the sensor's records go: a `RecordWriter` (the records plane), or any other sink
    that takes record batches."""

    def write(self, batch: RecordBatch) -> WriteReport: ...


class ExchangeCounts(Protocol):
    """Where a protocol's exchanges are counted."""

    requests: int
    answered: int
    exceptions: int
    unanswered: int
    unsolicited: int


class RecordCounts(Protocol):
    """Where the sensor counts records of every protocol."""

    protocol_records: int
    stored_rows: int


def answer_status(result: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.int16]:
    """The record's status of answers with `result` (> 0 an error or exception code, else none):
    0, or the code; a code above 0x7FFF (an S7 error class and code, an OPC UA StatusCode) is
    stored folded into 15 bits: its top 16 bits where it has more than 16, without the top bit,
    so that S7's 0x8104 is 0x0104 and OPC UA's 0x80340000 (BadNodeIdUnknown) is 0x0034."""
    wide = result.astype(np.int64)
    folded = np.where(wide > 0xFFFF, wide >> 16, wide) & STATUS_MAX
    folded = np.where(folded == 0, STATUS_MAX, folded)
    status: npt.NDArray[np.int16] = np.where(wide > STATUS_MAX, folded, np.maximum(wide, 0)).astype(np.int16)
    return status


class RequestRecords:
    """One protocol's requests: pairing, the fields of those waiting, and their records."""

    def __init__(
        self,
        protocol: int,
        timeout_ns: int,
        counts: ExchangeCounts,
        totals: RecordCounts,
        writer: RecordSink | None,
        site: str,
        segment: str,
    ) -> None:
        self.protocol = protocol
        self.pairing = Pairing(timeout_ns)
        self.counts, self.totals, self.writer = counts, totals, writer
        self.site, self.segment = site, segment
        self._waiting = _WaitingRequests()
        self._next_row = 0

    def feed(
        self,
        now: int,
        connection: npt.NDArray[np.int64],
        ts: npt.NDArray[np.int64],
        key: npt.NDArray[np.integer[Any]],
        is_response: npt.NDArray[np.bool_],
        function: npt.NDArray[np.integer[Any]],
        result: npt.NDArray[np.integer[Any]],
        fields: Fields,
    ) -> None:
        """Take a batch's PDU rows: pair them (by connection and key), record the exchanges that
        closed and the requests that expect no answer, keep the rest waiting; then close the
        requests older than the timeout at `now`."""
        key = key.astype(np.int64, copy=False)
        one_way = np.flatnonzero((key == ONE_WAY) & ~is_response)
        if len(one_way) and self.writer is None:
            self.counts.requests += len(one_way)
            self.totals.protocol_records += len(one_way)
        elif len(one_way):
            self.counts.requests += len(one_way)
            found = fields(one_way)
            found["status"] = np.full(len(one_way), NO_ANSWER_EXPECTED, dtype=np.int16)
            found["response_ns"] = np.full(len(one_way), -1, dtype=np.int64)
            self._record(found)
        paired = np.flatnonzero(key >= 0)
        if len(paired) < len(key):
            connection, ts, key, is_response = (
                connection[paired],
                ts[paired],
                key[paired],
                is_response[paired],
            )
            function, result, fields = function[paired], result[paired], _subset(fields, paired)
        if not len(key):
            self._paired(self.pairing.expire(now))
            return
        batch = _BatchRequests(self._next_row, is_response, fields)
        self._next_row += len(key)
        self.counts.requests += len(batch.rows)
        pairs = self.pairing.feed(
            connection,
            ts,
            key.astype(np.int32),
            is_response,
            np.clip(function, -0x8000, STATUS_MAX).astype(np.int16),
            answer_status(result),
            batch.labels(),
        )
        self._paired(pairs, batch)
        self._paired(self.pairing.expire(now), batch)
        if self.writer is not None:
            waiting = batch.waiting()
            self._waiting.add(batch.first_label + waiting, batch.fields(waiting))

    def expire(self, now: int) -> None:
        """Close (as unanswered) the requests older than the timeout at `now`."""
        self._paired(self.pairing.expire(now))

    def finish(self, last_ns: int) -> None:
        """The end of the input: close every waiting request."""
        self._paired(self.pairing.expire(last_ns + self.pairing.timeout_ns + 1))

    def _paired(self, pairs: Pairs, batch: _BatchRequests | None = None) -> None:
        """Count closed exchanges and record their requests (those of `batch` read from it)."""
        if not len(pairs):
            return
        counts = self.counts
        status = pairs.status
        late = (status == PairStatus.ANSWERED) & (
            pairs.response_time - pairs.request_time >= self.pairing.timeout_ns
        )
        if late.any():  # answered after the timeout, within one batch: as if it had expired first
            status = np.where(late, np.uint8(PairStatus.TIMED_OUT), status)
            counts.unsolicited += int(late.sum())  # and its answer then found no request
        answered = status == PairStatus.ANSWERED
        counts.answered += int(answered.sum())
        counts.exceptions += int((answered & (pairs.exception_code > 0)).sum())
        counts.unanswered += int(
            np.isin(status, (PairStatus.TIMED_OUT, PairStatus.EVICTED, PairStatus.REPLACED)).sum()
        )
        counts.unsolicited += int((status == PairStatus.UNSOLICITED).sum())
        found = np.flatnonzero(pairs.request_row >= 0)  # every request was kept: all but unsolicited
        if self.writer is None:
            self.totals.protocol_records += len(found)
        if self.writer is None or not len(found):
            return
        fields = self._request_fields(pairs.request_row[found], batch)
        answered = answered[found]
        exception = pairs.exception_code[found].astype(np.int16)
        fields["status"] = np.where(answered, np.maximum(exception, 0), NO_ANSWER_SEEN).astype(np.int16)
        fields["response_ns"] = np.where(answered, pairs.response_time[found] - pairs.request_time[found], -1)
        self._record(fields)

    def _request_fields(
        self, labels: npt.NDArray[np.int64], batch: _BatchRequests | None
    ) -> dict[str, Array]:
        """The fields of the requests labelled `labels`, read from `batch` or the waiting ones."""
        if batch is None:
            return self._waiting.take(labels)[1]
        local = labels - batch.first_label
        current = local >= 0
        if not current.any():
            return self._waiting.take(labels)[1]
        fields = batch.fields(local[current])
        batch.closed[local[current]] = True
        if current.all():
            return fields
        older = self._waiting.take(labels[~current])[1]
        merged = {}
        for name, values in fields.items():
            merged[name] = np.empty(len(labels), dtype=values.dtype)
            merged[name][current], merged[name][~current] = values, older[name]
        return merged

    def _record(self, fields: dict[str, Array]) -> None:
        count = len(fields["ts"])
        if not count:
            return
        self.totals.protocol_records += count
        if self.writer is None:
            return
        batch = RecordBatch.build(
            PROTOCOL_RECORDS,
            {**fields, "site": self.site, "segment": self.segment, "protocol": self.protocol},
            length=count,
        )
        self.totals.stored_rows += self.writer.write(batch).stored


def _subset(fields: Fields, rows: npt.NDArray[np.int64]) -> Fields:
    """`fields` of a batch's `rows`, by their index among them."""

    def subset(wanted: npt.NDArray[np.int64]) -> dict[str, Array]:
        return fields(rows[wanted])

    return subset


class _BatchRequests:
    """A batch's paired rows: their labels, and their record's fields, read only when needed."""

    def __init__(self, first_label: int, is_response: npt.NDArray[np.bool_], fields: Fields) -> None:
        self.first_label = first_label
        """The label of the batch's first row (rows are labelled in order across batches)."""
        self.rows = np.flatnonzero(~is_response.astype(bool))
        self.closed = np.zeros(len(is_response), dtype=bool)
        """Per row: whether its exchange closed (and its request was recorded)."""
        self.fields = fields

    def labels(self) -> npt.NDArray[np.int64]:
        """Every row's label."""
        return np.arange(self.first_label, self.first_label + len(self.closed), dtype=np.int64)

    def waiting(self) -> npt.NDArray[np.int64]:
        """The rows of the requests still waiting for their answer."""
        waiting: npt.NDArray[np.int64] = self.rows[~self.closed[self.rows]]
        return waiting


class _WaitingRequests:
    """The fields of requests still waiting for their answer, as columns keyed by row label."""

    def __init__(self) -> None:
        self.labels = np.zeros(0, dtype=np.int64)
        self.fields: dict[str, Array] = {}

    def add(self, labels: npt.NDArray[np.int64], fields: dict[str, Array]) -> None:
        """Keep the requests labelled `labels` (labels only grow)."""
        if not self.fields:
            self.labels, self.fields = labels.copy(), {name: values.copy() for name, values in fields.items()}
            return
        self.labels = np.concatenate([self.labels, labels])
        for name, values in fields.items():
            self.fields[name] = np.concatenate([self.fields[name], values])

    def take(self, labels: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], dict[str, Array]]:
        """Remove and return the requests among `labels` (which of `labels` were found, their fields)."""
        where = np.searchsorted(self.labels, labels)
        inside = where < len(self.labels)
        found = np.zeros(len(labels), dtype=bool)
        found[inside] = self.labels[where[inside]] == labels[inside]
        rows = where[found]
        taken = {name: values[rows] for name, values in self.fields.items()}
        keep = np.ones(len(self.labels), dtype=bool)
        keep[rows] = False
        self.labels = self.labels[keep]
        self.fields = {name: values[keep] for name, values in self.fields.items()}
        return found, taken
