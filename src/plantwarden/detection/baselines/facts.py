"""The kinds of learned fact and their keys, computed from record batches with numpy.

A batch (protocol records, read aggregates or flows) is cut into *observations*: one per distinct
fact key, with its first and last time, how many records showed it, the row of its first record,
and what it says about the fact's value. Grouping is one `np.unique` over a structured array of
the key's columns; Python only loops over the distinct keys, never over records.

| kind | key (every key carries the site) | value |
|---|---|---|
| `asset` | address | - |
| `edge` | client, server, transport, server port, protocol | - |
| `service` | edge + function code | the operation |
| `written_range` | server, unit, protocol | register/object intervals written, merged |
| `polling` | client, server, protocol, function, unit, address | median read interval (ns), intervals |
| `setpoint` | server, unit, address | least and greatest value written |
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import ADDRESS_DTYPE, Operation, address_text
from plantwarden.detection.baselines.grouping import (
    Groups,
    group,
    medians,
    merged_per_group,
    times,
)

Array = npt.NDArray[Any]
Part = str | int
Mask = npt.NDArray[np.bool_]


class FactKind(enum.StrEnum):
    """The kinds of learned fact."""

    ASSET = "asset"
    EDGE = "edge"
    SERVICE = "service"
    WRITTEN_RANGE = "written_range"
    POLLING = "polling"
    SETPOINT = "setpoint"


KEY_FIELDS: dict[FactKind, tuple[str, ...]] = {
    FactKind.ASSET: ("address",),
    FactKind.EDGE: ("client", "server", "transport", "port", "protocol"),
    FactKind.SERVICE: ("client", "server", "transport", "port", "protocol", "function"),
    FactKind.WRITTEN_RANGE: ("server", "unit", "protocol"),
    FactKind.POLLING: ("client", "server", "protocol", "function", "unit", "address"),
    FactKind.SETPOINT: ("server", "unit", "address"),
}


@dataclass(frozen=True, slots=True)
class FactKey:
    """One fact's identity: its kind, its site and the values of its key fields."""

    kind: FactKind
    site: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The key as stored: the parts joined with `|` (addresses as text)."""
        return "|".join(str(part) for part in self.parts)

    def named(self) -> dict[str, Part]:
        """The key's parts by field name."""
        return dict(zip(KEY_FIELDS[self.kind], self.parts, strict=True))

    @classmethod
    def parse(cls, kind: str, site: str, text: str) -> FactKey:
        """The key stored as `text` (numbers come back as ints, addresses as text)."""
        fact_kind = FactKind(kind)
        raw = text.split("|")
        if len(raw) != len(KEY_FIELDS[fact_kind]):
            raise ValueError(f"a {kind} key has {len(KEY_FIELDS[fact_kind])} parts, not {len(raw)}: {text!r}")
        parts = tuple(_part(name, value) for name, value in zip(KEY_FIELDS[fact_kind], raw, strict=True))
        return cls(fact_kind, site, parts)


def _part(name: str, value: str) -> Part:
    return value if name in ("address", "client", "server") and not _is_int(value) else int(value)


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


@dataclass(slots=True)
class Observation:
    """A fact as one batch shows it. `value` holds what the records say about the fact's value
    (empty for assets and edges); `server`/`client` are the addresses it is about (for its
    scopes), `row` the batch row of its first record (for evidence)."""

    key: FactKey
    value: dict[str, Any]
    first_ns: int
    last_ns: int
    count: int
    server: str
    client: str | None
    segment: str
    row: int
    samples: list[dict[str, Any]] = field(default_factory=list)


class AddressTexts:
    """Address text by 16-byte value, cached: a batch has few distinct addresses."""

    def __init__(self) -> None:
        self.cache: dict[bytes, str] = {}

    def __call__(self, packed: Any) -> str:
        raw = bytes(packed).ljust(16, b"\0")
        text = self.cache.get(raw)
        if text is None:
            text = self.cache[raw] = address_text(raw)
        return text


def observe(batch: RecordBatch, outside_safe: Mask | None = None) -> list[Observation]:
    """Every fact the batch shows (protocol records, read aggregates or flows), per site.
    `outside_safe`: per record, whether it writes a register outside the plant model's safe
    range (`rules.setpoints.PlantSafeRanges`), counted into the setpoint facts."""
    if not len(batch) or batch.kind.name not in ("protocol", "protocol_read_minutes", "flows"):
        return []
    texts = AddressTexts()
    found: list[Observation] = []
    sites = batch["site"]
    names = [str(s) for s in np.unique(sites.astype(str))]
    for site in names:
        part = batch if len(names) == 1 else batch.take(sites.astype(str) == site)
        rows = np.arange(len(batch)) if len(names) == 1 else np.flatnonzero(sites.astype(str) == site)
        unsafe = None if outside_safe is None else outside_safe[rows]
        found.extend(_observe_site(part, site, rows, texts, unsafe))
    return found


