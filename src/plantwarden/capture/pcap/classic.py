"""Classic pcap (tcpdump's libpcap format) in either byte order, micro- or nanosecond magic, any
link type.

numpy finds where the records start (`classic_runs`; Python walks the chain of record lengths
where numpy cannot), then reads every header field of a batch at once.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from plantwarden.capture.errors import CaptureCorrupt
from plantwarden.capture.pcap.classic_runs import RecordRuns
from plantwarden.capture.pcap.columns import (
    INT32_MAX,
    Columns,
    Pending,
    Problem,
    good_prefix,
    rows_at,
)

MAX_RECORD = 262144 * 4
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


class PcapParser:
    """Classic pcap: a 24-byte file header, then a 16-byte header before each packet."""

    def __init__(self, order: str, fraction_ns: int) -> None:
        self.fraction_ns = fraction_ns
        self.order = order
        self.runs = RecordRuns(order, fraction_ns, struct.Struct(order + "I").unpack_from)
        self.record = np.dtype([(n, order + "u4") for n in ("sec", "frac", "caplen", "len")])
        self.linktype = -1
        self.max_caplen = MAX_RECORD

    def parse(self, chunk: bytes, pos: int, pending: Pending, target: int) -> tuple[int, bool]:
        if self.linktype < 0:
            if len(chunk) < 24:
                return pos, True
            _, _, _, _, snaplen, linktype = struct.unpack_from(self.order + "HHiIII", chunk, 4)
            self.linktype = linktype & 0xFFFF
            self.max_caplen = min(max(snaplen, 262144), MAX_RECORD)
            pos = 24
        room = target - pending.count
        positions, end = self.runs.walk(chunk, pos, room)
        if end > len(chunk):
            end = int(positions[-1])
            positions = positions[:-1]
        if len(positions):
            self._add(chunk, positions, pending)
        if len(chunk) - end >= 12:
            self._check(struct.unpack_from(self.order + "I", chunk, end + 8)[0], end)
        return end, len(positions) < room

    def _check(self, caplen: int, pos: int) -> None:
        if caplen > self.max_caplen:
            raise Problem(
                CaptureCorrupt, pos, f"record length {caplen} is over the limit of {self.max_caplen}"
            )

    def _add(self, chunk: bytes, positions: npt.NDArray[np.int64], pending: Pending) -> None:
        data = np.frombuffer(chunk, np.uint8)
        headers = rows_at(data, positions, 16).view(self.record)[:, 0]
        good = good_prefix(headers["caplen"] > self.max_caplen)
        headers = headers[:good]
        seconds = headers["sec"].astype(np.int64)
        count = len(headers)
        pending.add(
            Columns(
                offsets=positions[:good] + 16,
                lengths=headers["caplen"].astype(np.int32),
                wire_lengths=np.minimum(headers["len"], INT32_MAX).astype(np.int32),
                ts_ns=seconds * 1_000_000_000 + headers["frac"].astype(np.int64) * self.fraction_ns,
                linktypes=np.full(count, self.linktype, np.uint16),
                interfaces=np.zeros(count, np.uint16),
            )
        )
        if good < len(positions):
            caplen_at = int(positions[good]) + 8
            self._check(struct.unpack_from(self.order + "I", chunk, caplen_at)[0], int(positions[good]))

    def partial(self, chunk: bytes, pos: int) -> str:
        if self.linktype < 0:
            return f"the 24-byte file header ({len(chunk) - pos} bytes present)"
        if len(chunk) - pos < 16:
            return f"a 16-byte record header ({len(chunk) - pos} bytes present)"
        caplen = struct.unpack_from(self.order + "I", chunk, pos + 8)[0]
        return f"a record of {16 + caplen} bytes ({len(chunk) - pos} present)"
