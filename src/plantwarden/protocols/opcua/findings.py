"""What the OPC UA decoders say about a message: a closed list (an `IntEnum` stored as `uint8`).

A row carries one finding: the first problem met while decoding it, in the order header, chunk,
fixed fields, strings, service, trailing bytes.
"""

from __future__ import annotations

from enum import IntEnum


class OpcuaFinding(IntEnum):
    """Why a row is not a well-formed OPC UA binary message (`OK` when it is)."""

    OK = 0
    UNKNOWN_MESSAGE_TYPE = 1
    """The three header bytes are none of HEL, ACK, ERR, RHE, OPN, MSG, CLO: the rest of the
    payload is not framed."""
    BAD_MESSAGE_SIZE = 2
    """The header's message size is below 8 (its own header): the rest of the payload is not framed."""
    BAD_CHUNK_TYPE = 3
    """A chunk type other than F, C, A (or other than F for HEL, ACK, ERR, RHE)."""
    TRUNCATED = 4
    """The message ends inside a field it must carry."""
    BAD_STRING = 5
    """A String or ByteString length below -1."""
    TRAILING_BYTES = 6
    """Bytes after the last field of a HEL, ACK, ERR or RHE message. (An abort chunk whose error
    and reason do not fill it is taken for encrypted: `PARTIAL`, no finding.)"""
    BAD_SECURITY_MODE = 7
    """An unencrypted OpenSecureChannel request whose security mode is not 1-3."""
    BAD_REQUEST_TYPE = 8
    """An unencrypted OpenSecureChannel request whose request type is neither 0 (issue) nor 1 (renew)."""
    WRONG_SERVICE = 9
    """An unencrypted body whose service does not belong to its message type (OPN must carry
    OpenSecureChannel, CLO CloseSecureChannel, MSG neither)."""
    UNEXPECTED = 10
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
