"""Streaming readers of pcap and pcapng captures (files, FIFOs, stdin) yielding `PacketBatch`es.

The input is read in chunks of 4 MiB (by default), never whole. For pcap, Python only walks the
chain of record lengths, collecting where each header starts (about 70 ns a packet, the one
per-packet cost); numpy then reads every header field of a batch at once. For pcapng, numpy also
finds the runs of enhanced packet blocks (words holding the block type, a plausible length, the
same length at the block's end, each block starting where the previous ends); where packet data
looks like a block and breaks a run, Python walks the rest of the batch, so that crafted traffic
cannot make the reader slow. A batch's `buffer` is a view of the chunk it was read from: packets
keep their file layout, with the record headers between them (packet `i` is still
`buffer[offsets[i] : offsets[i] + lengths[i]]`).

Formats: pcap (tcpdump's libpcap format) in either byte order, micro- or nanosecond magic, any
link type; pcapng (draft-ietf-opsawg-pcapng) with any number of sections, each in its own byte
order and with its own interfaces (link type, `if_tsresol` as a power of 10 or of 2, `if_tsoffset`),
enhanced, simple and obsolete packet blocks; other blocks are skipped by their length. Where we
differ from tshark 4.0: a simple packet block has no time, and its packet gets `ts_ns == 0`
(tshark shows none); interfaces are numbered across the whole file, so that each number keeps one
link type (tshark numbers each section's from 0); a decryption secrets block is no packet (tshark
shows it as a frame, so its frame numbers after one are ours plus one).

A stream that cannot seek (a FIFO, stdin) is followed: when no data has come for `idle_timeout`
seconds (or data has been waiting for half a second) the packets read so far are yielded as a
possibly small batch; the end of the stream ends the reader. A problem in the input first yields
every complete packet before it, then raises `CaptureTruncated` or `CaptureCorrupt`.
"""

from __future__ import annotations

import enum
import io
import os
import select
import stat
import struct
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.errors import CaptureCorrupt, CaptureError, CaptureTruncated, NotACapture

DEFAULT_BATCH_SIZE = 65536
READ_SIZE = 4 << 20
IDLE_TIMEOUT = 0.05
MAX_DELAY = 0.5
MAX_RECORD = 262144 * 4
MAX_BLOCK = 32 << 20
MAX_WINDOW = 1 << 22  # words that numpy looks through for a run of enhanced packet blocks
SHORT_RUN = 64  # enhanced packet blocks; Python walks after shorter runs
_INT32_MAX = 2**31 - 1
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_SECTION_HEADER = b"\n\r\r\n"
_SECTION_HEADER_TYPE = 0x0A0D0D0A
_BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_INTERFACE_DESCRIPTION = 1
_OBSOLETE_PACKET = 2
_SIMPLE_PACKET = 3
_ENHANCED_PACKET = 6
_ENHANCED_PACKET_TYPE = {"<": b"\x06\x00\x00\x00", ">": b"\x00\x00\x00\x06"}
_IF_TSRESOL = 9
_IF_TSOFFSET = 14

Source = str | os.PathLike[str] | BinaryIO
_Unpack = Callable[[bytes, int], tuple[Any, ...]]
_Item = TypeVar("_Item", bound=np.generic)


class _Status(enum.Enum):
    FULL = "full"
    IDLE = "idle"
    END = "end"


class _Problem(Exception):
    """Raised inside a parser; the reader turns it into a public error once the good packets are out."""

    def __init__(self, kind: type[CaptureError], offset: int, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.offset, self.reason = kind, offset, reason


@dataclass(slots=True)
class _Columns:
    """The columns of some consecutive packets of one chunk (offsets into the chunk)."""

    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int32]
    wire_lengths: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    linktypes: npt.NDArray[np.uint16]
    interfaces: npt.NDArray[np.uint16]

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, int, int, int, int]]) -> _Columns:
        """Columns from (offset, length, wire length, time, link type, interface) rows."""
        offsets, lengths, wire, ts_ns, linktypes, interfaces = zip(*rows, strict=True)
        return cls(
            np.array(offsets, np.int64),
            np.array(lengths, np.int32),
            np.minimum(np.array(wire, np.int64), _INT32_MAX).astype(np.int32),
            np.array(ts_ns, np.int64),
            np.array(linktypes, np.uint16),
            np.array(interfaces, np.uint16),
        )


