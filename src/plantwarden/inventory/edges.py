"""Communication edges: who talks to whom, with which protocol and operations, and how well.

An `EdgeBook` takes record batches as they come (`add(batch)`): protocol records (one per
request, with its answer's status and delay), read aggregates (the storage policy's per-minute
rows of read polling) and flows. It gives two views, both sorted by their key:

- `edges()`: one `Edge` per (site, segment, client, server, protocol) with the operation
  categories seen, request count, conversations, packets and bytes, first and last seen;
- `statistics()`: one `FunctionStatistics` per (site, segment, client, server, protocol,
  function) with unanswered requests, exceptions, response time and polling period. A one-way
  request (status -2, no answer expected) is a request but never an unanswered one.

Everything is order-independent: the book keeps sums, minima, maxima and the raw values the
medians need, and computes the medians when asked, so the same records give the same answer
however they were cut into batches and in whatever order the batches came. Each request must
come once, as a raw record or inside a read aggregate, not both. See docs/inventory.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.grouping import Grouping
from plantwarden.core.records.schema import (
    FLOWS,
    NO_ANSWER_EXPECTED,
    NO_ANSWER_SEEN,
    PROTOCOL_RECORDS,
    READ_MINUTES,
    Operation,
    Protocol,
    address_text,
)

Array = npt.NDArray[Any]
EDGE_COLUMNS = ("site", "segment", "src_addr", "dst_addr", "protocol")
SERIES_COLUMNS = ("transport", "dst_port", "unit", "address", "quantity")
"""What makes requests of one client, server, protocol and function the same polled item."""
MEDIAN, P95 = 0.5, 0.95

EdgeKey = tuple[str, str, bytes, bytes, int]
FunctionKey = tuple[str, str, bytes, bytes, int, int]


@dataclass(frozen=True, slots=True)
class Edge:
    """One client talking to one server with one protocol (`Protocol.UNKNOWN` for flows of
    protocols the sensor does not decode). `services` are the (IP protocol, server port) pairs
    used; `flows`, `packets` and `bytes` count the conversations the flow records ended."""

    site: str
    segment: str
    client: str
    server: str
    protocol: Protocol
    operations: frozenset[str]
    requests: int
    first_ns: int
    last_ns: int
    flows: int
    packets: int
    bytes: int
    services: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class FunctionStatistics:
    """How one client's requests of one function to one server fared.

    `requests` counts raw and aggregated requests; `detailed` the raw ones, the only ones whose
    answer is known apart: `unanswered` (status -1, no answer seen), `exceptions` (status > 0)
    and `one_way` (status -2: requests that expect no answer, such as MQTT QoS 0 PUBLISH) come
    from them; `aggregated_errors` is the aggregates' count of unanswered and exceptions
    together. The rates divide by the requests that expected an answer, so one-way requests
    never make a function look unanswered. Response times (nearest-rank median and 95th
    percentile of the answered raw requests, `responses` of them) are None without answers;
    `period_ns` (None without two requests of one item) stands on `intervals` intervals between
    consecutive requests of one polled item. `one_way` comes last, with a default of 0, so that
    statistics built by hand need not name it; records from partitions written before status
    -2 existed hold -1 for one-way requests, which then count as unanswered."""

    site: str
    segment: str
    client: str
    server: str
    protocol: Protocol
    function: int
    requests: int
    detailed: int
    unanswered: int
    exceptions: int
    aggregated_errors: int
    responses: int
    response_median_ns: int | None
    response_p95_ns: int | None
    period_ns: int | None
    intervals: float
    one_way: int = 0

    @property
    def awaiting_answers(self) -> int:
        """The raw requests that expected an answer (all raw requests but the one-way ones)."""
        return self.detailed - self.one_way

    @property
    def exception_rate(self) -> float | None:
        """Exceptions among the raw requests that expected an answer (None without any)."""
        return self.exceptions / self.awaiting_answers if self.awaiting_answers else None

    @property
    def unanswered_rate(self) -> float | None:
        """Unanswered requests among the raw requests that expected an answer (None without any)."""
        return self.unanswered / self.awaiting_answers if self.awaiting_answers else None

    @property
    def error_rate(self) -> float:
        """Requests answered with an exception or not at all, among all requests but the raw
        one-way ones (an aggregate does not tell its one-way reads apart, if any)."""
        failed = self.unanswered + self.exceptions + self.aggregated_errors
        expected = self.requests - self.one_way
        return failed / expected if expected else 0.0


@dataclass(slots=True)
class _EdgeState:
    operations: set[int]
    services: set[tuple[int, int]]
    requests: int = 0
    first_ns: int = 2**63 - 1
    last_ns: int = -(2**63)
    flows: int = 0
    packets: int = 0
    bytes: int = 0

    def seen(self, first_ns: int, last_ns: int) -> None:
        self.first_ns = min(self.first_ns, first_ns)
        self.last_ns = max(self.last_ns, last_ns)


class EdgeBook:
    """Edges and per-function statistics, built from record batches in memory.

    Memory grows with the raw protocol records (four numbers each, kept for the medians) and
    the read aggregates (one row per polled item and minute); edges and counts are sums.
    """

    def __init__(self) -> None:
        self._edges: dict[EdgeKey, _EdgeState] = {}
        self._functions: dict[FunctionKey, int] = {}
        self._raw: list[dict[str, Array]] = []
        self._minutes: list[dict[str, Array]] = []

    def add(self, batch: RecordBatch) -> None:
        """Take one batch of protocol records, read aggregates or flows (any order, any size)."""
        if not len(batch):
            return
        if batch.kind is PROTOCOL_RECORDS:
            self._add_requests(batch)
        elif batch.kind is READ_MINUTES:
            self._add_read_minutes(batch)
        elif batch.kind is FLOWS:
            self._add_flows(batch)
        else:
            raise InvalidInput(
                f"edges are built from protocol records, read minutes and flows, not {batch.kind.name}"
            )

    def add_many(self, batches: Iterable[RecordBatch]) -> None:
        for batch in batches:
            self.add(batch)

    def edges(self) -> list[Edge]:
        """Every edge, sorted by site, segment, client, server (as 16-byte addresses) and protocol."""
        return [_edge(key, state) for key, state in sorted(self._edges.items())]

    def statistics(self) -> list[FunctionStatistics]:
        """Per function statistics, sorted like the edges, then by function code."""
        keys = sorted(self._functions.items())
        raw = _concat(self._raw, ("key", "ts", "status", "response_ns", *SERIES_COLUMNS))
        minutes = _merged_minutes(_concat(self._minutes, _MINUTE_FIELDS))
        count = len(self._functions)
        counts = {
            "requests": _sum(raw["key"], None, count) + _sum(minutes["key"], minutes["requests"], count),
            "detailed": _sum(raw["key"], None, count),
            "unanswered": _sum(raw["key"], raw["status"] == NO_ANSWER_SEEN, count),
            "exceptions": _sum(raw["key"], raw["status"] > 0, count),
            "one_way": _sum(raw["key"], raw["status"] == NO_ANSWER_EXPECTED, count),
            "aggregated_errors": _sum(minutes["key"], minutes["errors"], count),
        }
        answered = raw["response_ns"] >= 0
        responses = _by_key(raw["key"][answered], raw["response_ns"][answered].astype(np.float64), None)
        periods = _by_key(*_intervals(raw, minutes))
        return [_statistics(key, index, counts, responses, periods) for key, index in keys]

    def _function_ids(self, batch: RecordBatch) -> Array:
        keys, inverse = _distinct(batch, (*EDGE_COLUMNS, "function"))
        ids = np.array(
            [self._functions.setdefault(key, len(self._functions)) for key in keys], dtype=np.int64
        )
        return ids[inverse]

    def _add_requests(self, batch: RecordBatch) -> None:
        columns = batch.columns
        for state, rows in self._edge_groups(batch):
            state.operations.update(np.unique(columns["operation"][rows]).tolist())
            state.requests += len(rows)
            state.seen(int(columns["ts"][rows].min()), int(columns["ts"][rows].max()))
        kept = {name: columns[name] for name in ("ts", "status", "response_ns", *SERIES_COLUMNS)}
        self._raw.append({"key": self._function_ids(batch), **kept})

    def _add_read_minutes(self, batch: RecordBatch) -> None:
        columns = batch.columns
        for state, rows in self._edge_groups(batch):
            state.operations.add(Operation.READ)
            state.requests += int(columns["requests"][rows].sum())
            state.seen(int(columns["first_ts"][rows].min()), int(columns["last_ts"][rows].max()))
        kept = {name: columns[name] for name in _MINUTE_FIELDS if name != "key"}
        self._minutes.append({"key": self._function_ids(batch), **kept})

    def _add_flows(self, batch: RecordBatch) -> None:
        columns = batch.columns
        for state, rows in self._edge_groups(batch):
            state.flows += len(rows)
            state.packets += int(columns["packets"][rows].sum())
            state.bytes += int(columns["bytes"][rows].sum())
            state.seen(int(columns["ts"][rows].min()), int(columns["ts_end"][rows].max()))

    def _edge_groups(self, batch: RecordBatch) -> list[tuple[_EdgeState, Array]]:
        """The state of each edge in `batch` (created when new) with its rows; services noted."""
        keys, inverse = _distinct(batch, EDGE_COLUMNS)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
        groups = []
        for index, key in enumerate(keys):
            rows = order[bounds[index] : bounds[index + 1]]
            state = self._edges.setdefault(key, _EdgeState(set(), set()))
            services = zip(batch["transport"][rows].tolist(), batch["dst_port"][rows].tolist(), strict=True)
            state.services.update(services)
            groups.append((state, rows))
        return groups


_MINUTE_FIELDS = ("key", "ts", "requests", "errors", "first_ts", "last_ts", *SERIES_COLUMNS)


def _distinct(batch: RecordBatch, names: Sequence[str]) -> tuple[list[tuple[Any, ...]], Array]:
    """The distinct keys over the columns `names` (as Python values) and each row's key index."""
    grouping = Grouping([batch[name] for name in names])
    keys = [tuple(_plain(batch[name][row]) for name in names) for row in grouping.first.tolist()]
    return keys, grouping.inverse


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return bytes(value).ljust(16, b"\0")  # numpy strips trailing zero bytes of S16 addresses
    return value.item() if isinstance(value, np.generic) else value


