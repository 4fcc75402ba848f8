"""What the Modbus/TCP decoders say about a PDU: its finding and its operation category.

Both are closed lists (`IntEnum`s stored as `uint8` columns). A row carries exactly one finding:
the first problem met while decoding it, in the order header, function code, fixed fields, counts,
trailing bytes.
"""

from __future__ import annotations

from enum import IntEnum


class ModbusFinding(IntEnum):
    """Why a row is not a well-formed Modbus/TCP PDU (`OK` when it is)."""

    OK = 0
    TRUNCATED_HEADER = 1
    """Fewer than the 7 bytes of an MBAP header (only from `decode` on a lone ADU)."""
    BAD_PROTOCOL_ID = 2
    """The MBAP protocol identifier is not 0; the rest of the payload is not framed."""
    BAD_LENGTH = 3
    """The MBAP length is below 2 or above 254; the rest of the payload is not framed."""
    LENGTH_BEYOND_DATA = 4
    """The MBAP length asks for more bytes than there are, and none will follow (end of stream).
    Inside a payload a partial last ADU is not a finding: it is left over for the next segment."""
    PDU_TOO_SHORT = 5
    """The PDU ends inside the fixed fields of its function."""
    BAD_BYTE_COUNT = 6
    """A byte count disagrees with the quantity, its own rules, or the bytes present."""
    QUANTITY_OUT_OF_RANGE = 7
    """A quantity outside the range the specification allows for the function."""
    BAD_COIL_VALUE = 8
    """Write single coil (5) with a value other than 0x0000 or 0xFF00."""
    BAD_EXCEPTION_CODE = 9
    """An exception response whose code is not 1-11."""
    UNKNOWN_FUNCTION = 10
    """A function code neither public nor user-defined (0, reserved, unassigned)."""
    UNKNOWN_SUB_FUNCTION = 11
    """A reserved diagnostics sub-function (8) or MEI type (43)."""
    TRAILING_BYTES = 12
    """Bytes after the last field the function defines."""
    EXCEPTION_IN_REQUEST = 13
    """A function code with the exception bit (0x80) sent by the client."""
    BAD_REFERENCE_TYPE = 14
    """A file record sub-request (20, 21) whose reference type is not 6."""
    BAD_READ_CODE = 15
    """Read device identification (43/14) with a read code other than 1-4."""
    BAD_OBJECT_LIST = 16
    """A read device identification response whose objects do not fill the PDU exactly."""
    UNEXPECTED = 17
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""


class Operation(IntEnum):
    """What a function does to the server, the categories conduits and roles are written in."""

    NONE = 0
    """No function code could be read (bad MBAP header)."""
    READ = 1
    WRITE = 2
    PROGRAM = 3
    """Changes the logic or firmware (legacy programming function codes, Schneider UMAS 90)."""
    CONTROL = 4
    """Changes how the server runs: restart, listen-only mode, clearing counters."""
    DIAGNOSTIC = 5
    IDENTIFY = 6
    OTHER = 7
    """User-defined, CANopen general reference (43/13), and unknown function codes."""