@dataclass(slots=True)
class _Pending:
    """Packets parsed but not yet handed out, all in the current chunk: runs as columns, and the
    packets of blocks read one by one as rows until a run follows them."""

    parts: list[_Columns] = field(default_factory=list)
    rows: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    count: int = 0

    def add(self, part: _Columns) -> None:
        if len(part.offsets):
            self._settle()
            self.parts.append(part)
            self.count += len(part.offsets)

    def add_row(self, offset: int, length: int, wire: int, ts_ns: int, linktype: int, interface: int) -> None:
        self.rows.append((offset, length, wire, ts_ns, linktype, interface))
        self.count += 1

    def _settle(self) -> None:
        if self.rows:
            self.parts.append(_Columns.from_rows(self.rows))
            self.rows = []

    def first_offset(self) -> int:
        return int(self.parts[0].offsets[0]) if self.parts else self.rows[0][0]

    def shift(self, delta: int) -> None:
        self._settle()
        for part in self.parts:
            part.offsets += delta

    def take(self, chunk: bytes, first_number: int) -> PacketBatch:
        """All pending packets as one batch over the part of `chunk` they lie in."""
        self._settle()
        parts, self.parts, self.count = self.parts, [], 0
        whole = parts[0] if len(parts) == 1 else _concatenate(parts)
        start = int(whole.offsets[0])
        end = int(whole.offsets[-1]) + int(whole.lengths[-1])
        return PacketBatch(
            buffer=np.frombuffer(chunk, np.uint8, count=end - start, offset=start),
            offsets=whole.offsets - start,
            lengths=whole.lengths,
            wire_lengths=whole.wire_lengths,
            ts_ns=whole.ts_ns,
            linktypes=whole.linktypes,
            interfaces=whole.interfaces,
            first_number=first_number,
        )


def _concatenate(parts: list[_Columns]) -> _Columns:
    return _Columns(
        np.concatenate([p.offsets for p in parts]),
        np.concatenate([p.lengths for p in parts]),
        np.concatenate([p.wire_lengths for p in parts]),
        np.concatenate([p.ts_ns for p in parts]),
        np.concatenate([p.linktypes for p in parts]),
        np.concatenate([p.interfaces for p in parts]),
    )


class _Parser(Protocol):
    def parse(self, chunk: bytes, pos: int, pending: _Pending, target: int) -> tuple[int, bool]:
        """Parse from `pos` until `pending` holds `target` packets (returns the position and False)
        or the rest of the chunk is incomplete (returns where it starts and True)."""

    def partial(self, chunk: bytes, pos: int) -> str:
        """What the incomplete bytes from `pos` to the end of the chunk were going to be."""


def _walk_records(chunk: bytes, pos: int, limit: int, caplen_at: _Unpack) -> tuple[list[int], int]:
    """The positions of up to `limit` pcap record headers from `pos`, and the position after them.

    This loop is the only per-packet Python work of the pcap reader. The last position may name a
    record that runs past the end of the chunk (then the returned position lies past it too).
    """
    positions: list[int] = []
    append = positions.append
    try:
        for _ in range(limit):
            (caplen,) = caplen_at(chunk, pos + 8)
            append(pos)
            pos += 16 + caplen
    except struct.error:
        pass  # fewer than 12 bytes left: the next record header is incomplete
    return positions, pos


def _walk_blocks(chunk: bytes, pos: int, limit: int, head: _Unpack) -> tuple[list[int], int]:
    """The positions of up to `limit` consecutive enhanced packet blocks from `pos` (see above)."""
    positions: list[int] = []
    append = positions.append
    try:
        for _ in range(limit):
            kind, length = head(chunk, pos)
            if kind != _ENHANCED_PACKET:
                break
            append(pos)
            pos += length
    except struct.error:
        pass  # fewer than 8 bytes left
    return positions, pos


