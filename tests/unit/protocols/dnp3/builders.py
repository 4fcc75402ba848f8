"""An independent DNP3 encoder for the tests, written from IEEE 1815-2012 (not from the decoder):
CRC-16/DNP bit by bit (9.2.2), link frames with a CRC after the header and after every 16-byte
data block (9.2.4), transport segments (8.2), application requests and responses (4.2.2) and
object headers (4.2.2.7)."""

from __future__ import annotations

import struct


def crc_dnp(data: bytes) -> int:
    """CRC-16/DNP, bit by bit: polynomial x^16+x^13+x^12+x^11+x^10+x^8+x^6+x^5+x^2+1 (0x3D65)
    processed least significant bit first (0xA6BC reversed), initial 0, result complemented."""
    crc = 0
    for byte in data:
        for bit in range(8):
            feedback = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if feedback:
                crc ^= 0xA6BC
    return ~crc & 0xFFFF


def link_frame(
    control: int, destination: int, source: int, user_data: bytes = b"", *, corrupt_block: int = -1
) -> bytes:
    """A data link frame; `corrupt_block` >= 0 spoils that data block's CRC (-2: the header's)."""
    header = b"\x05\x64" + bytes([5 + len(user_data), control]) + struct.pack("<HH", destination, source)
    header_crc = crc_dnp(header) ^ (1 if corrupt_block == -2 else 0)
    frame = header + struct.pack("<H", header_crc)
    for number, start in enumerate(range(0, len(user_data), 16)):
        block = user_data[start : start + 16]
        crc = crc_dnp(block) ^ (0x8000 if number == corrupt_block else 0)
        frame += block + struct.pack("<H", crc)
    return frame


MASTER_TO_OUTSTATION = 0xC4
"""DIR, PRM, unconfirmed user data (function 4)."""
OUTSTATION_TO_MASTER = 0x44
"""PRM, unconfirmed user data; DIR clear: from the outstation."""


def transport(fragment: bytes, *, fir: bool = True, fin: bool = True, sequence: int = 0) -> bytes:
    return bytes([(0x80 if fin else 0) | (0x40 if fir else 0) | (sequence & 0x3F)]) + fragment


def request(function: int, objects: bytes = b"", *, sequence: int = 0) -> bytes:
    """An application request fragment: control (FIR, FIN, sequence), function, objects."""
    return bytes([0xC0 | (sequence & 0x0F), function]) + objects


def response(function: int, iin1: int, iin2: int, objects: bytes = b"", *, sequence: int = 0) -> bytes:
    """An application response fragment: control, function, IIN1, IIN2, objects."""
    return bytes([0xC0 | (sequence & 0x0F), function, iin1, iin2]) + objects


def start_stop(group: int, variation: int, start: int, stop: int, width: int = 1) -> bytes:
    """An object header with start and stop indexes of `width` bytes (qualifier 0x00, 0x01, 0x02)."""
    code = {1: 0x00, 2: 0x01, 4: 0x02}[width]
    return bytes([group, variation, code]) + start.to_bytes(width, "little") + stop.to_bytes(width, "little")


def all_objects(group: int, variation: int) -> bytes:
    return bytes([group, variation, 0x06])


def counted(group: int, variation: int, count: int, prefix: int = 0, width: int = 1) -> bytes:
    """An object header with a count of `width` bytes and prefix code `prefix` (0x07, 0x17, 0x28...)."""
    code = {1: 0x07, 2: 0x08, 4: 0x09}[width]
    return bytes([group, variation, (prefix << 4) | code]) + count.to_bytes(width, "little")


def free_format(group: int, variation: int, objects: list[bytes]) -> bytes:
    """Qualifier 0x5B: a 1-byte count, each object after its 2-byte size."""
    body = bytes([group, variation, 0x5B, len(objects)])
    for data in objects:
        body += struct.pack("<H", len(data)) + data
    return body


def frames_for(
    fragment: bytes, control: int, destination: int, source: int, *, first_sequence: int = 0
) -> list[bytes]:
    """An application fragment cut into transport segments of at most 249 bytes, one frame each."""
    chunks = [fragment[at : at + 249] for at in range(0, len(fragment), 249)] or [b""]
    return [
        link_frame(
            control,
            destination,
            source,
            transport(chunk, fir=index == 0, fin=index == len(chunks) - 1, sequence=first_sequence + index),
        )
        for index, chunk in enumerate(chunks)
    ]
