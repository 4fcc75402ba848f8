"""DNP3 (IEEE 1815-2012) over TCP and UDP, port 20000: data link frames with their CRCs, the
transport layer with reassembly of multi-frame application fragments, and the application layer
(function, IIN, object headers).

Two paths, identical records:

- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payload segments
  at once into `Dnp3Columns` (one row per link frame), plus per segment the leftover bytes of a
  partial last frame; it takes application fragments that fit in one frame;
- exact: `decode_payload(payload, from_server)` gives one TCP payload's `Dnp3Message`s, each
  frame on its own, and the bytes of a partial last frame (`decode_datagram` a UDP datagram's,
  where a partial frame is a finding; `decode_segments` the same columns as `extract`); a
  `Reassembler` decodes a stream's payloads in order and gives the frame that ends a multi-frame
  fragment the whole fragment's application layer.
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.dnp3.columns import Dnp3Columns
from plantwarden.protocols.dnp3.crc import crc16
from plantwarden.protocols.dnp3.exact import (
    Reassembler,
    decode_datagram,
    decode_frame,
    decode_payload,
    decode_segments,
    split_frames,
)
from plantwarden.protocols.dnp3.extract import extract
from plantwarden.protocols.dnp3.findings import Dnp3Finding
from plantwarden.protocols.dnp3.messages import Dnp3Message
from plantwarden.protocols.dnp3.objects import ObjectHeader, Objects, walk

MODULE = ProtocolModule(
    name="dnp3",
    support=Support.PARTIAL,
    references=(
        "IEEE 1815-2012, Standard for Electric Power Systems Communications: DNP3 "
        "(clause 9 data link layer, clause 8 transport function, clause 4 application layer, "
        "annex A object library)",
        "IEEE 1815-2012, annex C: DNP3 over IP networks (TCP and UDP port 20000)",
    ),
    tcp_ports=(20000,),
    udp_ports=(20000,),
)

__all__ = [
    "MODULE",
    "Dnp3Columns",
    "Dnp3Finding",
    "Dnp3Message",
    "ObjectHeader",
    "Objects",
    "Reassembler",
    "crc16",
    "decode_datagram",
    "decode_frame",
    "decode_payload",
    "decode_segments",
    "extract",
    "split_frames",
    "walk",
]
