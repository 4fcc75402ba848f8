"""What the EtherNet/IP decoders say about a PDU: one finding per row, from a closed list.

A row carries the first problem met while decoding it, in the order encapsulation header,
command-specific data, Common Packet Format items, CIP message (header, path, service data).
"""

from __future__ import annotations

from enum import IntEnum


class EnipFinding(IntEnum):
    """Why a row is not a well-formed EtherNet/IP PDU (`OK` when it is)."""

    OK = 0
    TRUNCATED_HEADER = 1
    """Fewer than the 24 bytes of an encapsulation header (a datagram, or the end of a stream)."""
    LENGTH_BEYOND_DATA = 2
    """The encapsulation length asks for more bytes than the datagram holds (UDP; on TCP a partial
    last PDU is left over for the next segment, not a finding)."""
    UNKNOWN_COMMAND = 3
    """An encapsulation command that the specification does not define; the framing is lost, so
    the row takes the rest of the payload."""
    BAD_COMMAND_DATA = 4
    """Command-specific data of the wrong size for its command (RegisterSession not 4 bytes, data
    in a NOP-less request that takes none, SendRRData shorter than its 6 fixed bytes)."""
    BAD_ITEM_LIST = 5
    """A Common Packet Format item count or item length that does not fill the data exactly."""
    BAD_ITEM = 6
    """A CPF item whose type or length is wrong for where it stands (address item of a wrong size,
    SendRRData without an unconnected data item, SendUnitData without a connected one)."""
    BAD_IDENTITY = 7
    """A ListIdentity (or ListServices) reply item whose fields do not fill its length exactly."""
    CIP_TOO_SHORT = 8
    """A CIP message shorter than its header (2 bytes for a request, 4 for a reply plus its
    additional status words)."""
    BAD_PATH = 9
    """A request path whose size exceeds the message, or a segment that runs past the path or has
    a reserved type or format."""
    BAD_EMBEDDED = 10
    """An Unconnected Send or Multiple Service Packet whose sizes or offsets do not fit."""
    BAD_CONNECTION_DATA = 11
    """Forward_Open / Forward_Close fields shorter than the specification's."""
    BAD_IO_DATAGRAM = 12
    """A UDP 2222 datagram that is not a CPF list with a sequenced address and a connected data
    item."""
    UNEXPECTED = 13
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
