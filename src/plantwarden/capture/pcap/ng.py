"""pcapng (draft-ietf-opsawg-pcapng) with any number of sections, each in its own byte order and
with its own interfaces (link type, `if_tsresol` as a power of 10 or of 2, `if_tsoffset`);
enhanced, simple and obsolete packet blocks; other blocks are skipped by their length.

Enhanced packet blocks are read in runs through numpy (see `ng_runs`), other blocks one by one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.errors import CaptureCorrupt
from plantwarden.capture.pcap.columns import (
    INT32_MAX,
    Columns,
    Pending,
    Problem,
    Unpack,
    good_prefix,
    rows_at,
)
from plantwarden.capture.pcap.ng_runs import ENHANCED_PACKET, SHORT_RUN, EnhancedRuns

MAX_BLOCK = 32 << 20
SECTION_HEADER = b"\n\r\r\n"
_SECTION_HEADER_TYPE = 0x0A0D0D0A
_BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_INTERFACE_DESCRIPTION = 1
_OBSOLETE_PACKET = 2
_SIMPLE_PACKET = 3
_IF_TSRESOL = 9
_IF_TSOFFSET = 14


@dataclass(frozen=True, slots=True)
class _Interface:
    """An interface description: link type, snapshot length, and how its times are counted."""

    number: int
    linktype: int
    snaplen: int
    base: int = 10
    exponent: int = 6
    offset_ns: int = 0

    def to_ns(self, ticks: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Nanoseconds since the epoch from timestamps in this interface's units (truncating)."""
        seconds, nanos = self._split(ticks)
        result: npt.NDArray[np.int64] = seconds.astype(np.int64) * 1_000_000_000 + nanos.astype(np.int64)
        return result + self.offset_ns if self.offset_ns else result

    def one_to_ns(self, ticks: int) -> int:
        """`to_ns` of one timestamp (wrapping to 64 bits as numpy does)."""
        seconds, nanos = self._split(ticks)
        return _wrap64(seconds * 1_000_000_000 + nanos + self.offset_ns)

    def _split(self, ticks: Any) -> tuple[Any, Any]:
        """Whole seconds and nanoseconds of timestamps (an int or an array of uint64)."""
        units = self.base**self.exponent
        seconds = ticks // units
        fraction = ticks - seconds * units
        if self.base == 10 and self.exponent >= 9:
            return seconds, fraction // 10 ** (self.exponent - 9)
        shift = max(0, self.exponent - 33) if self.base == 2 else 0
        return seconds, ((fraction >> shift) * 1_000_000_000) // (units >> shift)


def _wrap64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def _options(chunk: bytes, start: int, end: int, order: str) -> Iterator[tuple[int, bytes]]:
    """The (code, value) options between `start` and `end`, up to the end-of-options option."""
    while start + 4 <= end:
        code, size = struct.unpack_from(order + "HH", chunk, start)
        if code == 0 or start + 4 + size > end:
            return
        yield code, chunk[start + 4 : start + 4 + size]
        start += 4 + size + (-size % 4)


_MIN_LENGTH = {
    _SECTION_HEADER_TYPE: 28,
    _INTERFACE_DESCRIPTION: 20,
    _OBSOLETE_PACKET: 32,
    _SIMPLE_PACKET: 16,
    ENHANCED_PACKET: 32,
}


