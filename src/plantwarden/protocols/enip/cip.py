"""CIP explicit messages (ODVA, The CIP Networks Library Vol. 1, chapter 2 and appendix A/C):
the message router request and reply, padded EPATHs, and the three services that carry others
or set up connections: Unconnected Send (0x52), Multiple Service Packet (0x0A) and
Forward_Open / Large_Forward_Open / Forward_Close (0x54 / 0x5B / 0x4E, Connection Manager).

`decode_cip(data, is_response)` never raises for bad bytes: it returns a `CipMessage` with a
finding. Services 0x4B-0x63 are object specific: their names (and categories) depend on the
class addressed, which a reply does not carry, so a reply of such a service is named
`object_specific_0xNN` (except Forward_Open's, whose reply is recognisable and parsed).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.enip.findings import EnipFinding

RESPONSE_BIT = 0x80
SERVICE_MASK = 0x7F
MULTIPLE_SERVICE_PACKET = 0x0A
UNCONNECTED_SEND = 0x52
FORWARD_OPEN = 0x54
LARGE_FORWARD_OPEN = 0x5B
FORWARD_CLOSE = 0x4E
SET_ATTRIBUTE_LIST = 0x04
CONNECTION_MANAGER = 0x06
IDENTITY = 0x01
FILE_OBJECT = 0x37
NON_VOLATILE_STORAGE = 0xA1
SYMBOL_OBJECT = 0x6B
TEMPLATE_OBJECT = 0x6C
MAX_DEPTH = 4
"""Embedding levels followed (Unconnected Send inside Multiple Service Packet and so on)."""

COMMON_SERVICES: dict[int, tuple[str, Operation]] = {
    0x01: ("get_attributes_all", Operation.READ),
    0x02: ("set_attributes_all", Operation.WRITE),
    0x03: ("get_attribute_list", Operation.READ),
    0x04: ("set_attribute_list", Operation.WRITE),
    0x05: ("reset", Operation.CONTROL),
    0x06: ("start", Operation.CONTROL),
    0x07: ("stop", Operation.CONTROL),
    0x08: ("create", Operation.WRITE),
    0x09: ("delete", Operation.WRITE),
    MULTIPLE_SERVICE_PACKET: ("multiple_service_packet", Operation.OTHER),
    0x0D: ("apply_attributes", Operation.WRITE),
    0x0E: ("get_attribute_single", Operation.READ),
    0x10: ("set_attribute_single", Operation.WRITE),
    0x11: ("find_next_object_instance", Operation.READ),
    0x14: ("error_response", Operation.OTHER),
    0x15: ("restore", Operation.WRITE),
    0x16: ("save", Operation.WRITE),
    0x17: ("nop", Operation.OTHER),
    0x18: ("get_member", Operation.READ),
    0x19: ("set_member", Operation.WRITE),
    0x1A: ("insert_member", Operation.WRITE),
    0x1B: ("remove_member", Operation.WRITE),
    0x1C: ("group_sync", Operation.OTHER),
}
"""Common services (Vol. 1 appendix A-3): the same meaning for every class."""

OBJECT_SPECIFIC: dict[int, dict[int, tuple[str, Operation]]] = {
    CONNECTION_MANAGER: {
        FORWARD_CLOSE: ("forward_close", Operation.OTHER),
        UNCONNECTED_SEND: ("unconnected_send", Operation.OTHER),
        FORWARD_OPEN: ("forward_open", Operation.OTHER),
        0x56: ("get_connection_data", Operation.READ),
        0x57: ("search_connection_data", Operation.READ),
        0x5A: ("get_connection_owner", Operation.READ),
        LARGE_FORWARD_OPEN: ("large_forward_open", Operation.OTHER),
    },
    FILE_OBJECT: {  # Vol. 1 5-42: uploads read a file from the device, downloads replace it
        0x4B: ("initiate_upload", Operation.READ),
        0x4C: ("initiate_download", Operation.PROGRAM),
        0x4D: ("initiate_partial_read", Operation.READ),
        0x4E: ("initiate_partial_write", Operation.PROGRAM),
        0x4F: ("upload_transfer", Operation.READ),
        0x50: ("download_transfer", Operation.PROGRAM),
        0x51: ("clear_file", Operation.PROGRAM),
    },
}
"""Object-specific services (0x4B-0x63) of the classes whose services are public."""

LOGIX_TAG_SERVICES: dict[int, tuple[str, Operation]] = {
    0x4C: ("read_tag", Operation.READ),
    0x4D: ("write_tag", Operation.WRITE),
    0x4E: ("read_modify_write_tag", Operation.WRITE),
    0x52: ("read_tag_fragmented", Operation.READ),
    0x53: ("write_tag_fragmented", Operation.WRITE),
    0x55: ("get_instance_attribute_list", Operation.READ),
}
"""Logix tag services (Rockwell 1756-PM020): applied only to a symbolic path or to the Symbol and
Template objects (0x6B, 0x6C), where they are unambiguous."""

REPLY_NAMES: dict[int, str] = {FORWARD_OPEN: "forward_open", LARGE_FORWARD_OPEN: "large_forward_open"}

SEVERITY = (
    Operation.PROGRAM,
    Operation.CONTROL,
    Operation.WRITE,
    Operation.DIAGNOSTIC,
    Operation.READ,
    Operation.IDENTIFY,
    Operation.OTHER,
)
"""A Multiple Service Packet's category: the first in this order among its services'."""

LOGICAL_TYPES = ("class", "instance", "member", "connection_point", "attribute", "special", "service_id")
LOGICAL_8BIT = {0x20 | logical << 2: LOGICAL_TYPES[logical] for logical in (0, 1, 2, 3, 4, 6)}
"""Segment codes of the 8-bit logical segments but the electronic key: their kind."""
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")


class Bad(Exception):
    """A decoding step met bytes that break the specification (internal, never escapes)."""

    def __init__(self, finding: EnipFinding) -> None:
        super().__init__(finding.name)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class CipPath:
    """A padded EPATH's segments in order: (kind, value); kinds are "port" (value: link address,
    -1 when it is more than a byte), the logical kinds ("class", "instance", "member",
    "connection_point", "attribute", "service_id"; "special" for an electronic key, value its key
    format), "network", "symbol" (value: the ANSI text) and "data"."""

    segments: tuple[tuple[str, int | str], ...] = ()

    def first(self, kind: str) -> int:
        """The value of the first logical segment of `kind` (-1 if none)."""
        for name, value in self.segments:
            if name == kind and isinstance(value, int):
                return value
        return -1

    @property
    def class_id(self) -> int:
        return self.first("class")

    @property
    def instance(self) -> int:
        return self.first("instance")

    @property
    def attribute(self) -> int:
        return self.first("attribute")

    @property
    def symbolic(self) -> bool:
        return any(name == "symbol" for name, _ in self.segments)

    @property
    def slot(self) -> int:
        """The link address of the first port segment (the backplane slot of a route path)."""
        return self.first("port")

    def text(self) -> str:
        """The target as text: "class 0x01 instance 1 attribute 7", "Program:Main.Tag[3]"."""
        text, after_symbol = "", False
        for kind, value in self.segments:
            if kind == "symbol":
                text += f"{'.' if after_symbol else ' ' if text else ''}{value}"
                after_symbol = True
            elif kind == "member" and after_symbol:
                text += f"[{value}]"
            elif kind == "class":
                text += f"{' ' if text else ''}class 0x{value:02x}"
                after_symbol = False
            elif kind in LOGICAL_TYPES and kind != "special":
                text += f"{' ' if text else ''}{kind} {value}"
                after_symbol = False
        return text


@dataclass(frozen=True, slots=True)
class Connection:
    """Forward_Open, Large_Forward_Open or Forward_Close fields (request or reply); -1 for none."""

    kind: str
    connection_serial: int = -1
    vendor_id: int = -1
    originator_serial: int = -1
    o_t_connection_id: int = -1
    """Chosen by the target (in the reply); the originator sends on it."""
    t_o_connection_id: int = -1
    """Chosen by the originator (in the request); the target sends on it."""
    connection_path: CipPath | None = None

    @property
    def triad(self) -> tuple[int, int, int]:
        """The connection triad that names the connection across open and close."""
        return (self.connection_serial, self.vendor_id, self.originator_serial)


@dataclass(frozen=True, slots=True)
class CipMessage:
    """One CIP request or reply; services embedded in it are in `embedded`."""

    service: int
    """The service code without the reply bit."""
    is_response: bool
    name: str
    operation: Operation
    path: CipPath | None = None
    """The request path (requests only)."""
    general_status: int = -1
    """A reply's general status (0 success); -1 in a request."""
    extended_status: tuple[int, ...] = ()
    data: bytes = b""
    embedded: tuple[CipMessage, ...] = ()
    """Multiple Service Packet: its services or replies; Unconnected Send: the embedded request."""
    route: CipPath | None = None
    """Unconnected Send: the route path."""
    connection: Connection | None = None
    attributes: tuple[int, ...] = ()
    """Get_Attribute_List request: the attribute ids asked for; Set_Attribute_List: the first."""
    status: ParseStatus = ParseStatus.OK
    finding: EnipFinding = EnipFinding.OK

    def chain(self) -> list[CipMessage]:
        """This message and the ones embedded in it, depth first (the order a dissector shows)."""
        found = [self]
        for inner in self.embedded:
            found.extend(inner.chain())
        return found

    def worst(self) -> tuple[ParseStatus, EnipFinding]:
        """The first finding of the chain (depth first), or the highest parse status."""
        status = ParseStatus.OK
        for message in self.chain():
            if message.finding != EnipFinding.OK:
                return message.status, message.finding
            status = max(status, message.status)
        return status, EnipFinding.OK

    def effective(self) -> CipMessage:
        """The service a record is about: an Unconnected Send request's embedded request."""
        message = self
        while (
            not message.is_response
            and message.service == UNCONNECTED_SEND
            and message.name == "unconnected_send"
            and message.embedded
        ):
            message = message.embedded[0]
        return message


