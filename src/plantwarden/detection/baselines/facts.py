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
| `written_range` | server, unit, protocol, table | register/object intervals written, merged |
| `polling` | client, server, protocol, function, unit, address | median read interval (ns), intervals |
| `setpoint` | server, unit, address, table | least and greatest value written |

`table` is the address space written (`keys.TABLES`): a Modbus coil 5 and holding register 5 are
two addresses, told apart by the write's function code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import ADDRESS_DTYPE, Operation, Protocol, address_text
from plantwarden.detection.baselines.grouping import (
    Groups,
    group,
    medians,
    merged_per_group,
    times,
)
from plantwarden.detection.baselines.keys import KEY_FIELDS as KEY_FIELDS
from plantwarden.detection.baselines.keys import MODBUS_TABLES, TABLE_CODES
from plantwarden.detection.baselines.keys import FactKey as FactKey
from plantwarden.detection.baselines.keys import FactKind as FactKind
from plantwarden.detection.baselines.keys import Observation as Observation
from plantwarden.detection.baselines.keys import Observations as Observations
from plantwarden.detection.baselines.keys import Part as Part
from plantwarden.detection.baselines.keys import Plain as Plain

Array = npt.NDArray[Any]
Mask = npt.NDArray[np.bool_]


class AddressTexts:
    """Address text by 16-byte value, cached across batches (a plant has few addresses; the
    shared cache is emptied when it reaches `LIMIT` entries)."""

    LIMIT: ClassVar[int] = 1 << 16
    shared: ClassVar[dict[bytes, str]] = {}

    def __init__(self) -> None:
        self.cache = AddressTexts.shared

    def __call__(self, packed: Any) -> str:
        raw = bytes(packed).rstrip(b"\0")
        text = self.cache.get(raw)
        if text is None:
            text = self._miss(raw)
        return text

    def many(self, packed: Array) -> list[str]:
        """The texts of an array of 16-byte addresses (numpy strips their trailing zero bytes)."""
        get = self.cache.get
        return [get(raw) or self._miss(raw) for raw in packed.tolist()]

    def _miss(self, raw: bytes) -> str:
        if len(self.cache) >= self.LIMIT:
            self.cache.clear()
        text = self.cache[raw] = address_text(raw.ljust(16, b"\0"))
        return text


def observe(batch: RecordBatch, outside_safe: Mask | None = None) -> Observations:
    """Every fact the batch shows (protocol records, read aggregates or flows), per site.
    `outside_safe`: per record, whether it writes a register outside the plant model's safe
    range (`rules.setpoints.PlantSafeRanges`), counted into the setpoint facts."""
    if not len(batch) or batch.kind.name not in ("protocol", "protocol_read_minutes", "flows"):
        return Observations([])
    texts = AddressTexts()
    found: list[Plain | list[Observation]] = []
    sites = batch["site"]
    names = [str(s) for s in np.unique(sites.astype(str))]
    for site in names:
        part = batch if len(names) == 1 else batch.take(sites.astype(str) == site)
        rows = np.arange(len(batch)) if len(names) == 1 else np.flatnonzero(sites.astype(str) == site)
        unsafe = None if outside_safe is None else outside_safe[rows]
        found.extend(_observe_site(part, site, rows, texts, unsafe))
    return Observations(found)


def _observe_site(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, outside_safe: Mask | None
) -> Iterator[Plain | list[Observation]]:
    kind = batch.kind.name
    ts = batch["first_ts"] if kind == "protocol_read_minutes" else batch["ts"]
    segments = batch["segment"]
    everything = np.ones(len(batch), dtype=bool)
    yield _assets(batch, site, ts, rows, texts)
    yield _keyed(batch, site, ts, rows, texts, FactKind.EDGE, everything, segments)
    if kind == "flows":
        return
    operation = (
        batch["operation"] if kind == "protocol" else np.full(len(batch), int(Operation.READ), dtype=np.uint8)
    )
    yield _keyed(batch, site, ts, rows, texts, FactKind.SERVICE, everything, segments, operation)
    if kind == "protocol":
        writes = operation == int(Operation.WRITE)
        yield list(
            _written(batch, site, rows, texts, writes & (batch["address"] >= 0) & (batch["quantity"] > 0))
        )
        with np.errstate(invalid="ignore"):
            valued = writes & (batch["address"] >= 0) & np.isfinite(batch["value"])
        yield list(_setpoints(batch, site, rows, texts, valued, outside_safe))
        yield list(_polling_records(batch, site, rows, texts, operation == int(Operation.READ)))
    else:
        yield list(_polling_minutes(batch, site, rows, texts))