def _observe_site(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, outside_safe: Mask | None
) -> Iterator[Observation]:
    kind = batch.kind.name
    ts = batch["first_ts"] if kind == "protocol_read_minutes" else batch["ts"]
    segments = batch["segment"]
    everything = np.ones(len(batch), dtype=bool)
    yield from _assets(batch, site, ts, rows, texts)
    yield from _keyed(batch, site, ts, rows, texts, FactKind.EDGE, everything, segments)
    if kind == "flows":
        return
    operation = (
        batch["operation"] if kind == "protocol" else np.full(len(batch), int(Operation.READ), dtype=np.uint8)
    )
    yield from _keyed(batch, site, ts, rows, texts, FactKind.SERVICE, everything, segments, operation)
    if kind == "protocol":
        writes = operation == int(Operation.WRITE)
        yield from _written(
            batch, site, rows, texts, writes & (batch["address"] >= 0) & (batch["quantity"] > 0)
        )
        with np.errstate(invalid="ignore"):
            valued = writes & (batch["address"] >= 0) & np.isfinite(batch["value"])
        yield from _setpoints(batch, site, rows, texts, valued, outside_safe)
        yield from _polling_records(batch, site, rows, texts, operation == int(Operation.READ))
    else:
        yield from _polling_minutes(batch, site, rows, texts)


def _assets(
    batch: RecordBatch, site: str, ts: Array, rows: Array, texts: AddressTexts
) -> Iterator[Observation]:
    both = np.concatenate([batch["src_addr"], batch["dst_addr"]]).astype(ADDRESS_DTYPE)
    stamps = np.concatenate([ts, ts])
    unique, groups = group([both])
    low, high = times(stamps, groups, len(unique))
    n = len(batch)
    for g, item in enumerate(unique):
        first = int(groups.first[g]) % n
        address = texts(item[0])
        yield Observation(
            FactKey(FactKind.ASSET, site, (address,)),
            {},
            int(low[g]),
            int(high[g]),
            int(groups.counts[g]),
            address,
            None,
            str(batch["segment"][first]),
            int(rows[first]),
        )


def _keyed(
    batch: RecordBatch,
    site: str,
    ts: Array,
    rows: Array,
    texts: AddressTexts,
    kind: FactKind,
    mask: Mask,
    segments: Array,
    operation: Array | None = None,
) -> Iterator[Observation]:
    """Edges (and services, with the function and the operation): client = source, server =
    destination, as the records plane stores requests and flows."""
    picked = np.flatnonzero(mask)
    columns = [batch[c][picked] for c in ("src_addr", "dst_addr", "transport", "dst_port", "protocol")]
    if kind is FactKind.SERVICE:
        columns.append(batch["function"][picked])
        columns.append(operation[picked] if operation is not None else np.zeros(len(picked), np.uint8))
    unique, groups = group(columns)
    low, high = times(ts[picked], groups, len(unique))
    fields = [unique[name].tolist() for name in unique.dtype.names or ()]
    firsts = picked[groups.first]
    where, segment_of = rows[firsts].tolist(), segments[firsts].tolist()
    lows, highs, counts = low.tolist(), high.tolist(), groups.counts.tolist()
    service = kind is FactKind.SERVICE
    operations = {code: Operation(code).name.lower() for code in set(fields[6])} if service else {}
    for g in range(len(unique)):
        client, server = texts(fields[0][g]), texts(fields[1][g])
        parts: tuple[Part, ...] = (client, server, fields[2][g], fields[3][g], fields[4][g])
        value: dict[str, Any] = {}
        if service:
            parts = (*parts, fields[5][g])
            value = {"operation": operations[fields[6][g]]}
        yield Observation(
            FactKey(kind, site, parts),
            value,
            lows[g],
            highs[g],
            counts[g],
            server,
            client,
            str(segment_of[g]),
            where[g],
        )


def _written(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, mask: Mask
) -> Iterator[Observation]:
    picked = np.flatnonzero(mask)
    if not len(picked):
        return
    columns = [batch[c][picked] for c in ("dst_addr", "unit", "protocol")]
    unique, groups = group(columns)
    low, high = times(batch["ts"][picked], groups, len(unique))
    starts = batch["address"][picked].astype(np.int64)
    ends = starts + batch["quantity"][picked].astype(np.int64) - 1
    merged = merged_per_group(groups.inverse, starts, ends, len(unique))
    fields = [unique[name].tolist() for name in unique.dtype.names or ()]
    firsts = picked[groups.first]
    clients = batch["src_addr"][firsts]
    for g in range(len(unique)):
        server = texts(fields[0][g])
        yield Observation(
            FactKey(FactKind.WRITTEN_RANGE, site, (server, fields[1][g], fields[2][g])),
            {"ranges": merged[g]},
            int(low[g]),
            int(high[g]),
            int(groups.counts[g]),
            server,
            texts(clients[g]),
            str(batch["segment"][firsts[g]]),
            int(rows[firsts[g]]),
        )


