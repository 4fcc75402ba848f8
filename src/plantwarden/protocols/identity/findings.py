"""What the identity decoders (ARP, DHCP, LLDP, PROFINET DCP) say about a frame.

One closed list for the four protocols (an `IntEnum` stored as a `uint8` column). A row carries
exactly one finding: the first problem met while decoding, in the order fixed header, type and
code checks, then the options, TLVs or blocks in the order they come.
"""

from __future__ import annotations

from enum import IntEnum


class IdentityFinding(IntEnum):
    """Why a row is not a well-formed ARP, DHCP, LLDP or DCP message (`OK` when it is)."""

    OK = 0
    TRUNCATED = 1
    """The frame ends inside the fixed header: ARP's 8 bytes and its addresses, BOOTP's 236
    bytes, DCP's 12 bytes (frame id to data length), an LLDP TLV header."""
    LENGTH_OVERRUN = 2
    """A length field runs past its container: a DHCP option, an LLDP TLV, a DCP block, or the
    DCP data length past the frame."""
    BAD_FIELD_LENGTH = 3
    """A length the field's type forbids: DHCP option 53 not 1 byte, an LLDP TTL not 2 bytes, a DCP
    IP parameter block not 12 bytes (after its block info or qualifier), an odd Get option list."""
    BAD_ARP_OPCODE = 4
    """An ARP operation code outside 1-25 (IANA's assigned range)."""
    BAD_DHCP_OP = 5
    """A BOOTP op other than 1 (BOOTREQUEST) or 2 (BOOTREPLY)."""
    BAD_MAGIC_COOKIE = 6
    """Bytes after the BOOTP header that do not start with the DHCP magic cookie 99.130.83.99."""
    BAD_DHCP_MESSAGE_TYPE = 7
    """Option 53 with a value outside 1-18."""
    BAD_OVERLOAD = 8
    """Option 52 (overload) with a value other than 1-3, or inside an overloaded field."""
    NO_END_OPTION = 9
    """DHCP options that end without option 255."""
    MISSING_MANDATORY_TLV = 10
    """An LLDPDU that does not start with Chassis ID, Port ID and Time To Live, in this order, or
    repeats one of them."""
    NOT_DCP_FRAME_ID = 11
    """A PROFINET frame id other than 0xFEFC-0xFEFF (not DCP: cyclic data, alarms, PTCP)."""
    BAD_DCP_SERVICE = 12
    """A DCP service id other than 3-6, a service type other than 0, 1 or 5, or a service on a
    frame id that does not carry it (Identify request on 0xFEFE, response on 0xFEFF, Get/Set on
    0xFEFD, Hello on 0xFEFC)."""
    UNEXPECTED = 13
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
