"""Frames written from the specifications, independently of the decoder: the encapsulation and
its commands through scapy's contrib layer (`scapy.contrib.enipTCP`), CIP messages (which scapy
does not cover: it stops at the CPF items) by hand after ODVA Vol. 1 chapter 2, 3-5, appendix A
and C.

scapy's layer has quirks worked around here: `ENIPTCP.length` fills itself only when set to
None; CPF `ItemData.length` and `ENIPListIdentityItem.itemLength` never fill themselves;
the CPF `itemCount` does not count itself (its default is 0, not None);
`ItemData.data` is an `XLEStrLenField`, which writes its bytes in reverse order (so `item` hands
it reversed bytes to get them on the wire as given); and the
item counts of ListIdentity, ListServices and ListInterfaces are big-endian `FieldLenField`s
(the specification's UINT is little-endian), so those replies get their count written here.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from scapy.compat import raw
from scapy.contrib.enipTCP import (
    ENIPTCP,
    ENIPListIdentityItem,
    ENIPListServicesItem,
    ENIPRegisterSession,
    ENIPSendRRData,
    ENIPSendUnitData,
    ItemData,
)
from scapy.packet import Packet

from plantwarden.protocols import enip
from plantwarden.protocols.enip.columns import EnipColumns
from plantwarden.protocols.enip.extract import decode_segments

SESSION = 0x12345678
CONTEXT = 0x0102030405060708


# ----- encapsulation (scapy) -----
def encapsulation(
    command: int, body: bytes | Packet = b"", *, status: int = 0, session: int = SESSION
) -> bytes:
    packet = ENIPTCP(commandId=command, length=None, session=session, status=status, senderContext=CONTEXT)
    if isinstance(body, Packet):
        return raw(packet / body)
    return raw(packet / body) if body else raw(packet)


def register_session(version: int = 1) -> bytes:
    return encapsulation(0x65, ENIPRegisterSession(protocolVersion=version, options=0))


def item(type_id: int, data: bytes = b"") -> ItemData:
    """A CPF item with `data` on the wire as given (see the module docstring)."""
    return ItemData(typeId=type_id, length=len(data), data=data[::-1])


def send_rr_data(cip: bytes, *, timeout: int = 10) -> bytes:
    items = [item(0x0000), item(0x00B2, cip)]
    return encapsulation(
        0x6F, ENIPSendRRData(interface=0, timeout=timeout, itemCount=len(items), items=items)
    )


def send_unit_data(connection_id: int, sequence: int, cip: bytes) -> bytes:
    data = struct.pack("<H", sequence) + cip
    items = [item(0x00A1, struct.pack("<I", connection_id)), item(0x00B1, data)]
    return encapsulation(0x70, ENIPSendUnitData(interface=0, timeout=0, itemCount=len(items), items=items))


def identity_item(**fields: Any) -> bytes:
    name = fields.pop("productName", b"1756-ENBT/A")
    defaults: dict[str, Any] = {
        "itemTypeCode": 0x0C,
        "protocolVersion": 1,
        "sinFamily": 2,
        "sinPort": 44818,
        "sinAddress": "192.168.1.20",
        "vendorId": 1,
        "deviceType": 12,
        "productCode": 58,
        "revisionMajor": 4,
        "revisionMinor": 3,
        "status": 0x0030,
        "serialNumber": 0x00524D8E,
        "state": 3,
    }
    defaults.update(fields)
    body_size = 33 + len(name) + 1
    return raw(
        ENIPListIdentityItem(itemLength=body_size, productName=name, productNameLength=len(name), **defaults)
    )


def list_identity_reply(*items: bytes, status: int = 0) -> bytes:
    return encapsulation(0x63, struct.pack("<H", len(items)) + b"".join(items), status=status)


def list_services_reply() -> bytes:
    item = raw(
        ENIPListServicesItem(
            itemTypeCode=0x100,
            itemLength=20,
            protocolVersion=1,
            flag=0x120,
            serviceName=b"Communications\0\0",
        )
    )
    return encapsulation(0x04, struct.pack("<H", 1) + item)


# ----- CIP (by hand, after the specification) -----
def logical(kind: int, value: int) -> bytes:
    """A logical segment: kind 0 class, 1 instance, 2 member, 3 connection point, 4 attribute."""
    if value < 0x100:
        return bytes((0x20 | kind << 2, value))
    if value < 0x10000:
        return bytes((0x21 | kind << 2, 0)) + struct.pack("<H", value)
    return bytes((0x22 | kind << 2, 0)) + struct.pack("<I", value)


def path(class_id: int = -1, instance: int = -1, attribute: int = -1) -> bytes:
    found = b""
    for kind, value in ((0, class_id), (1, instance), (4, attribute)):
        if value >= 0:
            found += logical(kind, value)
    return found


def symbol(name: str) -> bytes:
    text = name.encode("ascii")
    return bytes((0x91, len(text))) + text + (b"\0" if len(text) % 2 else b"")


def port(number: int, link: int) -> bytes:
    return bytes((number, link))


def request(service: int, epath: bytes, data: bytes = b"") -> bytes:
    assert len(epath) % 2 == 0
    return bytes((service, len(epath) // 2)) + epath + data


def reply(service: int, status: int = 0, extended: tuple[int, ...] = (), data: bytes = b"") -> bytes:
    words = b"".join(struct.pack("<H", value) for value in extended)
    return bytes((service | 0x80, 0, status, len(extended))) + words + data


def multiple(*messages: bytes, is_reply: bool = False) -> bytes:
    offsets, at = [], 2 + 2 * len(messages)
    for message in messages:
        offsets.append(at)
        at += len(message)
    body = struct.pack(f"<H{len(messages)}H", len(messages), *offsets) + b"".join(messages)
    if is_reply:
        return reply(0x0A, data=body)
    return request(0x0A, path(0x02, 1), body)


def unconnected_send(embedded: bytes, route: bytes) -> bytes:
    body = bytes((0x07, 0xE9)) + struct.pack("<H", len(embedded)) + embedded
    body += b"\0" if len(embedded) % 2 else b""
    body += bytes((len(route) // 2, 0)) + route
    return request(0x52, path(0x06, 1), body)


TRIAD = (0x0014, 0x004D, 0x32952BF3)


def forward_open(t_o_id: int, connection_path: bytes, *, large: bool = False) -> bytes:
    serial, vendor, originator = TRIAD
    body = bytes((0x07, 0xE9)) + struct.pack("<IIHHI", 0, t_o_id, serial, vendor, originator)
    body += bytes((1, 0, 0, 0))  # timeout multiplier, reserved
    parameters = "<IIII" if large else "<IHIH"
    body += struct.pack(parameters, 8000000, 0x43F4, 8000000, 0x43F4) + bytes((0xA3,))
    body += bytes((len(connection_path) // 2,)) + connection_path
    return request(0x5B if large else 0x54, path(0x06, 1), body)


def forward_open_reply(o_t_id: int, t_o_id: int, status: int = 0) -> bytes:
    serial, vendor, originator = TRIAD
    if status:
        return reply(0x54, status, (0x0100,), struct.pack("<HHIBB", serial, vendor, originator, 0, 0))
    body = struct.pack("<IIHHIIIBB", o_t_id, t_o_id, serial, vendor, originator, 8000000, 8000000, 0, 0)
    return reply(0x54, data=body)


def forward_close(connection_path: bytes) -> bytes:
    serial, vendor, originator = TRIAD
    body = bytes((0x07, 0xE9)) + struct.pack(
        "<HHIBB", serial, vendor, originator, len(connection_path) // 2, 0
    )
    return request(0x4E, path(0x06, 1), body + connection_path)


def io_datagram(connection_id: int, sequence: int, data: bytes = b"\x01\x00\xaa\xbb") -> bytes:
    items = struct.pack("<HHHII", 2, 0x8002, 8, connection_id, sequence)
    return items + struct.pack("<HH", 0x00B1, len(data)) + data


# ----- both paths -----
def both_paths(segments: list[tuple[bytes, bool, int]]) -> EnipColumns:
    """`extract` and `decode_segments` on `segments` (payload, from server, kind: 0 TCP, 1 UDP
    44818 datagram, 2 class 1 I/O); asserts they agree and returns the columns."""
    buffer = np.frombuffer(b"".join(data for data, _, _ in segments) or b"", dtype=np.uint8)
    lengths = np.array([len(data) for data, _, _ in segments], dtype=np.int64)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    server = np.array([sent for _, sent, _ in segments], dtype=np.bool_)
    datagram = np.array([kind == 1 for _, _, kind in segments], dtype=np.bool_)
    io = np.array([kind == 2 for _, _, kind in segments], dtype=np.bool_)
    fast = enip.extract(buffer, starts, lengths, server, datagram, io)
    exact = decode_segments(buffer, starts, lengths, server, datagram, io)
    assert fast.differences(exact) == []
    return fast


def one(pdu: bytes, from_server: bool = False) -> enip.EnipMessage:
    """The single message of a whole PDU, checked on both paths."""
    messages, rest = enip.decode_payload(pdu, from_server)
    assert rest == b"" and len(messages) == 1
    columns = both_paths([(pdu, from_server, 0)])
    assert columns.summary.summaries() == [messages[0].summary()]
    return messages[0]