def _setpoints(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, mask: Mask, outside_safe: Mask | None
) -> Iterator[Observation]:
    picked = np.flatnonzero(mask)
    if not len(picked):
        return
    unique, groups = group([batch[c][picked] for c in ("dst_addr", "unit", "address")])
    ts, values = batch["ts"][picked], batch["value"][picked]
    low, high = times(ts, groups, len(unique))
    least = np.full(len(unique), np.inf)
    most = np.full(len(unique), -np.inf)
    np.minimum.at(least, groups.inverse, values)
    np.maximum.at(most, groups.inverse, values)
    unsafe = (
        np.zeros(len(unique), dtype=np.int64)
        if outside_safe is None
        else np.bincount(groups.inverse, weights=outside_safe[picked], minlength=len(unique))
    )
    for g, item in enumerate(unique):
        first = int(picked[groups.first[g]])
        server = texts(item[0])
        yield Observation(
            FactKey(FactKind.SETPOINT, site, (server, int(item[1]), int(item[2]))),
            {"min": float(least[g]), "max": float(most[g]), "outside_safe": int(unsafe[g])},
            int(low[g]),
            int(high[g]),
            int(groups.counts[g]),
            server,
            texts(batch["src_addr"][first]),
            str(batch["segment"][first]),
            int(rows[first]),
        )


POLL_FIELDS = ("src_addr", "dst_addr", "protocol", "function", "unit", "address")


def _polling_records(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, mask: Mask
) -> Iterator[Observation]:
    """Per polling key, the median interval between consecutive reads of the batch (0 intervals
    when the batch holds one read of it: the learner adds the gap since the batch before)."""
    picked = np.flatnonzero(mask)
    if not len(picked):
        return
    unique, groups = group([batch[c][picked] for c in POLL_FIELDS])
    ts = batch["ts"][picked]
    order = np.lexsort((ts, groups.inverse))
    g_sorted, t_sorted = groups.inverse[order], ts[order]
    same = g_sorted[1:] == g_sorted[:-1]
    gaps, owners = (t_sorted[1:] - t_sorted[:-1])[same], g_sorted[1:][same]
    middles, counts = medians(gaps, owners, len(unique))
    low, high = times(ts, groups, len(unique))
    yield from _polls(
        unique, site, rows, texts, batch, picked[groups.first], middles, counts, low, high, groups
    )


def _polling_minutes(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts
) -> Iterator[Observation]:
    """Per polling key, the median over the minutes of each minute's mean interval
    ((last_ts - first_ts) / (requests - 1), minutes with two requests or more)."""
    requests = batch["requests"]
    picked = np.flatnonzero(requests >= 2)
    if not len(picked):
        return
    unique, groups = group([batch[c][picked] for c in POLL_FIELDS])
    spans = (batch["last_ts"][picked] - batch["first_ts"][picked]) // (requests[picked] - 1)
    middles, _ = medians(spans, groups.inverse, len(unique))
    intervals = np.bincount(groups.inverse, weights=requests[picked] - 1, minlength=len(unique))
    low, high = times(batch["first_ts"][picked], groups, len(unique))
    yield from _polls(
        unique, site, rows, texts, batch, picked[groups.first], middles, intervals, low, high, groups
    )


def _polls(
    unique: Array,
    site: str,
    rows: Array,
    texts: AddressTexts,
    batch: RecordBatch,
    firsts: Array,
    middles: Array,
    intervals: Array,
    low: Array,
    high: Array,
    groups: Groups,
) -> Iterator[Observation]:
    fields = [unique[name].tolist() for name in unique.dtype.names or ()]
    where, segments = rows[firsts].tolist(), batch["segment"][firsts].tolist()
    medians_, intervals_ = middles.astype(np.int64).tolist(), intervals.astype(np.int64).tolist()
    lows, highs, counts = low.tolist(), high.tolist(), groups.counts.tolist()
    for g in range(len(unique)):
        client, server = texts(fields[0][g]), texts(fields[1][g])
        parts: tuple[Part, ...] = (client, server, fields[2][g], fields[3][g], fields[4][g], fields[5][g])
        yield Observation(
            FactKey(FactKind.POLLING, site, parts),
            {"median_ns": medians_[g], "intervals": intervals_[g]},
            lows[g],
            highs[g],
            counts[g],
            server,
            client,
            str(segments[g]),
            where[g],
        )