def service_name(service: int, path: CipPath | None, is_response: bool) -> tuple[str, Operation]:
    """A service's name and category, given the request path it goes to (None for a reply)."""
    if path is None and 0 <= service <= SERVICE_MASK:
        return UNADDRESSED_NAMES[service]
    return _service_name(service, path, is_response)


def _service_name(service: int, path: CipPath | None, is_response: bool) -> tuple[str, Operation]:
    if service in COMMON_SERVICES:
        name, operation = COMMON_SERVICES[service]
        if operation == Operation.READ and path is not None and path.class_id == IDENTITY:
            operation = Operation.IDENTIFY
        return name, operation
    if 0x4B <= service <= 0x63:
        if is_response or path is None:
            return REPLY_NAMES.get(service, f"object_specific_0x{service:02x}"), Operation.OTHER
        class_id = path.class_id
        if class_id in OBJECT_SPECIFIC and service in OBJECT_SPECIFIC[class_id]:
            return OBJECT_SPECIFIC[class_id][service]
        if class_id == NON_VOLATILE_STORAGE:  # firmware update object: every service changes it
            return f"nvs_service_0x{service:02x}", Operation.PROGRAM
        if (path.symbolic or class_id in (SYMBOL_OBJECT, TEMPLATE_OBJECT)) and service in LOGIX_TAG_SERVICES:
            return LOGIX_TAG_SERVICES[service]
        return f"object_specific_0x{service:02x}", Operation.OTHER
    return f"service_0x{service:02x}", Operation.OTHER


