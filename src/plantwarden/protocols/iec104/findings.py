"""What the IEC 60870-5-104 decoders say about an APDU (a closed list, stored as `uint8`).

A record carries one finding: the first problem met, in the order start byte, length, control
field, data unit identifier, information objects.
"""

from __future__ import annotations

from enum import IntEnum


class Iec104Finding(IntEnum):
    """Why an APDU is not well formed (`OK` when it is)."""

    OK = 0
    BAD_START = 1
    """The first byte is not 0x68: the framing is lost, the rest of the payload is this record."""
    SHORT_APDU = 2
    """The APDU length is below 4: no whole control field."""
    LONG_APDU = 3
    """The APDU length is above 253 (the maximum of IEC 60870-5-104 sec. 5)."""
    RESERVED_BITS = 4
    """Control field bits the specification fixes are wrong: an S frame's bits 3-8 of octet 1 or
    octet 2, a U frame's octets 2-4, or the low bit of an I or S frame's receive number."""
    BAD_U_FUNCTION = 5
    """A U frame whose first octet is not exactly one of STARTDT, STOPDT, TESTFR act or con."""
    S_U_LENGTH = 6
    """An S or U frame whose length is not 4."""
    SHORT_ASDU = 7
    """An I frame whose ASDU ends before its data unit identifier (6 bytes) and first object
    address (3 bytes)."""
    NO_OBJECTS = 8
    """An ASDU whose number of objects is 0."""
    UNASSIGNED_CAUSE = 9
    """A cause of transmission that is not assigned (0, 14-19, 42, 43)."""
    RESERVED_TYPE = 10
    """A reserved type identification (neither defined nor private, e.g. 0, 22-29, 41-44):
    decoded up to the first object address, status PARTIAL."""
    OBJECTS_TRUNCATED = 11
    """The information objects need more bytes than the APDU length gives."""
    TRAILING_BYTES = 12
    """Bytes after the last information object."""
    TRUNCATED_APDU = 13
    """Fewer bytes than the APDU length says, and no more will come: only from `decode_apdu` on a
    stream's leftover bytes at its end (inside a stream a partial APDU waits for the next segment)."""
    UNEXPECTED = 14
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
