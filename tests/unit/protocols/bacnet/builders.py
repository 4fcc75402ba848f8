"""An independent BACnet/IP encoder for the tests, written from ANSI/ASHRAE 135 (Annex J.2 BVLL,
clause 6.2 NPDU, clause 20.1 APDU headers, clause 20.2 tagged encoding), not from the decoder.

scapy 2.8 has no BACnet layer (`scapy.contrib` holds no `bacnet` module), hence these builders.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# clause 20.2.1: tags


def tag(number: int, content: bytes, *, context: bool, lvt: int | None = None) -> bytes:
    """A primitive tag with `content`: extended tag number from 15 on, extended length from 5 on
    (one octet up to 253, then 254 + 2 octets, 255 + 4 octets). `lvt` forces the 3 low bits
    (the application boolean's value)."""
    head = bytearray()
    size = len(content)
    low = lvt if lvt is not None else (size if size <= 4 else 5)
    first = (min(number, 15) << 4) | (0x08 if context else 0) | low
    head.append(first)
    if number >= 15:
        head.append(number)
    if lvt is None and size > 4:
        if size <= 253:
            head.append(size)
        elif size <= 0xFFFF:
            head += bytes([254]) + struct.pack(">H", size)
        else:
            head += bytes([255]) + struct.pack(">I", size)
    return bytes(head) + content


def opening(number: int) -> bytes:
    return bytes([(min(number, 15) << 4) | 0x0E]) + (bytes([number]) if number >= 15 else b"")


def closing(number: int) -> bytes:
    return bytes([(min(number, 15) << 4) | 0x0F]) + (bytes([number]) if number >= 15 else b"")


def unsigned_octets(value: int) -> bytes:
    """The fewest octets holding `value` (clause 20.2.4)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def object_identifier(object_type: int, instance: int) -> bytes:
    return struct.pack(">I", (object_type << 22) | instance)


def app_null() -> bytes:
    return tag(0, b"", context=False)


def app_boolean(value: bool) -> bytes:
    return tag(1, b"", context=False, lvt=int(value))


def app_unsigned(value: int) -> bytes:
    return tag(2, unsigned_octets(value), context=False)


def app_signed(value: int) -> bytes:
    size = 1
    while not -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
        size += 1
    return tag(3, value.to_bytes(size, "big", signed=True), context=False)


def app_real(value: float) -> bytes:
    return tag(4, struct.pack(">f", value), context=False)


def app_double(value: float) -> bytes:
    return tag(5, struct.pack(">d", value), context=False)


def app_characters(text: str) -> bytes:
    return tag(7, b"\x00" + text.encode("utf-8"), context=False)


def app_enumerated(value: int) -> bytes:
    return tag(9, unsigned_octets(value), context=False)


def app_date(year: int, month: int, day: int, weekday: int) -> bytes:
    return tag(10, bytes([year - 1900, month, day, weekday]), context=False)


def app_time(hour: int, minute: int, second: int, hundredths: int) -> bytes:
    return tag(11, bytes([hour, minute, second, hundredths]), context=False)


def app_object(object_type: int, instance: int) -> bytes:
    return tag(12, object_identifier(object_type, instance), context=False)


def ctx_unsigned(number: int, value: int) -> bytes:
    return tag(number, unsigned_octets(value), context=True)


def ctx_object(number: int, object_type: int, instance: int) -> bytes:
    return tag(number, object_identifier(object_type, instance), context=True)


def ctx_characters(number: int, text: str) -> bytes:
    return tag(number, b"\x00" + text.encode("utf-8"), context=True)


# clause 20.1: APDU headers

MAX_APDU_1476 = 5


def confirmed(
    invoke_id: int,
    service: int,
    parameters: bytes = b"",
    *,
    segmented: bool = False,
    more: bool = False,
    accepts_segments: bool = True,
    sequence: int = 0,
    window: int = 1,
) -> bytes:
    flags = (0x08 if segmented else 0) | (0x04 if more else 0) | (0x02 if accepts_segments else 0)
    head = bytes([0x00 | flags, (4 << 4) | MAX_APDU_1476, invoke_id])
    if segmented:
        head += bytes([sequence, window])
    return head + bytes([service]) + parameters


def unconfirmed(service: int, parameters: bytes = b"") -> bytes:
    return bytes([0x10, service]) + parameters


def simple_ack(invoke_id: int, service: int) -> bytes:
    return bytes([0x20, invoke_id, service])


def complex_ack(
    invoke_id: int,
    service: int,
    parameters: bytes = b"",
    *,
    segmented: bool = False,
    more: bool = False,
    sequence: int = 0,
    window: int = 1,
) -> bytes:
    head = bytes([0x30 | (0x08 if segmented else 0) | (0x04 if more else 0), invoke_id])
    if segmented:
        head += bytes([sequence, window])
    return head + bytes([service]) + parameters


def segment_ack(invoke_id: int, sequence: int, window: int, *, server: bool, nak: bool = False) -> bytes:
    return bytes([0x40 | (0x02 if nak else 0) | (0x01 if server else 0), invoke_id, sequence, window])


def error(invoke_id: int, service: int, error_class: int, error_code: int) -> bytes:
    return bytes([0x50, invoke_id, service]) + app_enumerated(error_class) + app_enumerated(error_code)


def reject(invoke_id: int, reason: int) -> bytes:
    return bytes([0x60, invoke_id, reason])


def abort(invoke_id: int, reason: int, *, server: bool) -> bytes:
    return bytes([0x70 | (0x01 if server else 0), invoke_id, reason])


# clause 6.2: NPDU


def npdu(
    payload: bytes,
    *,
    network_message: int | None = None,
    vendor: int | None = None,
    dnet: int | None = None,
    dadr: bytes = b"",
    snet: int | None = None,
    sadr: bytes = b"",
    hop_count: int = 255,
    expecting_reply: bool = False,
    priority: int = 0,
) -> bytes:
    control = (0x80 if network_message is not None else 0) | (0x04 if expecting_reply else 0) | priority
    control |= (0x20 if dnet is not None else 0) | (0x08 if snet is not None else 0)
    out = bytearray([0x01, control])
    if dnet is not None:
        out += struct.pack(">HB", dnet, len(dadr)) + dadr
    if snet is not None:
        out += struct.pack(">HB", snet, len(sadr)) + sadr
    if dnet is not None:
        out.append(hop_count)
    if network_message is not None:
        out.append(network_message)
        if network_message >= 0x80:
            out += struct.pack(">H", vendor or 0)
    return bytes(out) + payload


# Annex J.2: BVLL

ORIGINAL_UNICAST, ORIGINAL_BROADCAST, FORWARDED, DISTRIBUTE = 0x0A, 0x0B, 0x04, 0x09


def bvll(function: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0x81, function, 4 + len(body)) + body


def unicast(apdu: bytes, **npdu_options: Any) -> bytes:
    return bvll(ORIGINAL_UNICAST, npdu(apdu, **npdu_options))


def broadcast(apdu: bytes) -> bytes:
    return bvll(ORIGINAL_BROADCAST, npdu(apdu))


def forwarded(origin: tuple[str, int], apdu: bytes) -> bytes:
    address = bytes(int(part) for part in origin[0].split(".")) + struct.pack(">H", origin[1])
    return bvll(FORWARDED, address + npdu(apdu))


def bip_address(ip: str, port: int) -> bytes:
    return bytes(int(part) for part in ip.split(".")) + struct.pack(">H", port)


@dataclass(frozen=True)
class Batch:
    """Datagrams laid end to end, as the sensor hands them to `extract`."""

    buffer: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    from_server: npt.NDArray[np.bool_]


def batch(datagrams: list[bytes]) -> Batch:
    lengths = np.array([len(datagram) for datagram in datagrams], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if datagrams else lengths.copy()
    buffer = np.frombuffer(b"".join(datagrams), dtype=np.uint8).copy()
    return Batch(buffer, starts, lengths, np.zeros(len(datagrams), dtype=np.bool_))