UNADDRESSED_NAMES = tuple(_service_name(code, None, True) for code in range(SERVICE_MASK + 1))
"""`service_name` without a path (a reply, or a request whose path did not decode), by code:
the same whether a reply or not, as no path tells the class."""


def strongest(operations: list[Operation]) -> Operation:
    """The first of `SEVERITY` present in `operations` (OTHER when empty)."""
    for operation in SEVERITY:
        if operation in operations:
            return operation
    return Operation.OTHER


def decode_path(data: bytes) -> CipPath:
    """The segments of a padded EPATH that fills `data` exactly (raises `Bad(BAD_PATH)`)."""
    segments: list[tuple[str, int | str]] = []
    at, end = 0, len(data)

    def need(count: int) -> None:
        if at + count > end:
            raise Bad(EnipFinding.BAD_PATH)

    while at < end:
        code = data[at]
        if code in LOGICAL_8BIT and at + 2 <= end:  # the usual segment, read in one step
            segments.append((LOGICAL_8BIT[code], data[at + 1]))
            at += 2
            continue
        kind = code >> 5
        if kind == 0:  # port segment: [size] [16-bit port] link address, padded to a word
            start, extended, port = at, code & 0x10, code & 0x0F
            size, at = 1, at + 1
            if extended:
                need(1)
                size, at = data[at], at + 1
            if port == 0x0F:
                need(2)
                at += 2
            need(size)
            segments.append(("port", data[at] if size == 1 else -1))
            at += size
            if (at - start) % 2:
                need(1)
                at += 1
        elif kind == 1:  # logical segment
            logical, form = (code >> 2) & 0x07, code & 0x03
            if logical == 7:
                raise Bad(EnipFinding.BAD_PATH)  # extended logical: reserved uses
            if logical == 5:  # electronic key: key format 4, then 8 bytes
                need(2)
                key_format = data[at + 1]
                if key_format != 4:
                    raise Bad(EnipFinding.BAD_PATH)
                need(10)
                segments.append(("special", key_format))
                at += 10
                continue
            if form == 0:
                need(2)
                value = data[at + 1]
                at += 2
            elif form == 1:
                need(4)
                value = U16.unpack_from(data, at + 2)[0]
                at += 4
            elif form == 2 and logical in (1, 2, 3):  # 32-bit: instance, member, connection point only
                need(6)
                value = U32.unpack_from(data, at + 2)[0]
                at += 6
            else:
                raise Bad(EnipFinding.BAD_PATH)
            segments.append((LOGICAL_TYPES[logical], value))
        elif kind == 2:  # network segment
            need(2)
            size = 2 + 2 * data[at + 1] if code & 0x10 else 2
            need(size)
            segments.append(("network", code & 0x1F))
            at += size
        elif kind == 4:  # data segment
            need(2)
            if code == 0x80:  # simple data: size in words
                size = 2 + 2 * data[at + 1]
                need(size)
                segments.append(("data", data[at + 1]))
            elif code == 0x91:  # ANSI extended symbol: size in bytes, padded to a word
                length = data[at + 1]
                size = 2 + length + length % 2
                need(size)
                text = data[at + 2 : at + 2 + length].decode("latin-1")
                segments.append(("symbol", text))
            else:
                raise Bad(EnipFinding.BAD_PATH)
            at += size
        else:  # symbolic (3), reserved (5-7): not in the padded paths explicit messages carry
            raise Bad(EnipFinding.BAD_PATH)
    return CipPath(tuple(segments))


