"""The register values the sensor sees on the wire, as telemetry samples of the records plane.

Per batch of the sensor's Modbus PDUs (`ModbusBatch`), the reads and writes of registers (FC 1,
2, 3, 4, 5, 6, 15, 16 and 23) are paired, request with answer, by connection and transaction id
(`protocols.modbus.pairing.Pairing`, across batches, as the protocol records are). Then:

- a read answered normally gives one sample per register of the plant model's map wholly inside
  the range its request read (`RegisterMap`: the asset at the server's address and unit id),
  timed at the answer, valued from the answer's bytes (FC 3, 4 and 23: two bytes per register,
  FC 1 and 2: bit-packed), quality 0;
- a write (FC 5, 6, 15, 16, and the write part of 23) gives one sample per register it writes,
  timed at the request, valued from the request: quality 0 once the server acknowledges it,
  quality 1 (`UNCONFIRMED`) when no answer was seen (timed out, replaced, evicted, the end of
  the input);
- an exception answer gives no sample, nor does a write it refuses; a value that is not a
  number (a float32 NaN or infinity) has quality 2.

Skipped and counted (`RegisterCounters`): addresses no register of the map takes whole
(`unmapped`, also every address of a server the model does not know), PDUs with a finding or an
answer whose byte count does not fit its request (`malformed`), and PDUs whose bytes are not in
the batch whole (`unreachable`: an ADU split over two segments is not reassembled; see
`register_decode`). Waiting requests are bounded as the pairing's are (a timeout, at most
`max_outstanding` per connection and `max_connections` connections): what is kept beside them,
a read's range or a write's decoded samples, is dropped when the pairing closes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.core.clock import SECOND_NS
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import TELEMETRY
from plantwarden.monitoring.modbus_streams import ModbusBatch
from plantwarden.monitoring.register_decode import Samples, Spans, adu_positions, samples
from plantwarden.monitoring.register_map import (
    COIL,
    DISCRETE,
    FUNCTIONS,
    READ_TABLE,
    WRITE_TABLE,
    RegisterMap,
)
from plantwarden.protocols.modbus import ModbusFinding
from plantwarden.protocols.modbus.pairing import Pairing, Pairs, PairStatus
from plantwarden.zones.plant.model import SiteModel

Int64s = npt.NDArray[np.int64]
GOOD, UNCONFIRMED, NOT_A_NUMBER = 0, 1, 2
"""The samples' `quality`."""
WRITE_DATA = np.zeros(FUNCTIONS, dtype=np.int64)
"""Per function code that writes many values: where in its request's ADU they start."""
WRITE_DATA[[15, 16, 23]] = (13, 13, 17)
READ_DATA = 9
"""Where in a read answer's ADU the values start (after the MBAP header, code and byte count)."""


@dataclass(slots=True)
class RegisterCounters:
    """What became of the register reads and writes the sensor saw."""

    samples: int = 0
    reads: int = 0
    """Read answers decoded."""
    writes: int = 0
    """Write requests decoded."""
    exceptions: int = 0
    unanswered: int = 0
    """Reads that saw no answer."""
    unconfirmed: int = 0
    """Writes that saw no answer (their samples have quality 1)."""
    unsolicited: int = 0
    unmapped: int = 0
    """Addresses (registers or bits) read or written that no register of the map takes whole."""
    malformed: int = 0
    unreachable: int = 0
    """PDUs whose bytes were not in their batch whole (split over two segments)."""


class _Pending:
    """Columns keyed by request label (labels only grow): reads' ranges or writes' samples."""

    def __init__(self, **dtypes: type[np.generic]) -> None:
        self.columns: dict[str, npt.NDArray[Any]] = {
            name: np.zeros(0, dtype) for name, dtype in dtypes.items()
        }

    def add(self, **columns: npt.NDArray[Any]) -> None:
        for name, values in columns.items():
            self.columns[name] = np.concatenate([self.columns[name], values])

    def take(self, labels: Int64s) -> dict[str, npt.NDArray[Any]]:
        """Remove and return the rows of `labels`."""
        mine = np.isin(self.columns["label"], labels)
        taken = {name: values[mine] for name, values in self.columns.items()}
        if taken["label"].size:
            self.columns = {name: values[~mine] for name, values in self.columns.items()}
        return taken

    def __len__(self) -> int:
        return len(self.columns["label"])


