"""Packets as pcap records, laid out by numpy for a whole batch at once; pcapng when a slice
spans several link types."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.core.clock import SECOND_NS

SNAPLEN = 262144
"""Packets longer than this are cut to it (the pcap reader's limit for this snap length)."""
PCAP_MAGIC_NANO = 0xA1B23C4D
FILE_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = 16
RECORD = np.dtype([("sec", "<u4"), ("frac", "<u4"), ("caplen", "<u4"), ("len", "<u4")])
MAX_TS_NS = (1 << 32) * SECOND_NS - 1
"""The last moment a pcap record can hold (its seconds are unsigned 32-bit): early 2106."""


def pcap_file_header(linktype: int) -> bytes:
    """The 24-byte header of a little-endian nanosecond pcap file of `linktype`."""
    return FILE_HEADER.pack(PCAP_MAGIC_NANO, 2, 4, 0, 0, SNAPLEN, linktype)


def pcap_records(batch: PacketBatch, start: int = 0, stop: int | None = None) -> npt.NDArray[np.uint8]:
    """Packets `start:stop` of `batch` as pcap records (16-byte header, then the bytes), one array.

    A batch read from a pcap file already holds its packets 16 bytes apart (the old record
    headers between them): that run is copied whole and only the headers are written over.
    Otherwise (pcapng, live capture, a tap) one gather builds the records from the batch's buffer
    and the new headers side by side.
    """
    stop = len(batch) if stop is None else stop
    offsets = batch.offsets[start:stop]
    caplen = np.minimum(batch.lengths[start:stop], SNAPLEN).astype(np.int64)
    count = len(offsets)
    if not count:
        return np.empty(0, dtype=np.uint8)
    headers = np.empty(count, dtype=RECORD)
    ts = np.clip(batch.ts_ns[start:stop], 0, MAX_TS_NS)
    headers["sec"] = ts // SECOND_NS
    headers["frac"] = ts % SECOND_NS
    headers["caplen"] = caplen
    headers["len"] = np.maximum(batch.wire_lengths[start:stop], caplen)
    sizes = caplen + RECORD_HEADER
    ends = np.cumsum(sizes)
    starts = ends - sizes
    header_bytes = headers.view(np.uint8)
    first = int(offsets[0])
    if np.array_equal(offsets - first, starts):
        records = np.empty(int(ends[-1]), dtype=np.uint8)
        records[RECORD_HEADER:] = batch.buffer[first : first + len(records) - RECORD_HEADER]
        records[(starts[:, None] + np.arange(RECORD_HEADER)).reshape(-1)] = header_bytes
        return records
    return _gather_records(batch.buffer, offsets, caplen, starts, header_bytes)


def _gather_records(
    buffer: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    caplen: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    header_bytes: npt.NDArray[np.uint8],
) -> npt.NDArray[np.uint8]:
    """The records laid out by one gather from (the packets' span of the buffer, the headers).

    The record bytes come in pieces (a header, a packet, a header, ...), each a run of
    consecutive source bytes: the source index of every output byte is the running sum of steps
    of 1, with a jump at the start of each piece.
    """
    count = len(offsets)
    low = int(offsets.min())
    high = int((offsets + caplen).max())
    source = np.concatenate((buffer[low:high], header_bytes))
    lengths = np.empty(2 * count, dtype=np.int64)
    lengths[0::2] = RECORD_HEADER
    lengths[1::2] = caplen
    origins = np.empty(2 * count, dtype=np.int64)
    origins[0::2] = (high - low) + RECORD_HEADER * np.arange(count)
    origins[1::2] = offsets - low
    places = np.empty(2 * count, dtype=np.int64)
    places[0::2] = starts
    places[1::2] = starts + RECORD_HEADER
    kept = lengths > 0  # a packet of 0 bytes is no piece: there is no byte to jump to
    if not kept.all():
        lengths, origins, places = lengths[kept], origins[kept], places[kept]
    steps = np.ones(int(starts[-1] + caplen[-1]) + RECORD_HEADER, dtype=np.int64)
    steps[0] = origins[0]
    steps[places[1:]] = origins[1:] - (origins[:-1] + lengths[:-1]) + 1
    records: npt.NDArray[np.uint8] = source.take(np.cumsum(steps, out=steps))
    return records


def subset(batch: PacketBatch, rows: npt.NDArray[np.int64]) -> PacketBatch:
    return PacketBatch(
        buffer=batch.buffer,
        offsets=batch.offsets[rows],
        lengths=batch.lengths[rows],
        wire_lengths=batch.wire_lengths[rows],
        ts_ns=batch.ts_ns[rows],
        linktypes=batch.linktypes[rows],
        interfaces=batch.interfaces[rows],
    )


def take(batch: PacketBatch, rows: npt.NDArray[np.int64]) -> bytes:
    if len(rows) == len(batch):
        return pcap_records(batch).tobytes()
    return pcap_records(subset(batch, rows)).tobytes()


def capture_file(pieces: Sequence[tuple[int, bytes]]) -> bytes:
    """One pcap file of the records; pcapng when they span several link types."""
    linktypes = {linktype for linktype, _ in pieces}
    if len(linktypes) <= 1:
        linktype = next(iter(linktypes)) if linktypes else 1
        return pcap_file_header(linktype) + b"".join(records for _, records in pieces)
    return _pcapng_file(pieces)


PCAPNG_SECTION = 0x0A0D0D0A
PCAPNG_INTERFACE = 0x00000001
PCAPNG_ENHANCED_PACKET = 0x00000006
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
PCAPNG_IF_TSRESOL = 9


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", block_type, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _pcapng_file(pieces: Sequence[tuple[int, bytes]]) -> bytes:
    """A pcapng file: one section, one interface per link type (nanoseconds), enhanced packet blocks."""
    interfaces: dict[int, int] = {}
    parts = [_pcapng_block(PCAPNG_SECTION, struct.pack("<IHHq", PCAPNG_BYTE_ORDER, 1, 0, -1))]
    for linktype, records in pieces:
        if linktype not in interfaces:
            interfaces[linktype] = len(interfaces)
            resolution = struct.pack("<HHB", PCAPNG_IF_TSRESOL, 1, 9) + bytes(3) + bytes(4)
            parts.append(
                _pcapng_block(PCAPNG_INTERFACE, struct.pack("<HHI", linktype, 0, SNAPLEN) + resolution)
            )
        parts.extend(_enhanced_packets(interfaces[linktype], records))
    return b"".join(parts)


def _enhanced_packets(interface: int, records: bytes) -> Iterable[bytes]:
    position = 0
    while position < len(records):
        seconds, fraction, caplen, wire = struct.unpack_from("<IIII", records, position)
        stamp = seconds * SECOND_NS + fraction
        data = records[position + RECORD_HEADER : position + RECORD_HEADER + caplen]
        head = struct.pack("<IIIII", interface, stamp >> 32, stamp & 0xFFFFFFFF, caplen, wire)
        yield _pcapng_block(PCAPNG_ENHANCED_PACKET, head + data)
        position += RECORD_HEADER + caplen
