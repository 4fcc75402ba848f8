"""S7comm: Siemens S7 communication over ISO-on-TCP (TPKT, RFC 1006; COTP, ISO 8073), TCP port 102.

Two paths, identical records:

- exact: `decode_payload(payload, from_server)` gives one `S7Message` per PDU (a TPKT, or COTP
  data TPDUs up to the end of the TSDU) and the bytes of an incomplete last PDU;
- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payload segments
  at once into `S7Columns` (one row per PDU, with `SummaryColumns`), and per segment the
  leftover bytes.

S7comm-plus (protocol id 0x72) is detected: its version, opcode and function are recorded.
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.s7comm.columns import SCHEMA, S7Columns
from plantwarden.protocols.s7comm.exact import decode_payload, decode_pdu
from plantwarden.protocols.s7comm.extract import decode_segments, extract
from plantwarden.protocols.s7comm.findings import S7Finding
from plantwarden.protocols.s7comm.framing import Frames, split_pdus
from plantwarden.protocols.s7comm.messages import S7Item, S7Message

MODULE = ProtocolModule(
    name="s7comm",
    support=Support.PARTIAL,
    references=(
        "RFC 1006: ISO Transport Service on top of the TCP, Version 3 (TPKT)",
        "ISO/IEC 8073 (ITU-T X.224): Connection-oriented transport protocol, class 0 (COTP)",
        "Wireshark S7comm dissector (packet-s7comm.c, packet-s7comm_szl_ids.c), Wireshark 4.0",
        "Snap7 reference manual 1.4 (S7 protocol: PDU, read/write var, block, SZL, clock services)",
        "ICSNPP S7comm/S7comm-plus Zeek parser (cisagov/icsnpp-s7comm): S7comm-plus header",
    ),
    tcp_ports=(102,),
)

__all__ = [
    "MODULE",
    "SCHEMA",
    "Frames",
    "S7Columns",
    "S7Finding",
    "S7Item",
    "S7Message",
    "decode_payload",
    "decode_pdu",
    "decode_segments",
    "extract",
    "split_pdus",
]