def _concat(parts: list[dict[str, Array]], names: Sequence[str]) -> dict[str, Array]:
    if not parts:
        return {name: np.zeros(0, dtype=np.int64) for name in names}
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


def _sum(keys: Array, values: Array | None, count: int) -> Array:
    weights = None if values is None else values.astype(np.float64)
    return np.bincount(keys, weights, minlength=count).astype(np.int64)


def _merged_minutes(minutes: dict[str, Array]) -> dict[str, Array]:
    """Aggregates of one item and minute written by different batches, as one row each."""
    series = [minutes["key"], *(minutes[name] for name in SERIES_COLUMNS)]
    order = np.lexsort([minutes["ts"], *series[::-1]])
    ordered = {name: values[order] for name, values in minutes.items()}
    same = np.ones(len(order), dtype=bool)
    same[:1] = False
    for name in ("key", *SERIES_COLUMNS, "ts"):
        same[1:] &= ordered[name][1:] == ordered[name][:-1]
    starts = np.flatnonzero(~same)
    if not len(starts):
        return ordered
    merged = {name: values[starts] for name, values in ordered.items()}
    for name, ufunc in (
        ("requests", np.add),
        ("errors", np.add),
        ("first_ts", np.minimum),
        ("last_ts", np.maximum),
    ):
        merged[name] = ufunc.reduceat(ordered[name], starts)
    return merged