@dataclass(slots=True)
class _Out:
    register: list[Int64s] = field(default_factory=list)
    ts: list[Int64s] = field(default_factory=list)
    value: list[npt.NDArray[np.float64]] = field(default_factory=list)
    quality: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(self, register: Int64s, ts: Int64s, value: npt.NDArray[np.float64], quality: int) -> None:
        if len(register):
            self.register.append(register)
            self.ts.append(ts)
            self.value.append(value)
            self.quality.append(np.full(len(register), quality, dtype=np.int8))


class RegisterValues:
    """Register reads and writes in, telemetry samples out, batch after batch."""

    def __init__(
        self,
        registers: RegisterMap,
        site: str,
        *,
        timeout_ns: int = 10 * SECOND_NS,
        max_outstanding: int = 64,
        max_connections: int = 100_000,
    ) -> None:
        self.registers, self.site = registers, site
        self.pairing = Pairing(timeout_ns, max_outstanding, max_connections)
        self.counters = RegisterCounters()
        self.last_ns = 0
        self._next_label = 0
        self._reads = _Pending(label=np.int64, asset=np.int64, table=np.int64, first=np.int64, count=np.int64)
        self._writes = _Pending(label=np.int64, register=np.int64, ts=np.int64, value=np.float64)

    @classmethod
    def from_site(cls, site: SiteModel, segment: str | None = None, **options: int) -> RegisterValues:
        """For the register maps of `site`'s assets (on `segment`, when given)."""
        return cls(RegisterMap.from_site(site, segment), site.id, **options)

    @property
    def waiting(self) -> int:
        """How many requests wait for their answer."""
        return len(self.pairing)

    def feed(self, batch: PacketBatch, layers: Layers, flow_ids: Int64s, modbus: ModbusBatch) -> RecordBatch:
        """The samples of the exchanges the batch closes (`layers`, `flow_ids`: the sensor's of
        the batch; `modbus`: its Modbus PDUs); then those of the requests the timeout closes."""
        if len(batch):
            self.last_ns = max(self.last_ns, int(batch.ts_ns.max()))
        out = _Out()
        c = modbus.columns
        code = np.clip(c.function_code, 0, FUNCTIONS - 1)
        known = (c.function_code < FUNCTIONS) & ((READ_TABLE[code] >= 0) | (WRITE_TABLE[code] >= 0))
        rows = np.flatnonzero(known & (c.transaction_id >= 0))
        if rows.size:
            first = self._next_label
            self._next_label += len(rows)
            self._requests(batch, layers, modbus, rows, first)
            packet = modbus.packet[rows]
            pairs = self.pairing.feed(
                flow_ids[packet],
                batch.ts_ns[packet],
                c.transaction_id[rows],
                c.is_response[rows],
                c.function_code[rows],
                c.exception_code[rows],
                np.arange(first, first + len(rows), dtype=np.int64),
            )
            self._closed(pairs, out, _Answers(batch, layers, modbus, rows, first))
        self._closed(self.pairing.expire(self.last_ns), out, None)
        return self._records(out)

    def finish(self) -> RecordBatch:
        """The end of the input: close every waiting request (writes as unconfirmed samples)."""
        out = _Out()
        self._closed(self.pairing.expire(self.last_ns + self.pairing.timeout_ns + 1), out, None)
        return self._records(out)

    def _requests(
        self, batch: PacketBatch, layers: Layers, modbus: ModbusBatch, rows: Int64s, first: int
    ) -> None:
        """Keep the batch's requests: reads' ranges, writes' samples, by label."""
        c = modbus.columns
        local = np.flatnonzero(~c.is_response[rows])
        requests = rows[local]
        if not requests.size:
            return
        labels = first + local
        code, packet = c.function_code[requests], modbus.packet[requests]
        sound = c.finding[requests] == ModbusFinding.OK
        self.counters.malformed += int(np.count_nonzero(~sound))
        asset = self.registers.assets(layers.dst_addr[packet], c.unit_id[requests])
        reads = READ_TABLE[code] >= 0
        self._reads.add(
            label=labels[reads],
            asset=asset[reads],
            table=READ_TABLE[code[reads]],
            first=c.address[requests[reads]].astype(np.int64),
            count=np.where(sound[reads], c.quantity[requests[reads]], -1).astype(np.int64),
        )
        writes = np.flatnonzero((WRITE_TABLE[code] >= 0) & sound)
        if writes.size:
            self._write_samples(batch, layers, modbus, requests[writes], labels[writes], asset[writes])

    def _write_samples(
        self,
        batch: PacketBatch,
        layers: Layers,
        modbus: ModbusBatch,
        rows: Int64s,
        labels: Int64s,
        asset: Int64s,
    ) -> None:
        """Decode write requests now (their bytes are in this batch), to send once answered."""
        c = modbus.columns
        code = c.function_code[rows].astype(np.int64)
        single = (code == 5) | (code == 6)
        position = np.full(len(rows), -1, dtype=np.int64)
        many = np.flatnonzero(~single)
        if many.size:
            position[many] = adu_positions(
                batch.buffer, layers.payload_offset, layers.payload_length, modbus, rows[many]
            )
        reachable = single | (position >= 0)
        self.counters.unreachable += int(np.count_nonzero(~reachable))
        self.counters.writes += int(np.count_nonzero(reachable))
        multiple = code == 23
        spans = Spans(
            asset=asset,
            table=WRITE_TABLE[code],
            first=np.where(multiple, c.write_address[rows], c.address[rows]).astype(np.int64),
            count=np.where(
                single, 1, np.where(multiple, c.write_quantity[rows], c.quantity[rows]) * reachable
            ).astype(np.int64),
            data=np.where(single, -1, position + WRITE_DATA[code]),
            literal=c.value[rows].astype(np.int64),
            ts=batch.ts_ns[modbus.packet[rows]],
        )
        found = self._decode(batch.buffer, spans)
        self._writes.add(label=labels[found.span], register=found.register, ts=found.ts, value=found.value)

    def _closed(self, pairs: Pairs, out: _Out, answers: _Answers | None) -> None:
        """Samples of the closed exchanges: reads answered (their answers in `answers`), writes
        answered or not; the rest counted."""
        if not len(pairs):
            return
        status = pairs.status
        answered = status == PairStatus.ANSWERED
        good = answered & (pairs.exception_code == 0) & ~pairs.function_mismatch
        counters = self.counters
        counters.exceptions += int(np.count_nonzero(answered & (pairs.exception_code > 0)))
        counters.malformed += int(
            np.count_nonzero(answered & (pairs.exception_code == 0) & pairs.function_mismatch)
        )
        counters.unsolicited += int(np.count_nonzero(status == PairStatus.UNSOLICITED))
        silent = np.isin(status, (PairStatus.TIMED_OUT, PairStatus.EVICTED, PairStatus.REPLACED))
        request = pairs.request_row
        reads = self._reads.take(request[request >= 0])
        code = np.clip(pairs.function_code, 0, FUNCTIONS - 1)
        counters.unanswered += int(np.count_nonzero(silent & (READ_TABLE[code] >= 0)))
        counters.unconfirmed += int(np.count_nonzero(silent & (WRITE_TABLE[code] >= 0)))
        if len(reads["label"]):
            at = _positions(request, reads["label"])
            decode = good[at] & (reads["count"] >= 0)
            if answers is not None and decode.any():
                self._read_samples(reads, decode, pairs.response_row[at], answers, out)
        writes = self._writes.take(request[(good | silent) & (request >= 0)])
        if len(writes["label"]):
            closed = _positions(request, writes["label"])
            confirmed = good[closed]
            out.add(writes["register"][confirmed], writes["ts"][confirmed], writes["value"][confirmed], GOOD)
            out.add(
                writes["register"][~confirmed],
                writes["ts"][~confirmed],
                writes["value"][~confirmed],
                UNCONFIRMED,
            )

    def _read_samples(
        self,
        reads: dict[str, Any],
        decode: npt.NDArray[np.bool_],
        response: Int64s,
        answers: _Answers,
        out: _Out,
    ) -> None:
        """The samples of the reads answered normally (`decode`) by the answers labelled `response`."""
        keep = np.flatnonzero(decode)
        data, ts, byte_count = answers.values(response[keep])
        table, count = reads["table"][keep], reads["count"][keep]
        expected = np.where(np.isin(table, (COIL, DISCRETE)), (count + 7) // 8, 2 * count)
        fits = (data >= 0) & (byte_count == expected)
        self.counters.malformed += int(np.count_nonzero((data == -2) | ((data >= 0) & ~fits)))
        self.counters.unreachable += int(np.count_nonzero(data == -1))
        self.counters.reads += int(np.count_nonzero(fits))
        spans = Spans(
            asset=reads["asset"][keep],
            table=table,
            first=reads["first"][keep],
            count=np.where(fits, count, 0),
            data=data,
            literal=np.zeros(len(keep), dtype=np.int64),
            ts=ts,
        )
        found = self._decode(answers.buffer, spans)
        out.add(found.register, found.ts, found.value, GOOD)

    def _decode(self, buffer: npt.NDArray[np.uint8], spans: Spans) -> Samples:
        found = samples(self.registers, buffer, spans)
        self.counters.unmapped += found.unmapped
        return found

    def _records(self, out: _Out) -> RecordBatch:
        if not out.register:
            return RecordBatch.empty(TELEMETRY)
        register = np.concatenate(out.register)
        value = np.concatenate(out.value)
        quality = np.where(np.isfinite(value), np.concatenate(out.quality), NOT_A_NUMBER)
        self.counters.samples += len(register)
        return RecordBatch.build(
            TELEMETRY,
            {
                "ts": np.concatenate(out.ts),
                "site": self.site,
                "device": self.registers.device[register],
                "variable": self.registers.variable[register],
                "value": value,
                "quality": quality.astype(np.int8),
            },
            length=len(register),
        )


@dataclass(frozen=True, slots=True)
class _Answers:
    """The read answers of a batch, found by label (`rows`: the batch rows labelled from `first`)."""

    batch: PacketBatch
    layers: Layers
    modbus: ModbusBatch
    rows: Int64s
    first: int

    @property
    def buffer(self) -> npt.NDArray[np.uint8]:
        return self.batch.buffer

    def values(self, labels: Int64s) -> tuple[Int64s, Int64s, Int64s]:
        """Per answer: where its values start in the buffer (-1 not there whole, -2 malformed),
        its time, its byte count."""
        rows = self.rows[labels - self.first]
        c, layers = self.modbus.columns, self.layers
        position = adu_positions(
            self.batch.buffer, layers.payload_offset, layers.payload_length, self.modbus, rows
        )
        position[c.finding[rows] != ModbusFinding.OK] = -2
        data = np.where(position >= 0, position + READ_DATA, position)
        return data, self.batch.ts_ns[self.modbus.packet[rows]], c.byte_count[rows].astype(np.int64)


def _positions(values: Int64s, wanted: Int64s) -> Int64s:
    """Where each of `wanted` is in `values` (each present, `values` without repeats but -1)."""
    order = np.argsort(values, kind="stable")
    found: Int64s = order[np.searchsorted(values, wanted, sorter=order)]
    return found
