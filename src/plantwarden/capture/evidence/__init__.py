"""Packet evidence: the recent traffic of one sensor kept on disk as a ring of pcap segments, and
the slice of it that shows an alert, as a pcap file.

`EvidenceRing(directory)` appends every `PacketBatch` the sensor reads (`add`), one write per
batch: numpy lays the record headers and the packets' bytes out at once, so appending costs a
few hundred nanoseconds a packet at most. The ring is a directory of classic pcap files
(nanosecond magic, one link type each, named by a sequence number: `000000000001.pcap`, ...),
each up to `segment_bytes`, and `index.json`, which lists the closed segments with their link
type, packet count, size and first and last packet time. When the whole ring would grow past
`max_bytes`, or a closed segment's newest packet is older than `max_age_s` (packet time, counted
from the newest packet appended), the oldest segments are deleted. Each segment is an ordinary
capture that Wireshark opens as it is.

`slice(since_ns, until_ns, hosts=...)` reads the segments that overlap the window back and
keeps the packets in it (`since_ns <= time < until_ns`) whose IPv4 or IPv6 source or destination
is one of `hosts` (VLAN-tagged and cooked frames too: the capture layer's decoder finds the IP
header), in the order they were appended. The result is one pcap file; when the packets span
several link types (a pcapng input with several interfaces), a pcapng file with one interface
per link type.

A restart reopens the directory and goes on: the segments on disk are taken back, the one that
was being written when the process stopped is read again, and if a crash left a record torn at
its end the file is cut back to the last whole packet. One process writes to a ring at a time
(a lock file); others may open it with `readonly=True` to take slices.
"""

from plantwarden.capture.evidence.items import EvidenceError, EvidenceRingBusy, EvidenceSlice, evidence_item
from plantwarden.capture.evidence.records import pcap_file_header, pcap_records
from plantwarden.capture.evidence.ring import (
    DEFAULT_MAX_BYTES,
    DEFAULT_SEGMENT_BYTES,
    MIN_SEGMENT_BYTES,
    EvidenceRing,
    Segment,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "MIN_SEGMENT_BYTES",
    "EvidenceError",
    "EvidenceRing",
    "EvidenceRingBusy",
    "EvidenceSlice",
    "Segment",
    "evidence_item",
    "pcap_file_header",
    "pcap_records",
]