def _chain(words: npt.NDArray[np.uint32], limit: int) -> tuple[npt.NDArray[np.int64], int, bool] | None:
    """Up to `limit` consecutive enhanced packet blocks from the start of `words`, found with numpy:
    their word positions, the position after them, and whether the run stopped at packet data that
    looks like a block header. None if no complete block starts there.

    Candidates are words holding the block type, followed by a plausible length that the block's
    last word repeats; the run is the candidates each of which starts where the previous ends.
    """
    starts = np.flatnonzero(words[:-1] == _ENHANCED_PACKET)
    lengths = words[starts + 1]
    ends = starts + (lengths >> 2)
    plausible = (lengths >= 32) & (lengths % 4 == 0) & (ends <= len(words))
    starts, ends, lengths = starts[plausible], ends[plausible], lengths[plausible]
    closed = words[ends - 1] == lengths
    starts, ends = starts[closed], ends[closed]
    if not len(starts) or starts[0] != 0:
        return None
    breaks = np.flatnonzero(ends[:-1] != starts[1:])
    run = int(breaks[0]) + 1 if len(breaks) else len(starts)
    count = min(run, limit)
    misled = count == run < len(starts) and starts[run] < ends[run - 1]
    return starts[:count], int(ends[count - 1]), bool(misled)


def _rows(values: npt.NDArray[_Item], starts: npt.NDArray[np.int64], width: int) -> npt.NDArray[_Item]:
    """`values[start : start + width]` for each start, as the rows of a new array (indexing a
    sliding window view pays for many rows, plain fancy indexing for few)."""
    rows: npt.NDArray[_Item]
    if len(starts) < 256:
        rows = values[starts[:, None] + np.arange(width)]
    else:
        rows = sliding_window_view(values, width)[starts]
    return rows


def _good_prefix(bad: npt.NDArray[np.bool_]) -> int:
    """How many leading entries are not bad."""
    where = np.flatnonzero(bad)
    return int(where[0]) if len(where) else len(bad)


