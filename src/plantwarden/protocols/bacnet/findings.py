"""What the BACnet/IP decoders say about a datagram: its finding (a closed list, stored as `uint8`).

A row carries exactly one finding, the first problem met while decoding, in the order BVLC
header, BVLC body, NPDU header, network message, APDU header, service parameters.
"""

from __future__ import annotations

from enum import IntEnum


class BacnetFinding(IntEnum):
    """Why a datagram is not a well-formed BACnet/IP message (`OK` when it is)."""

    OK = 0
    TRUNCATED = 1
    """Fewer than the 4 bytes of a BVLC header."""
    BAD_BVLC_TYPE = 2
    """The BVLC type is not 0x81 (BACnet/IP): not framed further."""
    BAD_BVLC_LENGTH = 3
    """The BVLC length differs from the datagram's size (reported when nothing else is wrong:
    the whole datagram is decoded, as Wireshark does)."""
    UNKNOWN_BVLC_FUNCTION = 4
    """A BVLC function above 0x0C."""
    BAD_BVLC_BODY = 5
    """A BVLC message whose body does not have its function's size (BDT/FDT entries, TTL, result)."""
    BAD_NPDU_VERSION = 6
    """The NPDU protocol version is not 1."""
    NPDU_TOO_SHORT = 7
    """The NPDU ends inside its header, addresses, hop count or message type."""
    BAD_NPDU_ADDRESS = 8
    """A source address with SLEN 0 or SNET 0xFFFF (clause 6.2.2)."""
    BAD_NETWORK_MESSAGE = 9
    """A network layer message whose body does not have its type's size, or a reserved type."""
    APDU_TOO_SHORT = 10
    """The APDU is missing or ends inside its fixed header (type, flags, invoke id, service)."""
    UNKNOWN_PDU_TYPE = 11
    """An APDU type 8-15."""
    UNKNOWN_SERVICE = 12
    """A confirmed service choice above 33 or an unconfirmed one above 14."""
    BAD_TAG = 13
    """The parameters' tags are broken: a length beyond the data, an opening tag left open, a
    closing tag never opened, a primitive value of the wrong size."""
    MISSING_PARAMETER = 14
    """A required parameter of a decoded service is absent, or has another tag."""
    TRAILING_BYTES = 15
    """Bytes after the last parameter the service or PDU type defines."""
    UNEXPECTED = 16
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
