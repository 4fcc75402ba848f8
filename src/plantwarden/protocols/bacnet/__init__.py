"""BACnet/IP (ANSI/ASHRAE 135: Annex J BVLC, clause 6 NPDU, clauses 20-21 APDU and encoding).

Two paths, identical records:

- exact: `decode(datagram)` gives one `BacnetMessage` per UDP datagram (BVLC, NPDU, network
  layer message or APDU with its service's parameters), `decode_payload` the same in the
  protocol modules' common form, `exact_columns` a batch's columns;
- fast: `extract(buffer, starts, lengths, from_server)` decodes many datagrams at once into
  `BacnetColumns` (headers and the common fixed-layout PDUs vectorised, the rest exact).
"""

from plantwarden.protocols.bacnet.columns import BacnetColumns, exact_columns
from plantwarden.protocols.bacnet.exact import decode, decode_payload
from plantwarden.protocols.bacnet.extract import extract
from plantwarden.protocols.bacnet.findings import BacnetFinding
from plantwarden.protocols.bacnet.messages import SCHEMA, BacnetMessage
from plantwarden.protocols.bacnet.services import BACNET_PORT
from plantwarden.protocols.common import ProtocolModule, Support

MODULE = ProtocolModule(
    name="bacnet",
    support=Support.PARTIAL,
    references=(
        "ANSI/ASHRAE Standard 135-2020, BACnet: Annex J (BACnet/IP, BVLC)",
        "ANSI/ASHRAE Standard 135-2020, clause 6 (network layer, NPDU)",
        "ANSI/ASHRAE Standard 135-2020, clause 20 (APDU encoding, tagged parameters) and 21 (ASN.1)",
        "ANSI/ASHRAE Standard 135-2020, clauses 13-17 (object access, remote device management services)",
    ),
    udp_ports=(BACNET_PORT,),
)

__all__ = [
    "MODULE",
    "SCHEMA",
    "BacnetColumns",
    "BacnetFinding",
    "BacnetMessage",
    "decode",
    "decode_payload",
    "exact_columns",
    "extract",
]