class _PcapParser:
    """Classic pcap: a 24-byte file header, then a 16-byte header before each packet."""

    def __init__(self, order: str, fraction_ns: int) -> None:
        self.fraction_ns = fraction_ns
        self.order = order
        self.caplen_at = struct.Struct(order + "I").unpack_from
        self.record = np.dtype([(n, order + "u4") for n in ("sec", "frac", "caplen", "len")])
        self.linktype = -1
        self.max_caplen = MAX_RECORD

    def parse(self, chunk: bytes, pos: int, pending: _Pending, target: int) -> tuple[int, bool]:
        if self.linktype < 0:
            if len(chunk) < 24:
                return pos, True
            _, _, _, _, snaplen, linktype = struct.unpack_from(self.order + "HHiIII", chunk, 4)
            self.linktype = linktype & 0xFFFF
            self.max_caplen = min(max(snaplen, 262144), MAX_RECORD)
            pos = 24
        room = target - pending.count
        positions, end = _walk_records(chunk, pos, room, self.caplen_at)
        if end > len(chunk):
            end = positions.pop()
        if positions:
            self._add(chunk, np.array(positions, np.int64), pending)
        if len(chunk) - end >= 12:
            self._check(struct.unpack_from(self.order + "I", chunk, end + 8)[0], end)
        return end, len(positions) < room

    def _check(self, caplen: int, pos: int) -> None:
        if caplen > self.max_caplen:
            raise _Problem(
                CaptureCorrupt, pos, f"record length {caplen} is over the limit of {self.max_caplen}"
            )

    def _add(self, chunk: bytes, positions: npt.NDArray[np.int64], pending: _Pending) -> None:
        data = np.frombuffer(chunk, np.uint8)
        headers = _rows(data, positions, 16).view(self.record)[:, 0]
        good = _good_prefix(headers["caplen"] > self.max_caplen)
        headers = headers[:good]
        seconds = headers["sec"].astype(np.int64)
        count = len(headers)
        pending.add(
            _Columns(
                offsets=positions[:good] + 16,
                lengths=headers["caplen"].astype(np.int32),
                wire_lengths=np.minimum(headers["len"], _INT32_MAX).astype(np.int32),
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
    _ENHANCED_PACKET: 32,
}


class _PcapngParser:
    """pcapng: sections of blocks; enhanced packet blocks in runs through numpy, others one by one."""

    def __init__(self) -> None:
        self.order = ""
        self.head: _Unpack = struct.Struct("<II").unpack_from
        self.interfaces: list[_Interface] = []
        self.section: list[_Interface] = []
        self.section_linktypes = np.zeros(0, np.uint16)
        self._block_words = 64
        self._span = 1 << 14
        self._python_limit = 0

    def parse(self, chunk: bytes, pos: int, pending: _Pending, target: int) -> tuple[int, bool]:
        while pending.count < target:
            if self.order:
                positions, end = self._walk(chunk, pos, target - pending.count)
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

    def _walk(self, chunk: bytes, pos: int, limit: int) -> tuple[npt.NDArray[np.int64] | list[int], int]:
        """A run of enhanced packet blocks from `pos` (none if another block is there).

        numpy looks for the run in a window that grows while runs fill it and shrinks to twice the
        last run when it ends early. Python walks instead after short runs (other blocks between
        packets), until it finds a long one, and for the rest of the batch after numpy was misled
        (packet data that looks like a block): the work stays in proportion to the packets found.
        """
        if chunk[pos : pos + 4] != _ENHANCED_PACKET_TYPE[self.order]:
            return [], pos
        if self._python_limit:
            positions, end = _walk_blocks(chunk, pos, min(limit, self._python_limit), self.head)
            if len(positions) >= self._python_limit:
                self._python_limit = 0
            return positions, end
        words = np.frombuffer(chunk, self.order + "u4", count=len(chunk) // 4)
        span = min(self._span, 2 * limit * self._block_words + 1024)
        found = _chain(words[pos >> 2 : (pos >> 2) + span], limit)
        if found is None:  # an incomplete or impossible block: Python and the slow path say which
            return _walk_blocks(chunk, pos, limit, self.head)
        starts, end, misled = found
        if misled:
            self._python_limit = limit
        elif len(starts) < min(limit, SHORT_RUN) and 2 * end < span:
            self._python_limit = SHORT_RUN
        self._block_words = max(8, end // len(starts))
        self._span = min(2 * self._span, MAX_WINDOW) if 2 * end >= span else max(1024, 2 * end)
        return starts * 4 + pos, end * 4 + pos

    def _block(self, chunk: bytes, pos: int, pending: _Pending) -> int | None:
        """Read the block at `pos` one by one; None when it is not all in the chunk yet."""
        if len(chunk) - pos < 12:
            return None
        order = self._order_at(chunk, pos)
        kind: int
        length: int
        kind, length = struct.unpack_from(order + "II", chunk, pos)
        if length % 4 or not _MIN_LENGTH.get(kind, 12) <= length <= MAX_BLOCK:
            raise _Problem(CaptureCorrupt, pos, f"block of type {kind:#x} has an impossible length {length}")
        if pos + length > len(chunk):
            return None
        if struct.unpack_from(order + "I", chunk, pos + length - 4)[0] != length:
            raise _Problem(CaptureCorrupt, pos, f"block length {length} is not repeated at its end")
        if kind == _SECTION_HEADER_TYPE:
            self._start_section(chunk, pos, order)
        elif kind == _INTERFACE_DESCRIPTION:
            self._describe_interface(chunk, pos, length)
        elif kind == _ENHANCED_PACKET:
            self._enhanced_one(chunk, pos, pending)
        elif kind == _SIMPLE_PACKET:
            pending.add_row(*self._simple(chunk, pos, length))
        elif kind == _OBSOLETE_PACKET:
            pending.add_row(*self._obsolete(chunk, pos, length))
        return pos + length

    def _order_at(self, chunk: bytes, pos: int) -> str:
        """The byte order of the block at `pos`: its own for a section header, else the section's."""
        if chunk[pos : pos + 4] != _SECTION_HEADER:
            return self.order
        order = _BYTE_ORDERS.get(chunk[pos + 8 : pos + 12])
        if order is None:
            magic = chunk[pos + 8 : pos + 12].hex()
            raise _Problem(CaptureCorrupt, pos, f"section header has no byte-order magic ({magic})")
        return order

    def _start_section(self, chunk: bytes, pos: int, order: str) -> None:
        major, minor = struct.unpack_from(order + "HH", chunk, pos + 12)
        if major != 1:
            raise _Problem(CaptureCorrupt, pos, f"pcapng version {major}.{minor} is not supported")
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
            raise _Problem(
                CaptureCorrupt, pos, "interface description out of range (if_tsresol, if_tsoffset)"
            )
        interface = _Interface(len(self.interfaces), linktype, snaplen, base, exponent, offset * 10**9)
        self.interfaces.append(interface)
        self.section.append(interface)
        self.section_linktypes = np.array([i.linktype for i in self.section], np.uint16)

    def _interface(self, number: int, pos: int) -> _Interface:
        if number >= len(self.section):
            raise _Problem(CaptureCorrupt, pos, f"packet of interface {number}, not described in its section")
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
            raise _Problem(CaptureCorrupt, pos, f"captured length {caplen} does not fit its block")
        return (
            pos + 28,
            caplen,
            wire,
            interface.one_to_ns(high << 32 | low),
            interface.linktype,
            interface.number,
        )

    def _enhanced_one(self, chunk: bytes, pos: int, pending: _Pending) -> None:
        """Add one complete enhanced packet block (cheaper in Python than in numpy)."""
        (length,) = struct.unpack_from(self.order + "I", chunk, pos + 4)
        if length % 4 or not 32 <= length <= MAX_BLOCK:
            raise _Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))
        number, high, low, caplen, wire = struct.unpack_from(self.order + "5I", chunk, pos + 8)
        (trailer,) = struct.unpack_from(self.order + "I", chunk, pos + length - 4)
        if caplen > length - 32 or trailer != length or number >= len(self.section):
            raise _Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))
        interface = self.section[number]
        ts_ns = interface.one_to_ns(high << 32 | low)
        pending.add_row(pos + 28, caplen, wire, ts_ns, interface.linktype, interface.number)

    def _enhanced(self, chunk: bytes, positions: npt.NDArray[np.int64], pending: _Pending) -> None:
        """Add a run of complete enhanced packet blocks; raise at the first impossible one."""
        if len(positions) < SHORT_RUN // 8:
            for pos in positions.tolist():
                self._enhanced_one(chunk, pos, pending)
            return
        words = np.frombuffer(chunk, self.order + "u4", count=len(chunk) // 4)
        index = positions >> 2
        length = words[index + 1]
        good = _good_prefix((length < 32) | (length % 4 != 0) | (length > MAX_BLOCK))
        index, length = index[:good], length[:good]
        head = _rows(words, index, 7)
        number, caplen = head[:, 2], head[:, 5]
        trailer = words[index + (length >> 2) - 1]
        fits = (caplen <= length - 32) & (trailer == length) & (number < len(self.section))
        good = _good_prefix(~fits)
        if good:
            pending.add(self._columns(index[:good] * 4 + 28, head[:good]))
        if good < len(positions):
            pos = int(positions[good])
            raise _Problem(CaptureCorrupt, pos, self._enhanced_problem(chunk, pos))

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

    def _columns(self, offsets: npt.NDArray[np.int64], head: npt.NDArray[np.uint32]) -> _Columns:
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
        return _Columns(
            offsets=offsets,
            lengths=head[:, 5].astype(np.int32),
            wire_lengths=np.minimum(head[:, 6], _INT32_MAX).astype(np.int32),
            ts_ns=ts_ns,
            linktypes=self.section_linktypes[number],
            interfaces=(number + self.section[0].number).astype(np.uint16),
        )

    def partial(self, chunk: bytes, pos: int) -> str:
        if len(chunk) - pos < 12:
            return f"a block header ({len(chunk) - pos} bytes present)"
        length = struct.unpack_from(self._order_at(chunk, pos) + "I", chunk, pos + 4)[0]
        return f"a block of {length} bytes ({len(chunk) - pos} present)"


class _Source:
    """Reads a stream a chunk at a time; when following, stops early once the data pauses."""

    def __init__(self, stream: BinaryIO, idle_timeout: float | None, read_size: int) -> None:
        self.stream = stream
        self.idle_timeout = idle_timeout
        self.read_size = read_size
        read1 = getattr(stream, "read1", None)
        self._read: Callable[[int], bytes] = read1 if callable(read1) else stream.read
        self._rewinds = idle_timeout is None and _seekable(stream)

    def fill(self, keep: bytes | memoryview) -> tuple[bytes, _Status]:
        """`keep` followed by up to `read_size` new bytes, and why the reading stopped.

        A seekable stream reads `keep` again instead (cheaper than joining it to the new bytes).
        """
        want = self.read_size
        if self._rewinds and len(keep):
            self.stream.seek(-len(keep), io.SEEK_CUR)
            want, keep = want + len(keep), b""
        parts: list[bytes | memoryview] = [keep] if len(keep) else []
        total, started, status = 0, 0.0, _Status.FULL
        while total < want:
            if total and self.idle_timeout is not None and not self._wait(started):
                status = _Status.IDLE
                break
            data = self._read(want - total)
            if not data:
                status = _Status.END
                break
            started = started or time.monotonic()
            parts.append(data)
            total += len(data)
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0], status
        return b"".join(parts), status

    def _wait(self, started: float) -> bool:
        """Whether more data comes within the idle timeout (and before the maximal delay)."""
        assert self.idle_timeout is not None
        timeout = min(self.idle_timeout, started + MAX_DELAY - time.monotonic())
        return timeout > 0 and bool(select.select([self.stream], [], [], timeout)[0])


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _describe_start(start: bytes) -> str:
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in start[:16])
    return f"it starts with {start[:16].hex(' ')} ({text!r})"


