"""The exact path: one payload at a time, frame by frame, into `Dnp3Message`s.

`decode_payload` decodes each frame on its own: a frame whose transport segment is a whole
application fragment (FIR and FIN) gets its application layer; a segment of a longer fragment
is a `TRANSPORT_SEGMENT` row. `Reassembler` keeps the segments of each direction (link source
and destination) and gives the frame that ends a fragment the application layer of the whole
fragment. No input makes either raise; a bug would show as `UNEXPECTED`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.columns import Dnp3Columns
from plantwarden.protocols.dnp3.crc import crc16
from plantwarden.protocols.dnp3.findings import Dnp3Finding
from plantwarden.protocols.dnp3.messages import PRM, TRANSPORT_FIN, TRANSPORT_FIR, Dnp3Message
from plantwarden.protocols.dnp3.objects import walk

START = b"\x05\x64"
HEADER_SIZE = 10
"""Start (2), length, control, destination (2), source (2) and the header block's CRC (2)."""
MIN_LENGTH = 5
"""Control and the two addresses: a link length below it is no frame."""
BLOCK = 16
"""User data bytes per data block, each followed by its CRC."""
MAX_FRAGMENT = 65536
"""A `Reassembler` drops a fragment that grows past this many bytes."""


def frame_size(length: int) -> int:
    """Bytes of a frame whose link length is `length` (at least 5)."""
    data = length - MIN_LENGTH
    return HEADER_SIZE + data + 2 * (-(-data // BLOCK))


def split_frames(payload: bytes) -> tuple[list[tuple[int, int, Dnp3Finding]], int]:
    """The frames of `payload` as (offset, size, framing finding), and the bytes of a partial
    last frame. A frame that does not start with 0x05 0x64 or has a link length below 5 takes
    the rest of the payload (its finding says why)."""
    frames: list[tuple[int, int, Dnp3Finding]] = []
    at, end = 0, len(payload)
    while at < end:
        left = end - at
        if payload[at] != START[0] or (left >= 2 and payload[at + 1] != START[1]):
            frames.append((at, left, Dnp3Finding.BAD_START))
            return frames, 0
        if left < HEADER_SIZE:
            return frames, left
        if payload[at + 2] < MIN_LENGTH:
            frames.append((at, left, Dnp3Finding.BAD_LENGTH))
            return frames, 0
        size = frame_size(payload[at + 2])
        if left < size:
            return frames, left
        frames.append((at, size, Dnp3Finding.OK))
        at += size
    return frames, 0


def decode_frame(frame: bytes, from_server: bool, offset: int = 0) -> Dnp3Message:
    """The one row of `frame`, a whole link frame (the rest of a payload for a bad start or
    length). A frame shorter than its length says is `TRUNCATED_FRAME`."""
    frame = bytes(frame)
    try:
        return _decode_frame(frame, from_server, offset)
    except Exception:  # no input may crash the sensor; the tests show it never happens
        return Dnp3Message(
            offset, len(frame), from_server, status=ParseStatus.MALFORMED, finding=Dnp3Finding.UNEXPECTED
        )


def _malformed(message: Dnp3Message, finding: Dnp3Finding) -> Dnp3Message:
    return replace(message, status=ParseStatus.MALFORMED, finding=finding)


def _decode_frame(frame: bytes, from_server: bool, offset: int) -> Dnp3Message:
    message = Dnp3Message(offset, len(frame), from_server)
    if frame[:1] != START[:1] or frame[1:2] not in (b"", START[1:]):
        return _malformed(message, Dnp3Finding.BAD_START)
    if len(frame) < HEADER_SIZE:
        return _malformed(message, Dnp3Finding.TRUNCATED_FRAME)
    length = frame[2]
    if length < MIN_LENGTH:
        return _malformed(replace(message, length=length), Dnp3Finding.BAD_LENGTH)
    message = replace(
        message,
        length=length,
        control=frame[3],
        destination=int.from_bytes(frame[4:6], "little"),
        source=int.from_bytes(frame[6:8], "little"),
    )
    size = frame_size(length)
    if len(frame) < size:
        return _malformed(message, Dnp3Finding.TRUNCATED_FRAME)
    if crc16(frame[:8]) != int.from_bytes(frame[8:10], "little"):
        return _malformed(message, Dnp3Finding.BAD_HEADER_CRC)
    name = fc.link_name(message.control)
    if name is None:
        return _malformed(message, Dnp3Finding.UNKNOWN_LINK_FUNCTION)
    user_data = message.control & PRM and message.link_function in fc.USER_DATA
    if length == MIN_LENGTH:
        return _malformed(message, Dnp3Finding.NO_USER_DATA) if user_data else message
    data = bytearray()
    for at in range(HEADER_SIZE, size, BLOCK + 2):
        block = frame[at : min(at + BLOCK, size - 2)]
        if crc16(block) != int.from_bytes(frame[at + len(block) : at + len(block) + 2], "little"):
            return _malformed(message, Dnp3Finding.BAD_DATA_CRC)
        data += block
    if not user_data:
        return _malformed(message, Dnp3Finding.UNEXPECTED_USER_DATA)
    message = replace(message, transport=data[0], data=bytes(data))
    if data[0] & TRANSPORT_FIR and data[0] & TRANSPORT_FIN:
        return decode_application(message, bytes(data[1:]), 1)
    return replace(message, status=ParseStatus.PARTIAL)


def decode_application(message: Dnp3Message, fragment: bytes, fragments: int) -> Dnp3Message:
    """`message` with the application layer of `fragment` (the transport segments' data without
    their headers) put together from `fragments` segments."""
    message = replace(message, fragments=fragments)
    if len(fragment) < 2:
        return _malformed(message, Dnp3Finding.APPLICATION_TOO_SHORT)
    control, function = fragment[0], fragment[1]
    message = replace(message, app_control=control, app_function=function)
    header = 2
    if function in fc.RESPONSES:
        if len(fragment) < 4:
            return _malformed(message, Dnp3Finding.APPLICATION_TOO_SHORT)
        message = replace(message, iin=int.from_bytes(fragment[2:4], "big"))
        header = 4
    if function not in fc.NAMES:
        return _malformed(message, Dnp3Finding.UNKNOWN_FUNCTION)
    found = walk(function, fragment[header:])
    return replace(
        message, objects=found.headers, file_mode=found.file_mode, status=found.status, finding=found.finding
    )


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[Dnp3Message], bytes]:
    """The frames of one direction's `payload` (starting at a frame boundary), each decoded on
    its own, and the bytes of a partial last frame (to put before the next segment)."""
    frames, leftover = split_frames(payload)
    messages = [decode_frame(payload[at : at + size], from_server, at) for at, size, _ in frames]
    return messages, payload[len(payload) - leftover :] if leftover else b""


def decode_datagram(payload: bytes, from_server: bool) -> tuple[list[Dnp3Message], bytes]:
    """`decode_payload` for a UDP datagram, which no more bytes will follow: a partial last frame
    is a `TRUNCATED_FRAME` row, and nothing is left over."""
    messages, leftover = decode_payload(payload, from_server)
    if leftover:
        messages.append(decode_frame(leftover, from_server, len(payload) - len(leftover)))
    return messages, b""


class Reassembler:
    """The exact path with transport reassembly: feed it every payload of a capture or stream
    in order; the frame that ends an application fragment gets the whole fragment's
    application layer (`fragments` > 1).

    Segments are kept per (link source, link destination): a FIR segment starts a fragment, a
    segment with the next sequence number (mod 64) adds to it, and FIN ends it. A segment that
    follows nothing or skips a number is dropped with `TRANSPORT_SEQUENCE` (its row stays a
    transport segment).
    """

    def __init__(self) -> None:
        self._open: dict[tuple[int, int], tuple[int, list[bytes]]] = {}

    @property
    def idle(self) -> bool:
        """Whether no fragment is being put together (the next frame needs nothing before it)."""
        return not self._open

    def decode_payload(self, payload: bytes, from_server: bool) -> tuple[list[Dnp3Message], bytes]:
        """`decode_payload`, with the segments of longer fragments put together."""
        messages, leftover = decode_payload(payload, from_server)
        return [self.feed(message) for message in messages], leftover

    def decode_datagram(self, payload: bytes, from_server: bool) -> tuple[list[Dnp3Message], bytes]:
        """`decode_datagram`, with the segments of longer fragments put together."""
        messages, _ = decode_datagram(payload, from_server)
        return [self.feed(message) for message in messages], b""

    def feed(self, message: Dnp3Message) -> Dnp3Message:
        """`message` (a frame decoded on its own), with the reassembled fragment it ends."""
        if message.transport < 0 or (message.transport & TRANSPORT_FIR and message.transport & TRANSPORT_FIN):
            return message
        key = (message.source, message.destination)
        sequence, payload = message.transport & 0x3F, message.data[1:]
        if message.transport & TRANSPORT_FIR:
            self._open[key] = (sequence, [payload])
            return message
        last = self._open.pop(key, None)
        if last is None or sequence != (last[0] + 1) % 64:
            return replace(message, finding=Dnp3Finding.TRANSPORT_SEQUENCE)
        parts = [*last[1], payload]
        if not message.transport & TRANSPORT_FIN:
            if sum(map(len, parts)) <= MAX_FRAGMENT:
                self._open[key] = (sequence, parts)
            return message
        try:
            return decode_application(message, b"".join(parts), len(parts))
        except Exception:  # as in decode_frame
            return _malformed(message, Dnp3Finding.UNEXPECTED)


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Dnp3Columns:
    """`extract`'s exact twin: every segment `buffer[start:start + length]` through
    `decode_payload` (each frame on its own, no reassembly)."""
    data = buffer.tobytes()
    rows: list[tuple[int, int, Dnp3Message]] = []
    leftover = np.zeros(len(starts), dtype=np.int64)
    for segment, (start, length, server) in enumerate(
        zip(starts.tolist(), lengths.tolist(), from_server.tolist(), strict=True)
    ):
        messages, rest = decode_payload(data[start : start + length], bool(server))
        leftover[segment] = len(rest)
        rows.extend((segment, index, message) for index, message in enumerate(messages))
    return Dnp3Columns.from_messages(rows, leftover)
