"""The exact path: encapsulation PDUs (TCP and UDP 44818) and class 1 I/O datagrams (UDP 2222)
into `EnipMessage`s, with every variable-size part. No input makes it raise: a bug would show as
the finding `UNEXPECTED`, which the tests look for.
"""

from __future__ import annotations

import socket
import struct

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.enip import messages as m
from plantwarden.protocols.enip.cip import decode_cip
from plantwarden.protocols.enip.findings import EnipFinding
from plantwarden.protocols.enip.messages import CpfItem, EnipMessage, Identity

HEADER = struct.Struct("<HHIIQI")
"""Command, length, session handle, status, sender context, options (Vol. 2 2-3)."""
NULL_ADDRESS, CONNECTED_ADDRESS, SEQUENCED_ADDRESS = 0x0000, 0x00A1, 0x8002
CONNECTED_DATA, UNCONNECTED_DATA = 0x00B1, 0x00B2
IDENTITY_ITEM, SERVICES_ITEM = 0x000C, 0x0100
IDENTITY_FIXED = 33
"""An identity item's bytes before the product name: version, socket address and 8 fields."""
NO_DATA_REQUESTS = (m.LIST_SERVICES, m.LIST_IDENTITY, m.LIST_INTERFACES, m.UNREGISTER_SESSION)


class _Bad(Exception):
    def __init__(self, finding: EnipFinding) -> None:
        super().__init__(finding.name)
        self.finding = finding


def frame_size(payload: bytes, at: int) -> int:
    """The size of the PDU at `at`: 24 plus its length; the rest of the payload when its command
    is reserved (the framing is lost); 0 when fewer than 24 bytes remain."""
    if len(payload) - at < m.HEADER_SIZE:
        return 0
    command = payload[at] | payload[at + 1] << 8
    if command >= m.FIRST_RESERVED:
        return len(payload) - at
    return m.HEADER_SIZE + (payload[at + 2] | payload[at + 3] << 8)


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[EnipMessage], bytes]:
    """The PDUs of one TCP segment (after the bytes left over from the one before, starting at a
    PDU), and the bytes of an incomplete last PDU."""
    found: list[EnipMessage] = []
    at = 0
    while (size := frame_size(payload, at)) and at + size <= len(payload):
        found.append(decode(payload[at : at + size], from_server, offset=at))
        at += size
    return found, payload[at:]


def decode_datagram(payload: bytes, from_server: bool) -> tuple[list[EnipMessage], bytes]:
    """The PDUs of one UDP 44818 datagram; an incomplete last one is a row with its finding."""
    found, rest = decode_payload(payload, from_server)
    if rest:
        found.append(decode(rest, from_server, offset=len(payload) - len(rest)))
    return found, b""


def decode(pdu: bytes, from_server: bool, offset: int = 0) -> EnipMessage:
    """One whole PDU (a short one gives `TRUNCATED_HEADER` or `LENGTH_BEYOND_DATA`)."""
    try:
        return _decode(bytes(pdu), from_server, offset)
    except Exception:  # no input may crash the sensor; the tests show it never happens
        return EnipMessage(offset, from_server, status=ParseStatus.MALFORMED, finding=EnipFinding.UNEXPECTED)


def _decode(pdu: bytes, from_server: bool, offset: int) -> EnipMessage:
    if len(pdu) < m.HEADER_SIZE:
        return EnipMessage(
            offset, from_server, status=ParseStatus.MALFORMED, finding=EnipFinding.TRUNCATED_HEADER
        )
    command, length, session, status, context, options = HEADER.unpack_from(pdu)
    header = {
        "command": command,
        "length": length,
        "session": session,
        "encapsulation_status": status,
        "sender_context": context,
        "options": options,
    }
    if command >= m.FIRST_RESERVED:
        return EnipMessage(
            offset, from_server, **header, status=ParseStatus.MALFORMED,
            finding=EnipFinding.UNKNOWN_COMMAND,
        )  # fmt: skip
    if len(pdu) < m.HEADER_SIZE + length:
        return EnipMessage(
            offset, from_server, **header, status=ParseStatus.MALFORMED,
            finding=EnipFinding.LENGTH_BEYOND_DATA,
        )  # fmt: skip
    data = pdu[m.HEADER_SIZE : m.HEADER_SIZE + length]
    try:
        fields = _command_data(command, data, from_server, status)
    except _Bad as bad:
        return EnipMessage(offset, from_server, **header, status=ParseStatus.MALFORMED, finding=bad.finding)
    return EnipMessage(offset, from_server, **header, **fields)  # type: ignore[arg-type]


def _command_data(command: int, data: bytes, from_server: bool, status: int) -> dict[str, object]:
    """The message fields of a command's data (raises `_Bad`)."""
    if command == m.NOP:
        return {}
    if command not in m.COMMANDS or command in (m.INDICATE_STATUS, m.CANCEL):
        return {"status": ParseStatus.PARTIAL}
    if (not from_server and command in NO_DATA_REQUESTS) or command == m.UNREGISTER_SESSION:
        if data:
            raise _Bad(EnipFinding.BAD_COMMAND_DATA)
        return {}
    if from_server and status and not data:
        return {}  # an error reply carries no command data
    if command == m.REGISTER_SESSION:
        if len(data) != 4:
            raise _Bad(EnipFinding.BAD_COMMAND_DATA)
        return {"protocol_version": data[0] | data[1] << 8}
    if command in (m.LIST_IDENTITY, m.LIST_SERVICES, m.LIST_INTERFACES):
        return _list_reply(items(data))
    if len(data) < 6:
        raise _Bad(EnipFinding.BAD_COMMAND_DATA)
    interface, timeout = struct.unpack_from("<IH", data)
    found = items(data[6:])
    fields: dict[str, object] = {"interface_handle": interface, "timeout": timeout, "items": found}
    if interface != 0:
        fields["status"] = ParseStatus.PARTIAL  # not CIP: the items are not interpreted
        return fields
    if command == m.SEND_RR_DATA:
        fields.update(_unconnected(found, from_server))
    else:
        fields.update(_connected(found, from_server))
    return fields