def decode_cip(data: bytes, is_response: bool, depth: int = 0) -> CipMessage:
    """The CIP message `data` (a whole one), a reply when `is_response`; never raises `Bad`."""
    if not data:
        return CipMessage(-1, is_response, "", Operation.MALFORMED, finding=EnipFinding.CIP_TOO_SHORT)
    service = data[0] & SERVICE_MASK
    if is_response:
        return _reply(data, service, depth)
    return _request(data, service, depth)


def _broken(service: int, is_response: bool, finding: EnipFinding, path: CipPath | None = None) -> CipMessage:
    name, operation = service_name(service, path, is_response)
    return CipMessage(
        service, is_response, name, operation, path, finding=finding, status=ParseStatus.MALFORMED
    )


def _request(data: bytes, service: int, depth: int) -> CipMessage:
    if len(data) < 2:
        return _broken(service, False, EnipFinding.CIP_TOO_SHORT)
    end = 2 + 2 * data[1]
    if end > len(data):
        return _broken(service, False, EnipFinding.BAD_PATH)
    try:
        path = decode_path(data[2:end])
    except Bad as bad:
        return _broken(service, False, bad.finding)
    name, operation = service_name(service, path, False)
    body = data[end:]
    base = CipMessage(service, False, name, operation, path, data=body)
    try:
        if name == "multiple_service_packet":
            return _multiple(base, body, depth)
        if name == "unconnected_send":
            return _unconnected_send(base, body, depth)
        if name in ("forward_open", "large_forward_open"):
            return _forward_open_request(base, body)
        if name == "forward_close":
            return _forward_close_request(base, body)
        if name in ("get_attribute_list", "set_attribute_list"):
            return _attribute_list(base, body)
    except Bad as bad:
        return _with(base, bad.finding)
    return base