def _assets(batch: RecordBatch, site: str, ts: Array, rows: Array, texts: AddressTexts) -> Plain:
    both = np.concatenate([batch["src_addr"], batch["dst_addr"]]).astype(ADDRESS_DTYPE)
    stamps = np.concatenate([ts, ts])
    unique, groups = group([both])
    low, high = times(stamps, groups, len(unique))
    firsts = groups.first % len(batch)
    packed = unique["f0"]
    lows, highs, counts = low.tolist(), high.tolist(), groups.counts.tolist()

    def key(g: int) -> FactKey:
        return FactKey(FactKind.ASSET, site, (texts(packed[g]),))

    def make(g: int, fact: FactKey) -> Observation:
        first = int(firsts[g])
        address = str(fact.parts[0])
        segment = str(batch["segment"][first])
        return Observation(fact, {}, lows[g], highs[g], counts[g], address, None, segment, int(rows[first]))

    return Plain(FactKind.ASSET, site, _raw(unique), highs, counts, key, make)


def _texts(values: Array) -> list[str]:
    """An array's items as text (segments are text already: no conversion then)."""
    items = values.tolist()
    return items if all(type(item) is str for item in items) else [str(item) for item in items]


def _raw(unique: Array) -> list[bytes]:
    """Each distinct row's bytes: a key's exact identity within its kind and site."""
    raws: list[bytes] = unique.view(np.dtype((np.void, unique.dtype.itemsize))).tolist()
    return raws


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
) -> Plain:
    """Edges (and services, with the function and the operation): client = source, server =
    destination, as the records plane stores requests and flows."""
    picked = np.flatnonzero(mask)
    columns = [batch[c][picked] for c in ("src_addr", "dst_addr", "transport", "dst_port", "protocol")]
    service = kind is FactKind.SERVICE
    if service:
        columns.append(batch["function"][picked])
        columns.append(operation[picked] if operation is not None else np.zeros(len(picked), np.uint8))
    unique, groups = group(columns)
    low, high = times(ts[picked], groups, len(unique))
    firsts = picked[groups.first]
    lows, highs, counts = low.tolist(), high.tolist(), groups.counts.tolist()
    names = unique.dtype.names or ()
    fields = [unique[name] for name in names]

    def key(g: int) -> FactKey:
        client, server = texts(fields[0][g]), texts(fields[1][g])
        parts: tuple[Part, ...] = (client, server, *(int(f[g]) for f in fields[2 : 6 if service else 5]))
        return FactKey(kind, site, parts)

    def make(g: int, fact: FactKey) -> Observation:
        value = {"operation": Operation(int(fields[6][g])).name.lower()} if service else {}
        client, server = str(fact.parts[0]), str(fact.parts[1])
        first = int(firsts[g])
        where, segment = int(rows[first]), str(segments[first])
        return Observation(fact, value, lows[g], highs[g], counts[g], server, client, segment, where)

    return Plain(kind, site, _raw(unique), highs, counts, key, make)


def tables(batch: RecordBatch, picked: Array) -> Array:
    """The address space (`keys.TABLE_CODES` index) each picked record writes: by the Modbus
    function code, 0 for another protocol (or a Modbus function that names none)."""
    codes = np.zeros(len(picked), dtype=np.uint8)
    modbus = batch["protocol"][picked] == int(Protocol.MODBUS)
    functions = batch["function"][picked]
    for function, code in MODBUS_TABLES.items():
        codes[modbus & (functions == function)] = code
    return codes


def _written(
    batch: RecordBatch, site: str, rows: Array, texts: AddressTexts, mask: Mask
) -> Iterator[Observation]:
    picked = np.flatnonzero(mask)
    if not len(picked):
        return
    columns = [*(batch[c][picked] for c in ("dst_addr", "unit", "protocol")), tables(batch, picked)]
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
            FactKey(
                FactKind.WRITTEN_RANGE, site, (server, fields[1][g], fields[2][g], TABLE_CODES[fields[3][g]])
            ),
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
    unique, groups = group(
        [*(batch[c][picked] for c in ("dst_addr", "unit", "address")), tables(batch, picked)]
    )
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
            FactKey(FactKind.SETPOINT, site, (server, int(item[1]), int(item[2]), TABLE_CODES[int(item[3])])),
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
    names = unique.dtype.names or ()
    clients, servers = texts.many(unique[names[0]]), texts.many(unique[names[1]])
    protocols, functions, units, addresses = (unique[name].tolist() for name in names[2:6])
    where, segments = rows[firsts].tolist(), _texts(batch["segment"][firsts])
    medians_, intervals_ = middles.astype(np.int64).tolist(), intervals.astype(np.int64).tolist()
    lows, highs, counts = low.tolist(), high.tolist(), groups.counts.tolist()
    polling = FactKind.POLLING
    for g, server in enumerate(servers):
        client = clients[g]
        yield Observation(
            FactKey(polling, site, (client, server, protocols[g], functions[g], units[g], addresses[g])),
            {"median_ns": medians_[g], "intervals": intervals_[g]},
            lows[g],
            highs[g],
            counts[g],
            server,
            client,
            segments[g],
            where[g],
        )