def _parser_for(name: str, start: bytes) -> tuple[str, _Parser]:
    """The format and parser the magic number at the start names."""
    if start[:4] in _PCAP_MAGICS:
        order, fraction_ns = _PCAP_MAGICS[start[:4]]
        return "pcap", _PcapParser(order, fraction_ns)
    if start[:4] == _SECTION_HEADER:
        return "pcapng", _PcapngParser()
    if not start:
        raise NotACapture(f"{name} is empty, not a pcap or pcapng capture", details={"source": name})
    message = f"{name} is not a pcap or pcapng capture: {_describe_start(start)}"
    raise NotACapture(message, details={"source": name, "start": start[:16].hex()})


class CaptureReader:
    """A pcap or pcapng capture read as a stream of `PacketBatch`es (iterate it once).

    `format` is "pcap" or "pcapng"; `packets_read` counts the packets handed out so far, and the
    batches number their packets on from 1 across the whole capture.
    """

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        idle_timeout: float | None = None,
        read_size: int = READ_SIZE,
        owns_stream: bool = False,
    ) -> None:
        if batch_size < 1 or read_size < 1:
            raise CaptureError(f"batch_size and read_size must be positive ({batch_size}, {read_size})")
        self.name = name
        self.batch_size = batch_size
        self.packets_read = 0
        self._stream, self._owns_stream = stream, owns_stream
        self._source = _Source(stream, idle_timeout, read_size)
        self._base = 0
        chunk, status = self._source.fill(b"")
        while len(chunk) < 4 and status is not _Status.END:
            chunk, status = self._source.fill(chunk)
        self.format, self._parser = _parser_for(name, chunk)
        self._batches = self._read(chunk, status)

    def __iter__(self) -> Iterator[PacketBatch]:
        return self._batches

    def close(self) -> None:
        """Stop reading, and close the stream if the reader opened it."""
        self._batches.close()
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _read(self, chunk: bytes, status: _Status) -> Generator[PacketBatch, None, None]:
        try:
            yield from self._read_chunks(chunk, status)
        finally:
            if self._owns_stream:
                self._stream.close()

    def _read_chunks(self, chunk: bytes, status: _Status) -> Generator[PacketBatch, None, None]:
        pos, pending = 0, _Pending()
        while True:
            try:
                pos = yield from self._parse(chunk, pos, pending)
            except _Problem as problem:
                if pending.count:
                    yield self._take(chunk, pending)
                raise self._error(problem.kind, problem.offset, problem.reason) from None
            if status is _Status.END:
                break
            if pending.count and (
                status is _Status.IDLE or len(chunk) - pending.first_offset() > self._source.read_size // 2
            ):
                yield self._take(chunk, pending)
            keep = pending.first_offset() if pending.count else pos
            chunk, status = self._source.fill(memoryview(chunk)[keep:])
            pending.shift(-keep)
            pos -= keep
            self._base += keep
        if pending.count:
            yield self._take(chunk, pending)
        if pos < len(chunk):
            reason = f"the input ends inside {self._parser.partial(chunk, pos)}"
            raise self._error(CaptureTruncated, pos, reason)

    def _parse(self, chunk: bytes, pos: int, pending: _Pending) -> Generator[PacketBatch, None, int]:
        while True:
            pos, more = self._parser.parse(chunk, pos, pending, self.batch_size)
            if pending.count >= self.batch_size:
                yield self._take(chunk, pending)
            if more:
                return pos

    def _take(self, chunk: bytes, pending: _Pending) -> PacketBatch:
        batch = pending.take(chunk, self.packets_read + 1)
        self.packets_read += len(batch)
        return batch

    def _error(self, kind: type[CaptureError], offset: int, reason: str) -> CaptureError:
        where = self._base + offset
        state = "truncated" if kind is CaptureTruncated else "corrupt"
        message = (
            f"capture {self.name} is {state} at byte offset {where} "
            f"(after {self.packets_read} complete packets): {reason}"
        )
        return kind(message, details={"source": self.name, "offset": where, "packets": self.packets_read})


