"""Streaming readers of pcap and pcapng captures (files, FIFOs, stdin) yielding `PacketBatch`es.

The input is read in chunks of 4 MiB (by default), never whole (`source`). For pcap, Python only
walks the chain of record lengths, collecting where each header starts (about 70 ns a packet, the
one per-packet cost); numpy then reads every header field of a batch at once (`classic`). For
pcapng, numpy also finds the runs of enhanced packet blocks (words holding the block type, a
plausible length, the same length at the block's end, each block starting where the previous
ends); where packet data looks like a block and breaks a run, Python walks the rest of the batch,
so that crafted traffic cannot make the reader slow (`ng`, `ng_runs`). A batch's `buffer` is a
view of the chunk it was read from: packets keep their file layout, with the record headers
between them (packet `i` is still `buffer[offsets[i] : offsets[i] + lengths[i]]`).

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
every complete packet before it, then raises `CaptureTruncated` or `CaptureCorrupt` (`reader`).
"""

from plantwarden.capture.pcap.classic import MAX_RECORD
from plantwarden.capture.pcap.ng import MAX_BLOCK
from plantwarden.capture.pcap.reader import (
    DEFAULT_BATCH_SIZE,
    CaptureReader,
    Source,
    open_capture_reader,
    read_capture,
)
from plantwarden.capture.pcap.source import IDLE_TIMEOUT, READ_SIZE

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IDLE_TIMEOUT",
    "MAX_BLOCK",
    "MAX_RECORD",
    "READ_SIZE",
    "CaptureReader",
    "Source",
    "open_capture_reader",
    "read_capture",
]
