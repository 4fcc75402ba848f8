"""`Dnp3Message`: one data link frame, with its transport segment and, where the frame ends an
application fragment, the fragment's application header and object headers."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.findings import Dnp3Finding
from plantwarden.protocols.dnp3.objects import ObjectHeader

DIR = 0x80
PRM = 0x40
FCB = 0x20
FCV = 0x10
TRANSPORT_FIN = 0x80
TRANSPORT_FIR = 0x40
IIN2_ERRORS = 0x37
"""The IIN2 bits a response's `result` keeps: no function code support (0x01), object unknown
(0x02), parameter error (0x04), already executing (0x10), configuration corrupt (0x20). Event
buffer overflow (0x08) and the reserved bits are the outstation's state, not the request's
failure."""
TRANSPORT_SEGMENT = "transport_segment"
"""The function name of a user data frame that does not hold a whole application fragment."""


@dataclass(frozen=True, slots=True)
class Dnp3Message:
    """One data link frame; "none" values are -1 (0 for `size`), as in the columns."""

    offset: int
    """Where the frame starts in the payload given to the decoder."""
    size: int
    """Bytes of the frame (header block, data blocks and their CRCs); for BAD_START and
    BAD_LENGTH the rest of the payload."""
    from_server: bool
    length: int = -1
    """The link length field: control, addresses and user data bytes."""
    control: int = -1
    """The link control byte: DIR 0x80, PRM 0x40, FCB 0x20, FCV (DFC) 0x10, function 0x0F."""
    destination: int = -1
    source: int = -1
    transport: int = -1
    """The transport header: FIN 0x80, FIR 0x40, sequence 0x3F."""
    app_control: int = -1
    """The application control byte: FIR 0x80, FIN 0x40, CON 0x20, UNS 0x10, sequence 0x0F."""
    app_function: int = -1
    iin: int = -1
    """A response's internal indications, IIN1 in the high byte and IIN2 in the low byte."""
    objects: tuple[ObjectHeader, ...] = ()
    file_mode: int = -1
    fragments: int = 0
    """Transport segments of the application fragment decoded here: 1 for a frame holding all of
    it, more when the `Reassembler` put it together, 0 when there is none."""
    data: bytes = b""
    """The user data (transport segment) without its CRCs; empty when it was not read."""
    status: ParseStatus = ParseStatus.OK
    finding: Dnp3Finding = Dnp3Finding.OK

    @property
    def link_function(self) -> int:
        return -1 if self.control < 0 else self.control & 0x0F

    @property
    def is_response(self) -> bool:
        """A response by its application function, else sent by the secondary by its DIR bit
        (DIR = 1: from the master), else sent by the server."""
        if self.app_function >= 0:
            return self.app_function in fc.RESPONSES
        if self.control >= 0:
            return not self.control & DIR
        return self.from_server

    def function_name(self) -> str:
        if self.app_function >= 0:
            return fc.NAMES.get(self.app_function, "")
        if self.control < 0 or self.finding == Dnp3Finding.BAD_HEADER_CRC:
            return ""
        if self.control & PRM and self.link_function in fc.USER_DATA:
            return TRANSPORT_SEGMENT
        name = fc.link_name(self.control)
        return "" if name is None else f"link_{name}"

    def summary(self) -> Summary:
        """The frame in common terms: the application function where the frame ends a fragment,
        else the link function ("link_ack", ...) or `TRANSPORT_SEGMENT`."""
        objects = self.objects
        first = objects[0] if objects else None
        code = self.app_function
        if code >= 0:
            response = code in fc.RESPONSES
            function = fc.NAMES.get(code, "")
            operation = fc.operation_of(code, first.group if first is not None else -1, self.file_mode)
        else:
            response = self.is_response
            function = self.function_name()
            malformed = self.status == ParseStatus.MALFORMED and not function
            operation = Operation.MALFORMED if malformed else Operation.OTHER
        return Summary(
            code,
            function,
            operation,
            response,
            self.source if response else self.destination,
            first.address if first is not None else -1,
            first.count if first is not None else 0,
            tuple([header.text() for header in objects[:MAX_TARGETS]]),
            self.iin & IIN2_ERRORS if self.iin >= 0 else -1,
            self.status,
            int(self.finding),
        )