def _intervals(raw: dict[str, Array], minutes: dict[str, Array]) -> tuple[Array, Array, Array]:
    """The intervals between consecutive requests of one polled item: (function key, length in
    nanoseconds, weight). Raw records give each interval exactly. A merged minute row with n
    requests gives n - 1 intervals of its mean length (last - first) / (n - 1); the gap from
    one minute row's last request to the next row's first of the same item is exact."""
    order = np.lexsort([raw["ts"], *(raw[name] for name in SERIES_COLUMNS[::-1]), raw["key"]])
    same = _same_series(raw, order)
    times = raw["ts"][order]
    raw_keys, raw_lengths = raw["key"][order][1:][same], (times[1:] - times[:-1])[same]
    counted = minutes["requests"] > 1
    spans = (minutes["last_ts"] - minutes["first_ts"])[counted]
    within = spans / (minutes["requests"][counted] - 1)
    across = np.arange(len(minutes["key"]))  # merged rows are sorted by item, then minute
    gaps = _same_series(minutes, across)
    gap_lengths = (minutes["first_ts"][1:] - minutes["last_ts"][:-1])[gaps]
    keys = np.concatenate([raw_keys, minutes["key"][counted], minutes["key"][1:][gaps]])
    lengths = np.concatenate([raw_lengths, within, gap_lengths]).astype(np.float64)
    weights = np.concatenate(
        [np.ones(len(raw_keys)), minutes["requests"][counted] - 1, np.ones(int(gaps.sum()))]
    ).astype(np.float64)
    return keys, lengths, weights