class PcapngParser:
    """pcapng: sections of blocks; enhanced packet blocks in runs through numpy, others one by one."""

    def __init__(self) -> None:
        self.order = ""
        self.head: Unpack = struct.Struct("<II").unpack_from
        self.interfaces: list[_Interface] = []
        self.section: list[_Interface] = []
        self.section_linktypes = np.zeros(0, np.uint16)
        self.runs = EnhancedRuns()

    def parse(self, chunk: bytes, pos: int, pending: Pending, target: int) -> tuple[int, bool]:
        while pending.count < target:
            if self.order:
                positions, end = self.runs.walk(chunk, pos, target - pending.count, self.order, self.head)
                if end > len(chunk):  # the last block is not all there
                    end, positions = int(positions[-1]), positions[:-1]
                if len(positions):
                    self._enhanced(chunk, np.asarray(positions, np.int64), pending)
                pos = end
                if pending.count >= target:
                    break
            after = self._block(chunk, pos, pending)
            if after is None:
                return pos, True
            pos = after
        return pos, False

    def _block(self, chunk: bytes, pos: int, pending: Pending) -> int | None:
        """Read the block at `pos` one by one; None when it is not all in the chunk yet."""
        if len(chunk) - pos < 12:
            return None
        order = self._order_at(chunk, pos)
        kind: int
        length: int
        kind, length = struct.unpack_from(order + "II", chunk, pos)
        if length % 4 or not _MIN_LENGTH.get(kind, 12) <= length <= MAX_BLOCK:
            raise Problem(CaptureCorrupt, pos, f"block of type {kind:#x} has an impossible length {length}")
        if pos + length > len(chunk):
            return None
        if struct.unpack_from(order + "I", chunk, pos + length - 4)[0] != length:
            raise Problem(CaptureCorrupt, pos, f"block length {length} is not repeated at its end")
        if kind == _SECTION_HEADER_TYPE:
            self._start_section(chunk, pos, order)
        elif kind == _INTERFACE_DESCRIPTION:
            self._describe_interface(chunk, pos, length)
        elif kind == ENHANCED_PACKET:
            self._enhanced_one(chunk, pos, pending)
        elif kind == _SIMPLE_PACKET:
            pending.add_row(*self._simple(chunk, pos, length))
        elif kind == _OBSOLETE_PACKET:
            pending.add_row(*self._obsolete(chunk, pos, length))
        return pos + length

    def _order_at(self, chunk: bytes, pos: int) -> str:
        """The byte order of the block at `pos`: its own for a section header, else the section's."""
        if chunk[pos : pos + 4] != SECTION_HEADER:
            return self.order
        order = _BYTE_ORDERS.get(chunk[pos + 8 : pos + 12])
        if order is None:
            magic = chunk[pos + 8 : pos + 12].hex()
            raise Problem(CaptureCorrupt, pos, f"section header has no byte-order magic ({magic})")
        return order

    def _start_section(self, chunk: bytes, pos: int, order: str) -> None:
        major, minor = struct.unpack_from(order + "HH", chunk, pos + 12)
        if major != 1:
            raise Problem(CaptureCorrupt, pos, f"pcapng version {major}.{minor} is not supported")
        self.order, self.head = order, struct.Struct(order + "II").unpack_from
        self.section, self.section_linktypes = [], np.zeros(0, np.uint16)

    def _describe_interface(self, chunk: bytes, pos: int, length: int) -> None:
        linktype, _, snaplen = struct.unpack_from(self.order + "HHI", chunk, pos + 8)
        base, exponent, offset = 10, 6, 0
        for code, value in _options(chunk, pos + 16, pos + length - 4, self.order):
            if code == _IF_TSRESOL and value:
                base, exponent = (2, value[0] & 0x7F) if value[0] & 0x80 else (10, value[0])
            elif code == _IF_TSOFFSET and len(value) == 8:
                (offset,) = struct.unpack(self.order + "q", value)
        if exponent > (63 if base == 2 else 19) or abs(offset) > 2**33 or len(self.interfaces) > 0xFFFF:
            raise Problem(CaptureCorrupt, pos, "interface description out of range (if_tsresol, if_tsoffset)")
        interface = _Interface(len(self.interfaces), linktype, snaplen, base, exponent, offset * 10**9)
        self.interfaces.append(interface)
        self.section.append(interface)
        self.section_linktypes = np.array([i.linktype for i in self.section], np.uint16)

    def _interface(self, number: int, pos: int) -> _Interface:
        if number >= len(self.section):
            raise Problem(CaptureCorrupt, pos, f"packet of interface {number}, not described in its section")
        return self.section[number]

    def _simple(self, chunk: bytes, pos: int, length: int) -> tuple[int, int, int, int, int, int]:
        interface = self._interface(0, pos)
        (wire,) = struct.unpack_from(self.order + "I", chunk, pos + 8)
        caplen = min(wire, length - 16, interface.snaplen or length)
        return pos + 12, caplen, wire, 0, interface.linktype, interface.number

    def _obsolete(self, chunk: bytes, pos: int, length: int) -> tuple[int, int, int, int, int, int]:
        number, _, high, low, caplen, wire = struct.unpack_from(self.order + "HHIIII", chunk, pos + 8)
        interface = self._interface(number, pos)
        if caplen > length - 32:
            raise Problem(CaptureCorrupt, pos, f"captured length {caplen} does not fit its block")
        return (
            pos + 28,
            caplen,
            wire,
            interface.one_to_ns(high << 32 | low),
            interface.linktype,
            interface.number,
        )

    def _enhanced_one(self, chunk: bytes, pos: int, pending: Pending) -> None:
        """Add one complete enhanced packet block (cheaper in Python than in numpy)."""
        (length,) = struct.unpack_from(self.order + "I", chunk, pos + 4)
        if length % 4 or not 32 <= length <= MAX_BLOCK:
            raise Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))
        number, high, low, caplen, wire = struct.unpack_from(self.order + "5I", chunk, pos + 8)
        (trailer,) = struct.unpack_from(self.order + "I", chunk, pos + length - 4)
        if caplen > length - 32 or trailer != length or number >= len(self.section):
            raise Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))
        interface = self.section[number]
        ts_ns = interface.one_to_ns(high << 32 | low)
        pending.add_row(pos + 28, caplen, wire, ts_ns, interface.linktype, interface.number)

    def _enhanced(self, chunk: bytes, positions: npt.NDArray[np.int64], pending: Pending) -> None:
        """Add a run of complete enhanced packet blocks; raise at the first impossible one."""
        if len(positions) < SHORT_RUN // 8:
            for pos in positions.tolist():
                self._enhanced_one(chunk, pos, pending)
            return
        words = np.frombuffer(chunk, self.order + "u4", count=len(chunk) // 4)
        index = positions >> 2
        length = words[index + 1]
        good = good_prefix((length < 32) | (length % 4 != 0) | (length > MAX_BLOCK))
        index, length = index[:good], length[:good]
        head = rows_at(words, index, 7)
        number, caplen = head[:, 2], head[:, 5]
        trailer = words[index + (length >> 2) - 1]
        fits = (caplen <= length - 32) & (trailer == length) & (number < len(self.section))
        good = good_prefix(~fits)
        if good:
            pending.add(self._columns(index[:good] * 4 + 28, head[:good]))
        if good < len(positions):
            pos = int(positions[good])
            raise Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))

    def _enhanced_problem(self, chunk: bytes, pos: int) -> str:
        (length,) = struct.unpack_from(self.order + "I", chunk, pos + 4)
        if length % 4 or not 32 <= length <= MAX_BLOCK:
            return f"enhanced packet block has an impossible length {length}"
        number, _, _, caplen = struct.unpack_from(self.order + "IIII", chunk, pos + 8)
        (trailer,) = struct.unpack_from(self.order + "I", chunk, pos + length - 4)
        if trailer != length:
            return f"block length {length} is not repeated at its end ({trailer})"
        if caplen > length - 32:
            return f"captured length {caplen} does not fit its block of {length} bytes"
        return f"packet of interface {number}, not described in its section"

    def _columns(self, offsets: npt.NDArray[np.int64], head: npt.NDArray[np.uint32]) -> Columns:
        number = head[:, 2]
        ticks = (head[:, 3].astype(np.uint64) << np.uint64(32)) | head[:, 4].astype(np.uint64)
        if len(self.section) == 1:
            ts_ns = self.section[0].to_ns(ticks)
        else:
            ts_ns = np.zeros(len(ticks), np.int64)
            for local, interface in enumerate(self.section):
                mask = number == local
                if mask.any():
                    ts_ns[mask] = interface.to_ns(ticks[mask])
        return Columns(
            offsets=offsets,
            lengths=head[:, 5].astype(np.int32),
            wire_lengths=np.minimum(head[:, 6], INT32_MAX).astype(np.int32),
            ts_ns=ts_ns,
            linktypes=self.section_linktypes[number],
            interfaces=(number + self.section[0].number).astype(np.uint16),
        )

    def partial(self, chunk: bytes, pos: int) -> str:
        if len(chunk) - pos < 12:
            return f"a block header ({len(chunk) - pos} bytes present)"
        length = struct.unpack_from(self._order_at(chunk, pos) + "I", chunk, pos + 4)[0]
        return f"a block of {length} bytes ({len(chunk) - pos} present)"
