"""Telemetry samples pushed into the records plane: validation, writing, querying.

A sample is (time, device, variable, value, quality) at one site, stored as a row of the records
plane's `telemetry` kind. Pushed samples come from the network (the API, a file, an MQTT broker),
so each one is checked before anything is written:

- the site is a plant-model site id (1-63 lower-case letters, digits and inner hyphens); it need
  not be declared yet, as with the sensor's records;
- device and variable are 1-128 characters without control characters or lone surrogates (which
  JSON can carry and no database can store);
- the value is a finite number, or missing: `null` (or NaN) is stored as NaN and means "no value"
  (its quality is then at least 1 unless given); an infinity is refused, and so is text that is not
  a decimal number in ASCII digits (`float()` would take '1_000' as 1000);
- the time is an ISO 8601 string (UTC unless it carries an offset; up to nine fractional digits,
  kept to the nanosecond) or an integer of nanoseconds since the Unix epoch, from 2000-01-01 up to
  one day after the receiver's clock (an integer that looks like seconds or milliseconds is refused
  with that hint);
- quality is an integer 0-127: 0 good, above 0 questionable or bad in the source's own terms.

Writing goes through one `RecordWriter` under a writer name; a partition has one writer at a
time, so an ingest that finds its partition held (another process, or another request of this
one, using the same name) waits for it, a few seconds at most, and each batch is split by
partition first so that a wait never writes a row twice.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plantwarden.core.clock import SECOND_NS, iso_nanoseconds, iso_time
from plantwarden.core.errors import Conflict, InvalidInput
from plantwarden.core.parsing import INTEGER, NUMBER
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.partitions import PartitionBackend, check_writer_name
from plantwarden.core.records.plane import RecordQuery, RecordWriter, query
from plantwarden.core.records.schema import TELEMETRY
from plantwarden.zones.services import SLUG

DAY_NS = 86_400 * SECOND_NS
EARLIEST_NS = 946_684_800 * SECOND_NS  # 2000-01-01T00:00:00Z
LATEST_NS = 2**63 - 1
MAX_NAME = 128
MAX_QUALITY = 127
MISSING_QUALITY = 1
FIELDS = ("ts", "device", "variable", "value", "quality")


@dataclass(frozen=True, slots=True)
class Sample:
    """One checked telemetry sample (the site is the batch's)."""

    ts_ns: int
    device: str
    variable: str
    value: float
    quality: int = 0


def check_site(site: object) -> str:
    """The site id, or InvalidInput saying what a site id looks like."""
    if not isinstance(site, str) or not SLUG.fullmatch(site):
        raise InvalidInput(
            f"site {site!r} is not a site id: 1-63 lower-case letters, digits and inner hyphens"
        )
    return site


def parse_time(value: object, now_ns: int) -> int:
    """A sample time (ISO 8601 text, or integer nanoseconds since the epoch) as nanoseconds."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("ts must be ISO 8601 text or an integer of nanoseconds since the epoch")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise InvalidInput("ts must be ISO 8601 text or an integer of nanoseconds since the epoch")
        if INTEGER.fullmatch(text):
            return parse_time(int(text), now_ns)
        try:
            ns = iso_nanoseconds(text)
        except ValueError as error:
            raise InvalidInput(f"ts {value[:40]!r} {error}") from None
    else:
        ns = value
    if ns < EARLIEST_NS:
        hint = " (it looks like seconds or milliseconds: give nanoseconds)" if 0 < ns < EARLIEST_NS else ""
        raise InvalidInput(f"ts {value!r} is before 2000-01-01{hint}")
    if ns > now_ns + DAY_NS:
        raise InvalidInput(f"ts {value!r} is more than a day ahead of this receiver's clock")
    return int(ns)


def _name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{kind} must be non-empty text")
    if len(value) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{kind} must be at most {MAX_NAME} characters without control characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800") cannot be stored
        raise InvalidInput(f"{kind} must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def _value(value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput("value must be a number (or null when missing)")
    if isinstance(value, str) and not NUMBER.fullmatch(value.strip()):
        raise InvalidInput(f"value {value[:40]!r} is not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InvalidInput(f"value {str(value)[:40]!r} is not a number") from None
    if math.isinf(number):
        raise InvalidInput("value must be finite (use null for a missing value)")
    return number


def _quality(value: object, missing: bool) -> int:
    if value is None or value == "":
        return MISSING_QUALITY if missing else 0
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()) and len(value) < 8:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUALITY:
        raise InvalidInput(f"quality must be an integer 0-{MAX_QUALITY} (0 good)")
    return value


def sample_from(raw: Mapping[str, Any], now_ns: int) -> Sample:
    """A checked sample from its fields (ts, device, variable, value, quality optional)."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a sample must be an object with ts, device, variable, value")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    missing = [name for name in FIELDS[:4] if name not in raw]
    if unknown or missing:
        raise InvalidInput(f"missing fields {missing}, unknown fields {unknown[:5]}")
    value = _value(raw["value"])
    return Sample(
        ts_ns=parse_time(raw["ts"], now_ns),
        device=_name("device", raw["device"]),
        variable=_name("variable", raw["variable"]),
        value=value,
        quality=_quality(raw.get("quality"), math.isnan(value)),
    )


@functools.lru_cache(maxsize=8192)
def checked_name(kind: str, value: str) -> str:
    """`value` as a device or variable name (checked once per distinct name: they repeat)."""
    return _name(kind, value)


def samples_of_values(device: str, ts_ns: int, values: Mapping[str, object], now_ns: int) -> list[Sample]:
    """The samples of one device's values at one time (a message that carries several), checked as
    `sample_from` checks each, with each distinct name checked once."""
    ts = parse_time(ts_ns, now_ns)
    checked_device = checked_name("device", device)
    samples = []
    for name, raw in values.items():
        value = _value(raw)
        variable = checked_name("variable", name) if isinstance(name, str) else _name("variable", name)
        quality = MISSING_QUALITY if math.isnan(value) else 0
        samples.append(Sample(ts, checked_device, variable, value, quality))
    return samples