def items(data: bytes) -> tuple[CpfItem, ...]:
    """A Common Packet Format list that fills `data` exactly (raises `_Bad(BAD_ITEM_LIST)`)."""
    if len(data) < 2:
        raise _Bad(EnipFinding.BAD_ITEM_LIST)
    count, at, found = data[0] | data[1] << 8, 2, []
    for _ in range(count):
        if at + 4 > len(data):
            raise _Bad(EnipFinding.BAD_ITEM_LIST)
        type_id, length = struct.unpack_from("<HH", data, at)
        if at + 4 + length > len(data):
            raise _Bad(EnipFinding.BAD_ITEM_LIST)
        found.append(CpfItem(type_id, data[at + 4 : at + 4 + length]))
        at += 4 + length
    if at != len(data):
        raise _Bad(EnipFinding.BAD_ITEM_LIST)
    return tuple(found)


def _list_reply(found: tuple[CpfItem, ...]) -> dict[str, object]:
    identities, names = [], []
    for item in found:
        if item.type_id == IDENTITY_ITEM:
            identities.append(identity(item.data))
        elif item.type_id == SERVICES_ITEM:
            if len(item.data) != 20:
                raise _Bad(EnipFinding.BAD_IDENTITY)
            names.append(item.data[4:20].split(b"\0", 1)[0].decode("latin-1"))
    return {"items": found, "identities": tuple(identities), "service_names": tuple(names)}


def identity(data: bytes) -> Identity:
    """A CIP Identity item's data (raises `_Bad(BAD_IDENTITY)` unless its fields fill it)."""
    if len(data) < IDENTITY_FIXED + 1:
        raise _Bad(EnipFinding.BAD_IDENTITY)
    name_length = data[IDENTITY_FIXED - 1]
    if len(data) != IDENTITY_FIXED + name_length + 1:
        raise _Bad(EnipFinding.BAD_IDENTITY)
    version = data[0] | data[1] << 8
    port = data[4] << 8 | data[5]  # the socket address is big-endian
    address = socket.inet_ntoa(data[6:10])
    vendor, device, product, major, minor, status, serial = struct.unpack_from("<HHHBBHI", data, 18)
    name = data[IDENTITY_FIXED : IDENTITY_FIXED + name_length].decode("latin-1")
    return Identity(
        version, port, address, vendor, device, product, major, minor, status, serial, name, data[-1]
    )


def _unconnected(found: tuple[CpfItem, ...], from_server: bool) -> dict[str, object]:
    """SendRRData: a null address item and an unconnected data item holding a CIP message."""
    if len(found) < 2 or found[0].type_id != NULL_ADDRESS or found[0].data:
        raise _Bad(EnipFinding.BAD_ITEM)
    if found[1].type_id != UNCONNECTED_DATA:
        raise _Bad(EnipFinding.BAD_ITEM)
    return {"cip": decode_cip(found[1].data, from_server)}


def _connected(found: tuple[CpfItem, ...], from_server: bool) -> dict[str, object]:
    """SendUnitData: a connected address item (connection id) and a connected data item holding
    a sequence count and a CIP message (class 3)."""
    if len(found) < 2 or found[0].type_id != CONNECTED_ADDRESS or len(found[0].data) != 4:
        raise _Bad(EnipFinding.BAD_ITEM)
    if found[1].type_id != CONNECTED_DATA or len(found[1].data) < 2:
        raise _Bad(EnipFinding.BAD_ITEM)
    data = found[1].data
    return {
        "connection_id": int.from_bytes(found[0].data, "little"),
        "sequence": data[0] | data[1] << 8,
        "cip": decode_cip(data[2:], from_server),
    }


def decode_io_datagram(payload: bytes, from_server: bool) -> tuple[list[EnipMessage], bytes]:
    """A class 1 I/O datagram (UDP 2222): one detect-only row with its connection id and
    sequence number (Vol. 2 2-6.2: a sequenced address item and a connected data item)."""
    try:
        return [_io(bytes(payload), from_server)], b""
    except Exception:  # as `decode`
        return [
            EnipMessage(0, from_server, io=True, status=ParseStatus.MALFORMED, finding=EnipFinding.UNEXPECTED)
        ], b""


def _io(payload: bytes, from_server: bool) -> EnipMessage:
    try:
        found = items(payload)
    except _Bad:
        found = ()
    address = found[0] if found else None
    if (
        len(found) < 2
        or found[1].type_id != CONNECTED_DATA
        or address is None
        or (address.type_id, len(address.data)) not in ((SEQUENCED_ADDRESS, 8), (CONNECTED_ADDRESS, 4))
    ):
        return EnipMessage(
            0, from_server, io=True, items=found, status=ParseStatus.MALFORMED,
            finding=EnipFinding.BAD_IO_DATAGRAM,
        )  # fmt: skip
    sequence = int.from_bytes(address.data[4:8], "little") if len(address.data) == 8 else -1
    return EnipMessage(
        0, from_server, items=found, io=True, connection_id=int.from_bytes(address.data[:4], "little"),
        sequence=sequence, status=ParseStatus.PARTIAL,
    )  # fmt: skip