def _reply(data: bytes, service: int, depth: int) -> CipMessage:
    if len(data) < 4 or len(data) < 4 + 2 * data[3]:
        return _broken(service, True, EnipFinding.CIP_TOO_SHORT)
    words = data[3]
    extended = tuple(U16.unpack_from(data, 4 + 2 * index)[0] for index in range(words))
    name, operation = service_name(service, None, True)
    body = data[4 + 2 * words :]
    base = CipMessage(service, True, name, operation, None, data[2], extended, body)
    try:
        if name == "multiple_service_packet" and body:
            return _multiple(base, body, depth)
        if name in ("forward_open", "large_forward_open"):
            return _forward_open_reply(base, body)
    except Bad as bad:
        return _with(base, bad.finding)
    return base


def _with(base: CipMessage, finding: EnipFinding) -> CipMessage:
    return replace(base, status=ParseStatus.MALFORMED, finding=finding)


def _multiple(base: CipMessage, body: bytes, depth: int) -> CipMessage:
    """Vol. 1 A-4.10: a count, offsets from the count, then the services (or replies)."""
    if len(body) < 2:
        raise Bad(EnipFinding.BAD_EMBEDDED)
    count = U16.unpack_from(body)[0]
    if len(body) < 2 + 2 * count:
        raise Bad(EnipFinding.BAD_EMBEDDED)
    offsets = [U16.unpack_from(body, 2 + 2 * index)[0] for index in range(count)]
    bounds = [*offsets, len(body)]
    if depth >= MAX_DEPTH:
        raise Bad(EnipFinding.BAD_EMBEDDED)
    for index in range(count):
        if not 2 + 2 * count <= bounds[index] <= bounds[index + 1] <= len(body):
            raise Bad(EnipFinding.BAD_EMBEDDED)
    embedded = tuple(
        decode_cip(body[bounds[index] : bounds[index + 1]], base.is_response, depth + 1)
        for index in range(count)
    )
    operation = base.operation
    if count:
        operation = strongest([message.effective().operation for message in embedded])
    return CipMessage(  # as `replace(base, ...)`, without its cost per call
        base.service, base.is_response, base.name, operation, base.path, base.general_status,
        base.extended_status, base.data, embedded,
    )  # fmt: skip


def _unconnected_send(base: CipMessage, body: bytes, depth: int) -> CipMessage:
    """Vol. 1 3-5.6.1: priority/tick, timeout ticks, message size, message (padded), route path."""
    if len(body) < 4 or depth >= MAX_DEPTH:
        raise Bad(EnipFinding.BAD_EMBEDDED)
    size = U16.unpack_from(body, 2)[0]
    at = 4 + size + size % 2
    if at + 2 > len(body):
        raise Bad(EnipFinding.BAD_EMBEDDED)
    route_end = at + 2 + 2 * body[at]
    if route_end != len(body):
        raise Bad(EnipFinding.BAD_EMBEDDED)
    inner = decode_cip(body[4 : 4 + size], False, depth + 1)
    route = decode_path(body[at + 2 : route_end])
    return replace(base, embedded=(inner,), route=route)