def _follows(stream: BinaryIO) -> bool:
    """Whether a stream is followed: it has a file descriptor that is not a regular file."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    return not stat.S_ISREG(mode)


def open_capture_reader(
    source: Source,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    follow: bool | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    read_size: int = READ_SIZE,
) -> CaptureReader:
    """A reader of the pcap or pcapng capture at a path or in a binary stream (format by magic).

    `follow` (default: for streams that are not regular files, such as FIFOs and stdin) yields the
    packets read so far whenever the input pauses for `idle_timeout` seconds. The first bytes are
    read here, so opening a FIFO waits for its writer. Raises `NotACapture` for other input.
    """
    stream: BinaryIO
    if isinstance(source, str | os.PathLike):
        name, stream, owns = os.fspath(source), Path(source).open("rb", buffering=0), True  # noqa: SIM115 (the reader closes it)
    else:
        name, stream, owns = str(getattr(source, "name", "<stream>")), source, False
    follows = _follows(stream) if follow is None else follow
    try:
        return CaptureReader(
            stream,
            name,
            batch_size=batch_size,
            idle_timeout=idle_timeout if follows else None,
            read_size=read_size,
            owns_stream=owns,
        )
    except BaseException:
        if owns:
            stream.close()
        raise


def read_capture(source: Source, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[PacketBatch]:
    """The batches of a capture file or stream, closing what it opened at the end."""
    with open_capture_reader(source, batch_size=batch_size) as reader:
        yield from reader
