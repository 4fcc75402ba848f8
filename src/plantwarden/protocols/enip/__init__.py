"""EtherNet/IP encapsulation and CIP explicit messaging (ODVA CIP Networks Library Vol. 1 and 2).

Two paths, identical summaries:

- exact: `decode_payload` (a TCP segment's PDUs and the bytes of an incomplete last one),
  `decode_datagram` (a UDP 44818 datagram), `decode_io_datagram` (a class 1 I/O datagram on UDP
  2222, detect-only), each giving `EnipMessage`s;
- fast: `extract(buffer, starts, lengths, from_server)` frames many segments at once into
  `EnipColumns` (one row per PDU).

`ConnectionTracker` follows Forward_Open / Forward_Close so that connected messages resolve to the
path their connection was opened to.
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.enip.cip import CipMessage, CipPath, Connection, decode_cip
from plantwarden.protocols.enip.columns import EnipColumns
from plantwarden.protocols.enip.connections import ConnectionTracker
from plantwarden.protocols.enip.exact import decode, decode_datagram, decode_io_datagram, decode_payload
from plantwarden.protocols.enip.extract import extract
from plantwarden.protocols.enip.findings import EnipFinding
from plantwarden.protocols.enip.messages import CpfItem, EnipMessage, Identity

TCP_PORT = 44818
UDP_PORT = 44818
IO_PORT = 2222

MODULE = ProtocolModule(
    name="enip",
    support=Support.PARTIAL,
    references=(
        "ODVA, The CIP Networks Library, Volume 2: EtherNet/IP Adaptation of CIP, edition 1.x, "
        "chapter 2 (encapsulation protocol) and 2-6 (Common Packet Format)",
        "ODVA, The CIP Networks Library, Volume 1: Common Industrial Protocol, chapter 2 "
        "(message router request/reply), 3-5 (Connection Manager: Forward_Open, Forward_Close, "
        "Unconnected Send), appendix A (common services, Multiple Service Packet), appendix C "
        "(padded EPATH segments)",
        "Rockwell Automation 1756-PM020, Logix 5000 Controllers Data Access (tag services)",
    ),
    tcp_ports=(TCP_PORT,),
    udp_ports=(UDP_PORT, IO_PORT),
)

__all__ = [
    "IO_PORT",
    "MODULE",
    "TCP_PORT",
    "UDP_PORT",
    "CipMessage",
    "CipPath",
    "Connection",
    "ConnectionTracker",
    "CpfItem",
    "EnipColumns",
    "EnipFinding",
    "EnipMessage",
    "Identity",
    "decode",
    "decode_cip",
    "decode_datagram",
    "decode_io_datagram",
    "decode_payload",
    "extract",
]
