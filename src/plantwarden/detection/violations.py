"""Violations of the zone model, aggregated: one per (rule, site, segment, source, destination,
operation) and time window, with counts, first and last time, the zones and channel concerned,
a sentence for people, and sample records.

Aggregation is vectorised (`core.records.grouping.Grouping`: one sort over packed keys); Python
objects are made per violation, never per record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.clock import SECOND_NS, iso_time
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.grouping import Grouping
from plantwarden.core.records.schema import (
    ADDRESS_DTYPE,
    FLOWS,
    PROTOCOL_RECORDS,
    READ_MINUTES,
    Operation,
    Protocol,
    address_text,
)
from plantwarden.detection import reasons
from plantwarden.detection.channels import CHANNEL, CLEARTEXT, NO_CONDUIT, OPERATION, UNZONED, WINDOW
from plantwarden.detection.site_rules import SiteRules
from plantwarden.zones.plant.protocols import BY_RECORD_PROTOCOL

if TYPE_CHECKING:
    from plantwarden.detection.segmentation import RecordVerdicts

Array = npt.NDArray[Any]
HOUR_NS = 3600 * SECOND_NS


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule of the zone check: its stable id, its bit in a record's verdict, a name."""

    id: str
    bit: int
    name: str


RULES: tuple[Rule, ...] = (
    Rule("zone.unzoned-asset", UNZONED, "Address in no zone"),
    Rule("zone.no-conduit", NO_CONDUIT, "Traffic between zones that no conduit joins"),
    Rule("zone.channel-not-allowed", CHANNEL, "Traffic no channel of the conduit allows"),
    Rule("zone.cleartext", CLEARTEXT, "Cleartext on a channel that requires encryption"),
    Rule("zone.operation-not-allowed", OPERATION, "Operation the channel does not allow"),
    Rule("zone.outside-window", WINDOW, "Traffic outside the channel's windows"),
)
RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}


