"""The exact path's record: one `EnipMessage` per encapsulation PDU (or class 1 I/O datagram).

A PDU is one row however many CIP services it carries: a Multiple Service Packet is one row whose
`quantity` counts its services and whose targets are theirs (the services themselves are in
`cip.embedded`); an Unconnected Send request is the row of the request it carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary
from plantwarden.protocols.enip.cip import RESPONSE_BIT, CipMessage, first_class, targets_of
from plantwarden.protocols.enip.findings import EnipFinding

HEADER_SIZE = 24
NOP, LIST_SERVICES, LIST_IDENTITY, LIST_INTERFACES = 0x0000, 0x0004, 0x0063, 0x0064
REGISTER_SESSION, UNREGISTER_SESSION, SEND_RR_DATA, SEND_UNIT_DATA = 0x0065, 0x0066, 0x006F, 0x0070
INDICATE_STATUS, CANCEL = 0x0072, 0x0073
FIRST_RESERVED = 0x00C8
"""Commands from here up are reserved for the future: a row with one has lost the framing.
Codes below it that are not listed are legacy commands: framed by their length, not decoded."""

COMMANDS: dict[int, tuple[str, Operation]] = {
    NOP: ("nop", Operation.OTHER),
    LIST_SERVICES: ("list_services", Operation.OTHER),
    LIST_IDENTITY: ("list_identity", Operation.IDENTIFY),
    LIST_INTERFACES: ("list_interfaces", Operation.OTHER),
    REGISTER_SESSION: ("register_session", Operation.OTHER),
    UNREGISTER_SESSION: ("unregister_session", Operation.OTHER),
    SEND_RR_DATA: ("send_rr_data", Operation.OTHER),
    SEND_UNIT_DATA: ("send_unit_data", Operation.OTHER),
    INDICATE_STATUS: ("indicate_status", Operation.OTHER),
    CANCEL: ("cancel", Operation.OTHER),
}
"""Encapsulation commands (Vol. 2 table 2-3.2) with their category when they carry no CIP."""

IO_FUNCTION = "class1_io"
MAX_RESULT = 0x7FFFFFFF
"""An encapsulation status is 32 bits and `Summary.result` 31: the few statuses above (none
defined) are saturated to this."""


def encapsulation_result(status: int) -> int:
    return min(status, MAX_RESULT)


def command_name(command: int) -> str:
    if command < 0:
        return ""
    if command in COMMANDS:
        return COMMANDS[command][0]
    return f"{'legacy' if command < FIRST_RESERVED else 'reserved'}_0x{command:04x}"


@dataclass(frozen=True, slots=True)
class Identity:
    """A ListIdentity reply's CIP Identity item (Vol. 2 2-4.3.1)."""

    protocol_version: int
    socket_port: int
    socket_address: str
    vendor_id: int
    device_type: int
    product_code: int
    revision_major: int
    revision_minor: int
    status: int
    serial_number: int
    product_name: str
    state: int


@dataclass(frozen=True, slots=True)
class CpfItem:
    """One Common Packet Format item: its type id and data."""

    type_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class EnipMessage:
    """One encapsulation PDU as the exact decoder reads it; numbers -1 when absent."""

    offset: int
    is_response: bool
    """Sent by the server (port 44818 on TCP; the replying side of a ListIdentity on UDP)."""
    command: int = -1
    length: int = -1
    session: int = -1
    encapsulation_status: int = -1
    sender_context: int = -1
    """The 8 sender context bytes as a little-endian number."""
    options: int = -1
    interface_handle: int = -1
    timeout: int = -1
    items: tuple[CpfItem, ...] = ()
    connection_id: int = -1
    """The connected or sequenced address item's connection id."""
    sequence: int = -1
    """The sequenced address item's sequence number (class 1), or a connected message's 16-bit
    sequence count (class 3)."""
    cip: CipMessage | None = None
    protocol_version: int = -1
    """RegisterSession's protocol version."""
    identities: tuple[Identity, ...] = ()
    service_names: tuple[str, ...] = ()
    """ListServices reply: the services' names."""
    io: bool = False
    """A class 1 I/O datagram (UDP 2222): detected and counted, its data not decoded."""
    status: ParseStatus = ParseStatus.OK
    finding: EnipFinding = EnipFinding.OK

    # The first identity's fields, the device's self-description (ListIdentity replies).
    @property
    def vendor_id(self) -> int:
        return self.identities[0].vendor_id if self.identities else -1

    @property
    def device_type(self) -> int:
        return self.identities[0].device_type if self.identities else -1

    @property
    def product_code(self) -> int:
        return self.identities[0].product_code if self.identities else -1

    @property
    def revision(self) -> str:
        """ "major.minor" ("" when none)."""
        if not self.identities:
            return ""
        return f"{self.identities[0].revision_major}.{self.identities[0].revision_minor}"

    @property
    def device_status(self) -> int:
        return self.identities[0].status if self.identities else -1

    @property
    def serial_number(self) -> int:
        return self.identities[0].serial_number if self.identities else -1

    @property
    def product_name(self) -> str:
        return self.identities[0].product_name if self.identities else ""

    @property
    def state(self) -> int:
        return self.identities[0].state if self.identities else -1

    @property
    def cip_service(self) -> int:
        """The outer CIP service code with the reply bit as sent (-1 when no CIP)."""
        if self.cip is None or self.cip.service < 0:
            return -1
        return self.cip.service | (RESPONSE_BIT if self.cip.is_response else 0)

    @property
    def general_status(self) -> int:
        return -1 if self.cip is None else self.cip.general_status

    def parse_status(self) -> tuple[ParseStatus, EnipFinding]:
        """The row's status and finding: the encapsulation's, else the CIP chain's first."""
        if self.finding != EnipFinding.OK or self.cip is None:
            return self.status, self.finding
        status, finding = self.cip.worst()
        return max(status, self.status), finding

    def summary(self) -> Summary:
        status, finding = self.parse_status()
        if self.io:
            return Summary(
                -1, IO_FUNCTION, Operation.OTHER, self.is_response, address=self.connection_id,
                status=status, finding=finding,
            )  # fmt: skip
        if self.cip is None or self.cip.service < 0:
            operation = COMMANDS.get(self.command, ("", Operation.OTHER))[1]
            if self.command < 0 or self.finding == EnipFinding.UNKNOWN_COMMAND:
                operation = Operation.MALFORMED
            result = (
                encapsulation_result(self.encapsulation_status)
                if self.is_response and self.command >= 0
                else -1
            )
            quantity = len(self.identities) if self.identities else len(self.service_names)
            return Summary(
                self.command, command_name(self.command), operation, self.is_response,
                quantity=quantity, result=result, status=status, finding=finding,
            )  # fmt: skip
        message = self.cip.effective()
        targets = targets_of(message)
        multiple = message.name == "multiple_service_packet"
        quantity = len(message.embedded) if multiple else len(targets)
        route = self.cip.route
        return Summary(
            message.service,
            message.name,
            message.operation,
            self.is_response,
            unit=-1 if route is None else route.slot,
            address=first_class(message),
            quantity=quantity,
            targets=targets[:MAX_TARGETS],
            result=message.general_status,
            status=status,
            finding=finding,
        )
