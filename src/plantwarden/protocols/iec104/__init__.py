"""IEC 60870-5-104 (IEC 60870-5-104:2006 with the ASDUs of IEC 60870-5-101:2003).

Two paths, identical records:

- exact: `decode_payload(payload, from_server)` gives one TCP payload's `Iec104Message`s (every
  complete APDU: I, S and U frames, with the ASDU's data unit identifier and every information
  object address) and the bytes of an incomplete last APDU; `decode_segments` the columns of
  many payloads, one at a time;
- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payloads at once
  into `Iec104Columns` (one row per APDU, `summary` the common `SummaryColumns`).
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.iec104.columns import SCHEMA, Iec104Columns
from plantwarden.protocols.iec104.exact import Iec104Message, decode_apdu, decode_payload
from plantwarden.protocols.iec104.extract import decode_segments, extract
from plantwarden.protocols.iec104.findings import Iec104Finding

MODULE = ProtocolModule(
    name="iec104",
    support=Support.PARTIAL,
    references=(
        "IEC 60870-5-104:2006 Network access for IEC 60870-5-101 using standard transport profiles "
        "(sec. 5 APCI, I/S/U formats; sec. 8 ASDU types and sizes)",
        "IEC 60870-5-101:2003 Companion standard for basic telecontrol tasks "
        "(sec. 7.2 data unit identifier, 7.3 information elements of each type)",
        "IEC 60870-5-4:1993 Definition and coding of application information elements",
    ),
    tcp_ports=(2404,),
)

__all__ = [
    "MODULE",
    "SCHEMA",
    "Iec104Columns",
    "Iec104Finding",
    "Iec104Message",
    "decode_apdu",
    "decode_payload",
    "decode_segments",
    "extract",
]
