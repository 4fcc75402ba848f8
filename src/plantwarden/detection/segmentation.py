"""Observed traffic against the zone model: every record of a batch checked at once, with numpy.

`SegmentationCheck(site)` compiles a site's zones, conduits, channels and windows; `check(batch)`
takes a `RecordBatch` of protocol records, read aggregates or flows and returns the violations,
aggregated per (rule, site, segment, source, destination, operation) and time window
(`detection.violations`). The rules, with their stable ids:

- `zone.unzoned-asset`: an address in no zone of the record's segment;
- `zone.no-conduit`: two zones that no conduit joins;
- `zone.channel-not-allowed`: no channel of the conduits joining the two zones carries this
  protocol to this port in this direction (from the initiator, the record's source, to the
  responder), for these clients and servers;
- `zone.cleartext`: a cleartext industrial protocol on a channel that requires encryption;
- `zone.operation-not-allowed`: an operation the channel does not allow (malformed requests never are);
- `zone.outside-window`: program or control outside the channel's maintenance windows, or any
  traffic on a channel with a schedule outside it (windows in the site's time zone).

Traffic inside one zone is allowed, and records of other sites are not this site's to judge;
layer-2 records (transport 0: PROFINET DCP between MACs) stay within their segment and are not
judged either (the rules see them).
A record that several channels could carry is allowed when one of them allows it; otherwise it
is reported against the channel that breaks the fewest rules. Each record costs a few gathers:
its addresses go through `ZoneLookup`, its codes are packed into one key, and the key's verdict
is decided once per checker (`detection.verdicts`); only records whose verdict depends on the
time have their local time computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import FLOWS, PROTOCOL_RECORDS, READ_MINUTES, Operation
from plantwarden.detection.channels import NO_OPERATION, WINDOW
from plantwarden.detection.site_rules import SiteRules
from plantwarden.detection.verdicts import VerdictBook
from plantwarden.detection.violations import HOUR_NS, Violation, aggregate
from plantwarden.detection.windows import WindowClock
from plantwarden.zones.plant.lookup import ZoneLookup
from plantwarden.zones.plant.model import SiteModel

Array = npt.NDArray[Any]
CHECKED_KINDS = (PROTOCOL_RECORDS.name, READ_MINUTES.name, FLOWS.name)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class RecordVerdicts:
    """Per record of a batch: the rule bits it breaks (0: allowed, or another site's record), the
    channel and conduit closest to allowing it (-1: none), and its source and destination
    endpoints (`ZoneLookup` numbering)."""

    bits: Array
    channel: Array
    conduit: Array
    src_endpoint: Array
    dst_endpoint: Array


class SegmentationCheck:
    """A site's model compiled for checking record batches; keeps what it has decided."""

    def __init__(self, site: SiteModel, *, window_ns: int = HOUR_NS, samples: int = 5) -> None:
        if window_ns <= 0:
            raise InvalidInput("the aggregation window must be a positive duration")
        self.site = site
        self.window_ns = window_ns
        self.samples = samples
        self.lookup = ZoneLookup(site)
        self.clock = WindowClock(site)
        self.rules = SiteRules(site, self.lookup, self.clock)
        self.book = VerdictBook(self.rules.key_space, self.rules.decide)
        self._channel_conduit = np.array([r.conduit for r in self.rules.channels] or [-1], dtype=np.int32)

    def check(self, batch: RecordBatch) -> list[Violation]:
        """The batch's violations, aggregated (samples are rows of this batch)."""
        verdicts = self.verdicts(batch)
        return aggregate(batch, verdicts, self.rules, self.window_ns, self.samples)

    def verdicts(self, batch: RecordBatch) -> RecordVerdicts:
        """Each record's verdict."""
        if batch.kind.name not in CHECKED_KINDS:
            raise InvalidInput(f"{batch.kind.name} records cannot be checked against zones")
        codes = np.broadcast_to(self.lookup.segment_codes(batch["segment"]), (len(batch),))
        src = self.lookup.endpoints_by_code(batch["src_addr"], codes)
        dst = self.lookup.endpoints_by_code(batch["dst_addr"], codes)
        numbers = self.book.of(self.rules.keys(src, dst, _key_columns(batch)))
        book = self.book
        bits, channel, conduit = book.bits[numbers], book.channel[numbers], book.conduit[numbers]
        timed = np.flatnonzero(book.timed[numbers])
        if len(timed):
            self._decide_by_time(batch["ts"][timed], numbers[timed], timed, (bits, channel, conduit))
        elsewhere = _other_sites(batch["site"], self.site.id)
        if elsewhere is not None:
            bits[elsewhere] = 0
        bits[np.asarray(batch["transport"]) == 0] = 0  # layer 2 (PROFINET DCP) never leaves its segment
        return RecordVerdicts(bits, channel, conduit, src, dst)

    def _decide_by_time(
        self, ts_ns: Array, numbers: Array, rows: Array, out: tuple[Array, Array, Array]
    ) -> None:
        """Bits and channel of records whose verdict depends on the windows their time falls in."""
        bits, channel, conduit = out
        masks = self.clock.masks(ts_ns)
        for number in np.unique(numbers).tolist():
            mine = numbers == number
            best_bits, best_channel = self._best(self.book.verdicts[number].alternatives, masks[mine])
            bits[rows[mine]] = best_bits
            channel[rows[mine]] = best_channel
            conduit[rows[mine]] = self._channel_conduit[best_channel]

    @staticmethod
    def _best(alternatives: tuple[Any, ...], masks: Array) -> tuple[Array, Array]:
        """Per record, the alternative that breaks the fewest rules at its time (first on ties)."""
        best_bits = np.full(len(masks), 0xFF, dtype=np.uint8)
        best_channel = np.full(len(masks), alternatives[0].channel, dtype=np.int32)
        for alternative in alternatives:
            outside = np.zeros(len(masks), dtype=bool)
            for needed in (alternative.schedule, alternative.maintenance):
                if needed:
                    outside |= (masks & np.uint64(needed)) == 0
            bits = np.where(outside, alternative.bits | WINDOW, alternative.bits).astype(np.uint8)
            better = _POPCOUNT[bits] < _POPCOUNT[best_bits]
            best_bits[better] = bits[better]
            best_channel[better] = alternative.channel
        return best_bits, best_channel


def _key_columns(batch: RecordBatch) -> dict[str, Array]:
    """The columns a key is made of; read aggregates are reads, flows carry no operation."""
    columns = {name: batch[name] for name in ("transport", "dst_port", "protocol")}
    if batch.kind is PROTOCOL_RECORDS:
        columns["operation"] = batch["operation"]
    else:
        code = Operation.READ if batch.kind is READ_MINUTES else NO_OPERATION
        columns["operation"] = np.full(len(batch), int(code), dtype=np.uint8)
    return columns


def _other_sites(sites: Array, site_id: str) -> Array | None:
    """Rows of other sites than `site_id` (None when there are none, the usual case)."""
    if not len(sites) or (sites[0] == site_id and bool(np.all(sites == site_id))):
        return None
    return np.asarray(sites != site_id, dtype=bool)
