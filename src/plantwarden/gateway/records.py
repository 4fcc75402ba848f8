"""Every request through the gateway and its decision, as records of the records plane.

One row per request (and one per dropped connection: a frame that broke the stream, a refused
client), written in batches by one `RecordWriter` (writer name `gateway-<site>`), kind
`gateway_requests`: the protocol record's columns, plus whether it was allowed, the rule and the
snapshot version that decided, the subject and its certificate's device, and the asset.
`RecordBuffer.add` is cheap (appends to lists); `flush` builds the batch and writes it, from a
worker thread of the server every second or every `max_rows` rows. A batch that cannot be written
(the records' disk full or gone) stays in memory and is written with the next flush, up to
`max_pending` rows; beyond, the oldest are dropped and counted in `dropped` (and logged). A write
that failed part-way may store the part that succeeded twice.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from plantwarden.core.records import chunks
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.schema import ADDRESS_DTYPE, GATEWAY_REQUESTS, TEXT

log = logging.getLogger(__name__)
MAX_PENDING = 500_000
"""Rows kept while the records cannot be written (about 200 MB; minutes of a busy gateway)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The site and both ends of a client's connection to the gateway (the PLC a request went
    to is the row's `asset`)."""

    site: str
    segment: str
    src: bytes
    src_port: int
    dst: bytes
    dst_port: int


def packed(address: str) -> bytes:
    """The 16-byte records-plane form of an address (unparsable: all zeros)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return bytes(16)
    if isinstance(parsed, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{parsed}").packed
    return parsed.packed


_ROW = ("ts", "site", "segment", "src_addr", "dst_addr", "src_port", "dst_port", "operation", "function",
        "unit", "address", "quantity", "status", "value", "response_ns", "allowed", "rule", "reason",
        "policy_version", "subject", "device", "asset")  # fmt: skip
_TEXT_COLUMNS = ("site", "segment", "rule", "reason", "policy_version", "subject", "device", "asset")


class RecordBuffer:
    """Rows gathered in memory (thread-safe swap), written as one batch per flush."""

    def __init__(
        self, writer: RecordWriter | None, *, max_rows: int = 4096, max_pending: int = MAX_PENDING
    ) -> None:
        self.writer = writer
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.written = 0
        self.dropped = 0
        """Rows dropped, oldest first, while writing failed and more than `max_pending` waited."""
        self._lock = threading.Lock()
        self._rows: list[tuple[object, ...]] = []
        if writer is not None:
            warm_up()

    def add(
        self,
        ts: int,
        ends: Endpoints,
        *,
        operation: int,
        function: int,
        unit: int,
        address: int,
        quantity: int,
        status: int,
        value: float,
        response_ns: int,
        allowed: bool,
        rule: str,
        reason: str,
        policy_version: str,
        subject: str,
        device: str,
        asset: str,
    ) -> bool:
        """Add a row; True when the buffer holds `max_rows` or more (time to flush)."""
        row = (ts, ends.site, ends.segment, ends.src, ends.dst, ends.src_port, ends.dst_port, operation,
               function, unit, address, quantity, status, value, response_ns, int(allowed), rule, reason,
               policy_version, subject, device, asset)  # fmt: skip
        with self._lock:
            self._rows.append(row)
            return len(self._rows) >= self.max_rows

    def __len__(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write what was gathered (blocking: call it from a thread); how many rows. When the write
        fails, the rows are kept for the next flush (see the module) and the error is raised."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            batch = _batch(rows)
            if self.writer is not None:
                self.writer.write(batch)
        except Exception:
            with self._lock:
                kept = rows + self._rows
                excess = len(kept) - self.max_pending
                if excess > 0:
                    del kept[:excess]
                    self.dropped += excess
                    log.error("%d gateway records dropped: they could not be written and more than"
                              " %d wait", excess, self.max_pending)  # fmt: skip
                self._rows = kept
            raise
        self.written += len(rows)
        return len(rows)

    def close(self) -> None:
        """Flush and make the partitions durable. Rows that still cannot be written are lost
        with the process: logged with their number."""
        try:
            self.flush()
        except Exception:
            log.exception("%d gateway records could not be written and are lost", len(self._rows))
        if self.writer is not None:
            self.writer.close()


def _batch(rows: list[tuple[object, ...]]) -> RecordBatch:
    columns: dict[str, object] = {"transport": 6, "protocol": 1}
    # zip transposes in C: a comprehension per column took 3.7 ms of 5,000 rows, holding the
    # interpreter lock the event loop waits for.
    for name, values in zip(_ROW, zip(*rows, strict=True), strict=True):
        if name in _TEXT_COLUMNS:
            columns[name] = np.array(values, dtype=TEXT)
        elif name in ("src_addr", "dst_addr"):
            columns[name] = np.array(values, dtype=ADDRESS_DTYPE)
        else:
            columns[name] = values
    return RecordBatch.build(GATEWAY_REQUESTS, columns, len(rows))


def warm_up() -> None:
    """Build and encode one row, written nowhere: the first flush would otherwise pay numpy's lazy
    imports (about 50 ms in a thread holding the interpreter lock, while the gateway serves)."""
    row = (0, "", "", bytes(16), bytes(16), 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 1, "", "", "", "", "", "")
    chunks.encode_with_keys(_batch([row]))


def read_gateway_records(backend: PartitionBackend, start_ns: int, end_ns: int) -> Iterator[RecordBatch]:
    """The gateway records stored in [start_ns, end_ns), chunk by chunk, every column (also
    `plantwarden records query gateway_requests`)."""
    for ref in backend.partitions(GATEWAY_REQUESTS.name):
        if ref.end_ns <= start_ns or ref.start_ns >= end_ns:
            continue
        for _, _, blob in backend.chunks(ref, start_ns, end_ns, []):
            batch = chunks.decode(GATEWAY_REQUESTS, blob)
            times = batch["ts"]
            yield batch.take((times >= start_ns) & (times < end_ns))
