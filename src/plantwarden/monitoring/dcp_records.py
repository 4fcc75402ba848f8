"""PROFINET DCP requests as protocol records, so that rules see a Set of IP, name or factory reset.

The identity frames of a batch (`identity_frames`) are decoded already; this takes their DCP rows
and hands them to a `RequestRecords` of `Protocol.PROFINET_DCP`, which pairs Get and Set requests
with their responses and writes one record per request (Identify requests too, unpaired):

- endpoints: the Ethernet source and destination as IPv6 link-local addresses (`mac_addresses`),
  transport 0, ports 0;
- `function`: the service id (3 Get, 4 Set, 5 Identify); `operation`: Get and Identify IDENTIFY,
  Set WRITE, or CONTROL when it resets, signals or only controls; MALFORMED for a frame whose
  header does not read;
- `address`: option << 8 | suboption of the block the request is about (`DcpMessage._address`:
  0x0102 IP parameter, 0x0202 NameOfStation, 0x0506 reset to factory ...); `quantity`: blocks;
  `unit` -1, `value` NaN;
- `status`: the Set response's first non-zero BlockError, 0 when every block was accepted, 256
  for "request not supported", -1 when no response came, -2 for an Identify request (to every
  device, or by name: any number of devices answer, nothing to pair) and for a frame whose
  service does not read.

Requests and responses pair by the unordered MAC pair and the xid. Hello frames (a device
announcing itself to everyone) and Identify responses are counted, not recorded. DCP frames are rare (an
engineering tool's scan, a commissioning step): this runs only on batches that carry some.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.core.records.schema import Operation, Protocol, mac_addresses
from plantwarden.monitoring.identity_frames import IdentityBatch
from plantwarden.monitoring.requests import ExchangeCounts, RecordCounts, RecordSink, RequestRecords
from plantwarden.protocols.common import NOT_RECORDED, ONE_WAY
from plantwarden.protocols.identity import Kind
from plantwarden.protocols.identity.pn_dcp import HELLO, IDENTIFY

Array = npt.NDArray[Any]
XID_KEY = 0x7FFF_FFFF
"""The pairing key is the xid's low 31 bits (pairing keys are non-negative 32-bit integers)."""
MAC_SHIFT = 15
"""The connection of a MAC pair: the lower MAC shifted by this, exclusive-or the higher (< 2**63)."""


class DcpRecords:
    """The DCP requests of each batch, paired with their responses, on their way to records."""

    def __init__(
        self,
        timeout_ns: int,
        counts: ExchangeCounts,
        totals: RecordCounts,
        writer: RecordSink | None,
        site: str,
        segment: str,
    ) -> None:
        self.requests = RequestRecords(
            Protocol.PROFINET_DCP, timeout_ns, counts, totals, writer, site, segment
        )

    def feed(self, now: int, batch: PacketBatch, layers: Layers, found: IdentityBatch | None) -> None:
        """Take a batch's identity frames (None when it had none): record its DCP requests whose
        exchange closed, keep the others waiting; close those older than the timeout at `now`."""
        rows = np.flatnonzero(found.kind == Kind.DCP) if found is not None else np.zeros(0, np.int64)
        if found is None or not len(rows):
            self.requests.expire(now)
            return
        summary, packets = found.columns.summary, found.packet[rows]
        operation = summary.operation[rows]
        malformed = operation == Operation.MALFORMED
        is_response = summary.is_response[rows] & ~malformed
        src, dst = layers.src_mac[packets].astype(np.uint64), layers.dst_mac[packets].astype(np.uint64)

        def fields(wanted: npt.NDArray[np.int64]) -> dict[str, Array]:
            chosen, at = rows[wanted], packets[wanted]
            count = len(wanted)
            return {
                "ts": batch.ts_ns[at],
                "src_addr": mac_addresses(src[wanted]),
                "dst_addr": mac_addresses(dst[wanted]),
                "src_port": np.zeros(count, np.uint16),
                "dst_port": np.zeros(count, np.uint16),
                "transport": np.zeros(count, np.uint8),
                "operation": summary.operation[chosen],
                "function": summary.function_code[chosen],
                "unit": np.full(count, -1, np.int32),
                "address": summary.address[chosen],
                "quantity": summary.quantity[chosen],
                "value": np.full(count, np.nan),
            }

        self.requests.feed(
            now,
            np.minimum(src, dst).astype(np.int64) << MAC_SHIFT ^ np.maximum(src, dst).astype(np.int64),
            batch.ts_ns[packets],
            _keys(found.columns.xid[rows], summary.function_code[rows], is_response, malformed),
            is_response,
            summary.function_code[rows],
            summary.result[rows],
            fields,
        )

    def finish(self, last_ns: int) -> None:
        """The end of the input: close every waiting request."""
        self.requests.finish(last_ns)


def _keys(xid: Array, service: Array, is_response: Array, malformed: Array) -> Array:
    """Each frame's pairing key: the xid; `ONE_WAY` for an Identify request (to every device, or
    by name: any number answer) and a frame whose service does not read; `NOT_RECORDED` for
    Identify responses and Hello."""
    keys = np.asarray(xid, np.int64) & XID_KEY
    keys = np.where(malformed | ((service == IDENTIFY) & ~is_response), ONE_WAY, keys)
    return np.where(((service == IDENTIFY) & is_response) | (service == HELLO), NOT_RECORDED, keys)
