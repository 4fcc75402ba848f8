"""What the S7comm decoders say about a PDU: a closed list of findings (`uint8` column).

A row carries one finding: the first problem met while decoding it, in the order TPKT, COTP, S7
header, parameter, data.
"""

from __future__ import annotations

from enum import IntEnum


class S7Finding(IntEnum):
    """Why a row is not a well-formed TPKT/COTP/S7comm PDU (`OK` when it is)."""

    OK = 0
    BAD_TPKT_HEADER = 1
    """TPKT version not 3, reserved byte not 0, or length below 7; the rest of the payload is
    not framed."""
    TPKT_BEYOND_DATA = 2
    """A TPKT longer than the bytes there are, and none will follow (only from `decode_pdu` on a
    lone buffer). Inside a payload a partial last TPKT is left over, not a finding."""
    BAD_COTP_LENGTH = 3
    """The COTP length indicator runs past the TPKT, or is too small for the TPDU type."""
    UNKNOWN_COTP_TYPE = 4
    """A COTP TPDU type that ISO 8073 does not define."""
    FRAGMENTS_NOT_ENDED = 5
    """COTP data TPDUs without end of TSDU followed by a TPDU that is not data, or more than
    `MAX_FRAGMENTS` of them: the fragments are dropped."""
    UNKNOWN_PROTOCOL_ID = 6
    """COTP user data that is neither S7comm (0x32) nor S7comm-plus (0x72)."""
    TRUNCATED_HEADER = 7
    """Fewer bytes than the S7 header of its ROSCTR (10, or 12 with error class and code)."""
    UNKNOWN_ROSCTR = 8
    """A ROSCTR other than job (1), ack (2), ack_data (3) and userdata (7)."""
    LENGTH_MISMATCH = 9
    """Header, parameter and data lengths do not add up to the bytes of the PDU."""
    UNKNOWN_FUNCTION = 10
    """A job or ack_data parameter function code that S7comm does not define."""
    BAD_PARAMETER = 11
    """The parameter is shorter than its function's fixed fields, or its parts do not fill it."""
    BAD_ITEM = 12
    """A variable item that is not a variable specification (0x12), or whose length runs past
    the parameter; or a data item running past the data."""
    ITEM_COUNT_MISMATCH = 13
    """The item count disagrees with the items the parameter or data holds."""
    BAD_USERDATA_HEADER = 14
    """A userdata parameter whose head is not 00 01 12 or whose length is not 4 or 8, or a
    method other than request (0x11) / response (0x12), or a type other than push, request,
    response."""
    BAD_DATA = 15
    """A data part whose item runs past the data length, or a userdata item whose fields do not fit."""
    TRUNCATED_S7COMM_PLUS = 16
    """An S7comm-plus PDU too short for its header (version, length, opcode, function)."""
    UNEXPECTED = 17
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