def _same_series(columns: dict[str, Array], order: Array) -> Array:
    """For each row after the first in `order`: whether it continues the previous row's item."""
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for name in ("key", *SERIES_COLUMNS):
        values = columns[name][order]
        same &= values[1:] == values[:-1]
    return same


def _by_key(keys: Array, values: Array, weights: Array | None) -> dict[int, tuple[Array, Array]]:
    """Values (sorted) and their cumulative weights, per function key."""
    weights = np.ones(len(values)) if weights is None else weights
    order = np.lexsort([values, keys])
    keys, values, weights = keys[order], values[order], weights[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    found = {}
    for start, end in zip([0, *bounds.tolist()], [*bounds.tolist(), len(keys)], strict=True):
        if end > start:
            found[int(keys[start])] = (values[start:end], np.cumsum(weights[start:end]))
    return found


def _ranked(values: Array, cumulative: Array, share: float) -> int:
    """The nearest-rank quantile: the smallest value whose cumulative weight reaches `share`."""
    index = int(np.searchsorted(cumulative, share * cumulative[-1] - 1e-9, side="left"))
    return round(float(values[min(index, len(values) - 1)]))


def _statistics(
    key: FunctionKey,
    index: int,
    counts: dict[str, Array],
    responses: dict[int, tuple[Array, Array]],
    periods: dict[int, tuple[Array, Array]],
) -> FunctionStatistics:
    site, segment, client, server, protocol, function = key
    answered = responses.get(index)
    period = periods.get(index)
    return FunctionStatistics(
        site=site,
        segment=segment,
        client=address_text(client),
        server=address_text(server),
        protocol=Protocol(protocol),
        function=function,
        **{name: int(values[index]) for name, values in counts.items()},
        responses=0 if answered is None else len(answered[0]),
        response_median_ns=None if answered is None else _ranked(*answered, MEDIAN),
        response_p95_ns=None if answered is None else _ranked(*answered, P95),
        period_ns=None if period is None else _ranked(*period, MEDIAN),
        intervals=0.0 if period is None else float(period[1][-1]),
    )


def _edge(key: EdgeKey, state: _EdgeState) -> Edge:
    site, segment, client, server, protocol = key
    return Edge(
        site=site,
        segment=segment,
        client=address_text(client),
        server=address_text(server),
        protocol=Protocol(protocol),
        operations=frozenset(_operation_name(code) for code in state.operations),
        requests=state.requests,
        first_ns=state.first_ns,
        last_ns=state.last_ns,
        flows=state.flows,
        packets=state.packets,
        bytes=state.bytes,
        services=tuple(sorted(state.services)),
    )


def _operation_name(code: int) -> str:
    try:
        return Operation(code).name
    except ValueError:
        return f"OPERATION_{code}"
