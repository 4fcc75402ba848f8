"""What the DNP3 decoders say about a link frame: its finding (a closed list, a `uint8` column).

A row carries exactly one finding: the first problem met while decoding it, in the order data
link header, data link function, data block CRCs, transport header, application header, object
headers.
"""

from __future__ import annotations

from enum import IntEnum


class Dnp3Finding(IntEnum):
    """Why a row is not a well-formed DNP3 frame (`OK` when it is)."""

    OK = 0
    BAD_START = 1
    """The frame does not start with 0x05 0x64; the rest of the payload is not framed."""
    BAD_LENGTH = 2
    """The link length is below 5 (control and addresses); the rest of the payload is not framed."""
    BAD_HEADER_CRC = 3
    """The CRC of the 8-byte header block is wrong; the frame is framed by its length, as tshark
    does, and nothing past the header is read."""
    BAD_DATA_CRC = 4
    """The CRC of one of the 16-byte user data blocks is wrong; the user data is not read."""
    TRUNCATED_FRAME = 5
    """Fewer bytes than the link length asks for, and none will follow (`decode_frame` on a lone
    frame). Inside a TCP payload a partial last frame is not a finding: it is left over."""
    UNKNOWN_LINK_FUNCTION = 6
    """A link function code not defined for the frame's PRM bit."""
    NO_USER_DATA = 7
    """A (un)confirmed user data frame without a transport header (link length 5)."""
    UNEXPECTED_USER_DATA = 8
    """A link function other than user data, with user data bytes."""
    APPLICATION_TOO_SHORT = 9
    """An application fragment shorter than its header (2 bytes, 4 in a response)."""
    UNKNOWN_FUNCTION = 10
    """An application function code the specification does not define."""
    BAD_QUALIFIER = 11
    """An object header's qualifier with a reserved range code, prefix code 7 or bit 7 set."""
    BAD_RANGE = 12
    """An object header whose stop index is below its start index."""
    OBJECT_TRUNCATED = 13
    """An object header, prefix or object data runs past the end of the fragment."""
    TRANSPORT_SEQUENCE = 14
    """(`Reassembler` only) a transport segment that does not follow the one before it (not FIR,
    and no segment or another sequence number before it): it is dropped."""
    UNEXPECTED = 15
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