def _forward_open_request(base: CipMessage, body: bytes) -> CipMessage:
    """Vol. 1 3-5.5.2: 36 fixed bytes (40 for Large_Forward_Open), then the connection path."""
    fixed = 40 if base.service == LARGE_FORWARD_OPEN else 36
    if len(body) < fixed:
        raise Bad(EnipFinding.BAD_CONNECTION_DATA)
    end = fixed + 2 * body[fixed - 1]
    if end != len(body):
        raise Bad(EnipFinding.BAD_CONNECTION_DATA)
    o_t, t_o, serial, vendor, originator = struct.unpack_from("<IIHHI", body, 2)
    path = decode_path(body[fixed:end])
    connection = Connection(base.name, serial, vendor, originator, o_t, t_o, path)
    return replace(base, connection=connection)


def _forward_close_request(base: CipMessage, body: bytes) -> CipMessage:
    """Vol. 1 3-5.5.3: priority/tick, timeout, triad, path size, reserved, connection path."""
    if len(body) < 12:
        raise Bad(EnipFinding.BAD_CONNECTION_DATA)
    end = 12 + 2 * body[10]
    if end != len(body):
        raise Bad(EnipFinding.BAD_CONNECTION_DATA)
    serial, vendor, originator = struct.unpack_from("<HHI", body, 2)
    path = decode_path(body[12:end])
    return replace(base, connection=Connection(base.name, serial, vendor, originator, connection_path=path))


def _forward_open_reply(base: CipMessage, body: bytes) -> CipMessage:
    """Success: ids, triad, APIs, application reply; failure: triad and remaining path size."""
    if base.general_status == 0:
        if len(body) < 26 or len(body) != 26 + 2 * body[24]:
            raise Bad(EnipFinding.BAD_CONNECTION_DATA)
        o_t, t_o, serial, vendor, originator = struct.unpack_from("<IIHHI", body)
        return replace(base, connection=Connection(base.name, serial, vendor, originator, o_t, t_o))
    if len(body) < 8:
        raise Bad(EnipFinding.BAD_CONNECTION_DATA)
    serial, vendor, originator = struct.unpack_from("<HHI", body)
    return replace(base, connection=Connection(base.name, serial, vendor, originator))


def _attribute_list(base: CipMessage, body: bytes) -> CipMessage:
    """Get_Attribute_List request: a count and the attribute ids (kept when they fill the data).
    Set_Attribute_List: a count, then each id with its value, whose size depends on the class:
    only the first id is kept."""
    if len(body) < 4:
        return base
    count = U16.unpack_from(body)[0]
    if base.service == SET_ATTRIBUTE_LIST and count:
        return replace(base, attributes=(U16.unpack_from(body, 2)[0],))
    if len(body) == 2 + 2 * count:
        ids = tuple(U16.unpack_from(body, 2 + 2 * index)[0] for index in range(count))
        return replace(base, attributes=ids)
    return base


def targets_of(message: CipMessage) -> tuple[str, ...]:
    """The record's targets: a Multiple Service Packet's services' targets, a Forward_Open's
    connection path, a Get_Attribute_List's attributes, or the request path."""
    if message.is_response:
        return ()
    if message.name == "multiple_service_packet" and message.embedded:
        return tuple(text for inner in message.embedded for text in targets_of(inner.effective())[:1])
    path = message.path
    if message.connection is not None and message.connection.connection_path is not None:
        path = message.connection.connection_path
    if path is None:
        return ()
    text = path.text()
    if message.attributes:
        return tuple(f"{text} attribute {attribute}" for attribute in message.attributes)
    return (text,) if text else ()


def first_class(message: CipMessage) -> int:
    """The class of the record's first target (-1 when none)."""
    if message.is_response:
        return -1
    if message.name == "multiple_service_packet" and message.embedded:
        for inner in message.embedded:
            class_id = first_class(inner.effective())
            if class_id >= 0:
                return class_id
        return -1
    path = message.path
    if message.connection is not None and message.connection.connection_path is not None:
        path = message.connection.connection_path
    return -1 if path is None else path.class_id