def samples_from(raws: Sequence[Any], now_ns: int) -> list[Sample]:
    """Checked samples; the first bad one is refused with its index (counted from 0)."""
    samples = []
    for index, raw in enumerate(raws):
        try:
            samples.append(sample_from(raw, now_ns))
        except InvalidInput as error:
            raise InvalidInput(f"sample {index}: {error.message}", details={"index": index}) from None
    return samples


def to_batch(site: str, samples: Sequence[Sample]) -> RecordBatch:
    """The samples as a `telemetry` batch of one site."""
    devices = np.empty(len(samples), dtype=object)
    devices[:] = [s.device for s in samples]
    variables = np.empty(len(samples), dtype=object)
    variables[:] = [s.variable for s in samples]
    columns = {
        "ts": np.fromiter((s.ts_ns for s in samples), dtype=np.int64, count=len(samples)),
        "site": check_site(site),
        "device": devices,
        "variable": variables,
        "value": np.fromiter((s.value for s in samples), dtype=np.float64, count=len(samples)),
        "quality": np.fromiter((s.quality for s in samples), dtype=np.int8, count=len(samples)),
    }
    return RecordBatch.build(TELEMETRY, columns, length=len(samples))


_NAME_LOCKS: dict[str, threading.Lock] = {}
_NAME_LOCKS_GUARD = threading.Lock()


def _partly_stored(problem: str, stored: int, total: int, since: str) -> str:
    """The message of a write that stopped at a partition after storing earlier ones: a partition
    is written whole or not at all, and the samples go in time order, so exactly those before the
    partition's start are stored."""
    return (
        f"{problem}; samples of earlier hours in this push may already be stored: {stored} of "
        f"{total} (every sample before {since}) are; push again only the samples from {since} on, "
        "or those are stored twice"
    )


def _name_lock(name: str) -> threading.Lock:
    with _NAME_LOCKS_GUARD:
        return _NAME_LOCKS.setdefault(name, threading.Lock())


class TelemetryIngest:
    """Writes telemetry batches through one `RecordWriter` named `name`, holding the name in this
    process until `close()` (other holders of the name wait, `wait_seconds` at most)."""

    def __init__(
        self,
        backend: PartitionBackend,
        name: str,
        *,
        partition_seconds: int = 3600,
        chunk_rows: int = 16384,
        wait_seconds: float = 30.0,
    ) -> None:
        check_writer_name(name)
        self.name = name
        self.wait_seconds = wait_seconds
        self._partition_ns = partition_seconds * SECOND_NS
        self._lock = _name_lock(name)
        if not self._lock.acquire(timeout=wait_seconds):
            raise Conflict(f"telemetry writer {name!r} is busy in this process; try again")
        self._writer = RecordWriter(backend, name, partition_seconds=partition_seconds, chunk_rows=chunk_rows)
        self.written = 0

    def write(self, site: str, samples: Sequence[Sample]) -> int:
        """Store the samples (durable when this returns); the number stored."""
        if not samples:
            return 0
        batch = to_batch(site, samples).sorted_by_time()
        starts = batch["ts"] // self._partition_ns
        stored = 0
        for start in np.unique(starts):
            part = batch.take(starts == start)
            try:
                self._write_one_partition(part)
            except Conflict as error:
                if not stored:
                    raise
                raise Conflict(
                    _partly_stored(
                        error.message, stored, len(batch), iso_time(int(start) * self._partition_ns)
                    ),
                    details={"stored": stored},
                ) from None
            stored += len(part)
            self.written += len(part)
        return len(batch)

    def _write_one_partition(self, part: RecordBatch) -> None:
        """Write the rows of one partition, waiting for it while another writer holds it."""
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.02
        while True:
            try:
                self._writer.write(part)
                return
            except Conflict:  # held by another process under this name: nothing of `part` written
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def close(self) -> None:
        """Make the partitions durable and compact, and let the name go."""
        try:
            self._writer.close()
        finally:
            if self._lock.locked():
                self._lock.release()

    def __enter__(self) -> TelemetryIngest:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class SampleQuery:
    """Which samples to read: one site, optionally one device and variable, a time range."""

    site: str
    device: str | None = None
    variable: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int = 1000
    newest_first: bool = True


def query_samples(backend: PartitionBackend, request: SampleQuery) -> RecordBatch:
    """Samples matching `request`, newest first (or oldest first), at most `limit`; without a
    range, all of them."""
    check_site(request.site)
    start = min(max(request.since_ns or 0, 0), LATEST_NS)  # storable: a signed 64-bit integer
    end = min(max(request.until_ns if request.until_ns is not None else LATEST_NS, 0), LATEST_NS)
    if end <= start:
        raise InvalidInput("until must be after since")
    return query(
        backend,
        RecordQuery(
            kind=TELEMETRY.name,
            start_ns=start,
            end_ns=end,
            site=request.site,
            device=request.device,
            variable=request.variable,
            limit=request.limit,
            newest_first=request.newest_first,
        ),
    )


def sample_rows(batch: RecordBatch) -> Iterator[dict[str, Any]]:
    """Rows for display and JSON: ts in ISO 8601 and in nanoseconds, a missing value as None."""
    for row in batch.rows():
        value = row["value"]
        yield {
            "ts": iso_time(row["ts"]),
            "ts_ns": row["ts"],
            "device": row["device"],
            "variable": row["variable"],
            "value": None if math.isnan(value) else value,
            "quality": row["quality"],
        }