@dataclass(frozen=True, slots=True)
class Violation:
    """Records of one site that break one rule between two addresses with one operation in one
    time window. `count` counts requests (a read aggregate counts its requests) or flows;
    `rows` are sample rows of the batch that was checked (empty once merged across batches);
    `samples` are those records."""

    rule: str
    site: str
    segment: str
    src: str
    dst: str
    operation: str
    window_start_ns: int
    window_ns: int
    count: int
    first_ns: int
    last_ns: int
    kind: str
    protocol: str
    transport: str
    port: int
    src_zone: str | None
    dst_zone: str | None
    src_asset: str | None
    dst_asset: str | None
    conduit: str | None
    channel: str | None
    reason: str
    rows: tuple[int, ...] = ()
    folded: int = 0
    """How many violations of other endpoints were folded into this one (`detection.pending`)."""
    shown: RecordBatch | None = field(default=None, compare=False, repr=False)
    """A batch holding the sample records (perhaps with others'); `shown_span` says where."""
    shown_span: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    @property
    def samples(self) -> RecordBatch | None:
        """The sample records (`sample_records` makes them plain JSON objects)."""
        if self.shown is None:
            return None
        return self.shown.take(slice(*self.shown_span))

    @property
    def key(self) -> tuple[str, str, str, str, str, str, int]:
        """What makes two violations one: rule, site, segment, endpoints, operation, window."""
        return (self.rule, self.site, self.segment, self.src, self.dst, self.operation, self.window_start_ns)

    @property
    def dedup_key(self) -> str:
        """The alert's deduplication key: rule|site|segment|src|dst|operation|window start (UTC)."""
        window = datetime.fromtimestamp(self.window_start_ns // SECOND_NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return "|".join((self.rule, self.site, self.segment, self.src, self.dst, self.operation, window))

    def merged(self, other: Violation, samples: int) -> Violation:
        """This violation with the records of `other` (same key) added; a zone or an asset that
        differs between the two (folded violations of several endpoints) is no longer named."""
        shown: RecordBatch | None
        if self.shown is not None and self.shown_span[1] - self.shown_span[0] >= samples:
            shown, span = self.shown, self.shown_span  # enough samples already: keep them
        else:
            shown = _first(samples, self.samples, other.samples)
            span = (0, len(shown) if shown is not None else 0)
        return dataclasses.replace(
            self,
            count=self.count + other.count,
            first_ns=min(self.first_ns, other.first_ns),
            last_ns=max(self.last_ns, other.last_ns),
            src_zone=_same(self.src_zone, other.src_zone),
            dst_zone=_same(self.dst_zone, other.dst_zone),
            src_asset=_same(self.src_asset, other.src_asset),
            dst_asset=_same(self.dst_asset, other.dst_asset),
            folded=self.folded + other.folded,
            rows=(),
            shown=shown,
            shown_span=span,
        )


def _same(first: str | None, second: str | None) -> str | None:
    return first if first == second else None


def _first(limit: int, *batches: RecordBatch | None) -> RecordBatch | None:
    present = [b for b in batches if b is not None]
    if not present:
        return None
    return RecordBatch.concat(present[0].kind, present).take(slice(0, limit))


def merge(into: dict[tuple[Any, ...], Violation], found: Iterable[Violation], samples: int) -> None:
    """Add violations to those kept by key (counts add up, samples up to `samples`)."""
    for violation in found:
        kept = into.get(violation.key)
        into[violation.key] = violation if kept is None else kept.merged(violation, samples)


def aggregate(
    batch: RecordBatch, verdicts: RecordVerdicts, rules: SiteRules, window_ns: int, samples: int
) -> list[Violation]:
    """The violations of a checked batch, rule by rule, in (window, endpoints, operation) order."""
    timing = _Timing.of(batch)
    found: list[Violation] = []
    for rule in RULES:
        rows = np.flatnonzero(verdicts.bits & rule.bit)
        if len(rows):
            found.extend(_groups(batch, verdicts, rules, rule, rows, timing, window_ns, samples))
    return found


@dataclass(frozen=True)
class _Timing:
    """Per record: its weight (requests or 1), its first and last time, its operation's name."""

    weight: Array
    first: Array
    last: Array
    operation: Array | str

    @classmethod
    def of(cls, batch: RecordBatch) -> _Timing:
        ones = np.ones(len(batch), dtype=np.int64)
        if batch.kind is READ_MINUTES:
            return cls(batch["requests"], batch["first_ts"], batch["last_ts"], "read")
        if batch.kind is FLOWS:
            return cls(ones, batch["ts"], batch["ts_end"], "flow")
        return cls(ones, batch["ts"], batch["ts"], batch["operation"])


def _groups(
    batch: RecordBatch,
    verdicts: RecordVerdicts,
    rules: SiteRules,
    rule: Rule,
    rows: Array,
    timing: _Timing,
    window_ns: int,
    samples: int,
) -> list[Violation]:
    windows = batch["ts"][rows] // window_ns
    keys = [windows, batch["segment"][rows], batch["src_addr"][rows], batch["dst_addr"][rows]]
    if batch.kind is PROTOCOL_RECORDS:
        keys.append(batch["operation"][rows])
    grouping = Grouping(keys)
    counts = grouping.sum(timing.weight[rows]).tolist()
    firsts = grouping.reduce(np.minimum, timing.first[rows]).tolist()
    lasts = grouping.reduce(np.maximum, timing.last[rows]).tolist()
    starts = (windows[grouping.first] * window_ns).tolist()
    picked, bounds = _sample_rows(grouping, rows, samples)
    shown = batch.take(picked)
    facts = _facts(batch, verdicts, rules, rule, rows[grouping.first], timing)
    return [
        Violation(
            window_start_ns=starts[g],
            window_ns=window_ns,
            count=counts[g],
            first_ns=firsts[g],
            last_ns=lasts[g],
            rows=tuple(picked[bounds[g] : bounds[g + 1]].tolist()),
            shown=shown,
            shown_span=(bounds[g], bounds[g + 1]),
            **facts[g],
        )
        for g in range(len(facts))
    ]


def _sample_rows(grouping: Grouping, rows: Array, samples: int) -> tuple[Array, list[int]]:
    """The first `samples` rows of each group (in batch order), and where each group's begin."""
    lengths = np.diff(np.append(grouping.starts, len(rows)))
    taken = np.minimum(lengths, samples)
    bounds = np.concatenate(([0], np.cumsum(taken)))
    within = np.arange(int(bounds[-1])) - np.repeat(bounds[:-1], taken)
    picked: Array = rows[grouping.order[np.repeat(grouping.starts, taken) + within]]
    return picked, bounds.tolist()


def _facts(
    batch: RecordBatch, verdicts: RecordVerdicts, rules: SiteRules, rule: Rule, first: Array, timing: _Timing
) -> list[dict[str, Any]]:
    """What each violation says beside its counts, from its first record (one per group)."""
    lookup = rules.lookup
    ends: dict[str, list[str | None]] = {}
    for end in ("src", "dst"):
        endpoint = getattr(verdicts, f"{end}_endpoint")[first]
        zones, assets = lookup.endpoint_zone[endpoint].tolist(), lookup.endpoint_asset[endpoint].tolist()
        ends[f"{end}_zone"] = [lookup.zone_ids[z] if z >= 0 else None for z in zones]
        ends[f"{end}_asset"] = [lookup.asset_ids[a] if a >= 0 else None for a in assets]
        ends[end] = list(address_texts(batch[f"{end}_addr"][first]))
    channels, conduits = verdicts.channel[first].tolist(), verdicts.conduit[first].tolist()
    if isinstance(timing.operation, str):
        operations = [timing.operation] * len(first)
    else:
        operations = [_operation(code) for code in timing.operation[first].tolist()]
    columns = {
        name: batch[name][first].tolist() for name in ("site", "segment", "protocol", "transport", "dst_port")
    }
    found = []
    for g, (channel, conduit) in enumerate(zip(channels, conduits, strict=True)):
        facts: dict[str, Any] = {name: values[g] for name, values in ends.items()}
        facts.update(
            rule=rule.id,
            site=str(columns["site"][g]),
            segment=str(columns["segment"][g]),
            operation=operations[g],
            kind=batch.kind.name,
            protocol=protocol_name(columns["protocol"][g]),
            transport=transport_name(columns["transport"][g]),
            port=columns["dst_port"][g],
            conduit=rules.site.conduits[conduit].id if conduit >= 0 else None,
            channel=rules.channels[channel].channel.id if channel >= 0 else None,
        )
        facts["reason"] = reasons.sentence(rules, rule.bit, facts, channel)
        found.append(facts)
    return found


def _operation(code: int) -> str:
    try:
        return Operation(code).name.lower()
    except ValueError:
        return f"operation {code}"


def protocol_name(code: int) -> str:
    """A record protocol code as the service name a channel would use (or the code's name)."""
    if code in BY_RECORD_PROTOCOL:
        return BY_RECORD_PROTOCOL[code]
    try:
        return Protocol(code).name.lower()
    except ValueError:
        return f"protocol {code}"


def transport_name(number: int) -> str:
    """An IP protocol number as tcp, udp, or the number."""
    return {6: "tcp", 17: "udp"}.get(number, f"ip-{number}")


def address_texts(column: Array) -> list[str]:
    """16-byte addresses as text (IPv4-mapped ones as dotted quads, formatted directly)."""
    column = np.ascontiguousarray(column, dtype=ADDRESS_DTYPE)
    halves = column.view("<u8").reshape(-1, 2)
    mapped = ((halves[:, 0] == 0) & ((halves[:, 1] & 0xFFFFFFFF) == 0xFFFF0000)).tolist()
    quads = column.view(np.uint8).reshape(-1, 16)[:, 12:].tolist()
    return [
        f"{q[0]}.{q[1]}.{q[2]}.{q[3]}" if is_ipv4 else address_text(raw)
        for is_ipv4, q, raw in zip(mapped, quads, column.tolist(), strict=True)
    ]


def sample_records(samples: RecordBatch, rows: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """Sample records as plain JSON objects (times in ISO 8601 UTC, addresses as text), with
    their row in the checked batch when known."""
    addresses = {
        c.name: address_texts(samples[c.name]) for c in samples.kind.columns if c.dtype == ADDRESS_DTYPE
    }
    found = []
    for index, record in enumerate(samples.rows()):
        record = {"kind": samples.kind.name, **({"row": rows[index]} if index < len(rows) else {}), **record}
        for name, texts in addresses.items():
            record[name] = texts[index]
        for name in ("ts", "ts_end", "first_ts", "last_ts"):
            if name in record:
                record[name] = iso_time(record[name])
        if "value" in record and record["value"] != record["value"]:
            record["value"] = None  # NaN is not JSON
        for name in ("site", "segment"):
            record[name] = str(record[name])
        found.append(record)
    return found
