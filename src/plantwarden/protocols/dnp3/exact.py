"""The exact path: one payload at a time, frame by frame, into `Dnp3Message`s.

`decode_payload` decodes each frame on its own: a frame whose transport segment is a whole
application fragment (FIR and FIN) gets its application layer; a segment of a longer fragment
is a `TRANSPORT_SEGMENT` row. `Reassembler` keeps the segments of each direction (link source
and destination) and gives the frame that ends a fragment the application layer of the whole
fragment. No input makes either raise; a bug would show as `UNEXPECTED`.

Segments of multi-frame fragments reach the sensor's exact path, so it is kept quick too: each
frame's message is built once (no `dataclasses.replace` on the way), the CRCs are checked by the
word table (`crc.header_ok`, `crc.blocks_ok`), and requests are walked once per distinct
request (`objects.walk_fragment`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.columns import Dnp3Columns
from plantwarden.protocols.dnp3.crc import blocks_ok, header_ok
from plantwarden.protocols.dnp3.findings import Dnp3Finding
from plantwarden.protocols.dnp3.messages import PRM, TRANSPORT_FIN, TRANSPORT_FIR, Dnp3Message
from plantwarden.protocols.dnp3.objects import walk_fragment

START = b"\x05\x64"
HEADER_SIZE = 10
"""Start (2), length, control, destination (2), source (2) and the header block's CRC (2)."""
MIN_LENGTH = 5
"""Control and the two addresses: a link length below it is no frame."""
BLOCK = 16
"""User data bytes per data block, each followed by its CRC."""
MAX_FRAGMENT = 65536
"""A `Reassembler` drops a fragment that grows past this many bytes."""
MALFORMED = ParseStatus.MALFORMED
_WHOLE = TRANSPORT_FIR | TRANSPORT_FIN


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


_FRAME_SIZES = [frame_size(length) if length >= MIN_LENGTH else 0 for length in range(256)]
"""`frame_size` by link length."""
_USER_BLOCKS = [
    [
        slice(at, min(at + BLOCK, _FRAME_SIZES[length] - 2))
        for at in range(HEADER_SIZE, _FRAME_SIZES[length], BLOCK + 2)
    ]
    for length in range(256)
]
"""By link length, where each data block's user data bytes are in the frame."""
_KNOWN_LINK = [fc.link_name(control) is not None for control in range(256)]


def _decode_frame(frame: bytes, from_server: bool, offset: int) -> Dnp3Message:
    # Each outcome is one Dnp3Message built once: this runs for every frame of the exact path.
    size = len(frame)
    if frame[:2] != START and frame != START[:1]:
        return Dnp3Message(offset, size, from_server, status=MALFORMED, finding=Dnp3Finding.BAD_START)
    if size < HEADER_SIZE:
        return Dnp3Message(offset, size, from_server, status=MALFORMED, finding=Dnp3Finding.TRUNCATED_FRAME)
    length = frame[2]
    if length < MIN_LENGTH:
        return Dnp3Message(
            offset, size, from_server, length, status=MALFORMED, finding=Dnp3Finding.BAD_LENGTH
        )
    control = frame[3]
    link = (offset, size, from_server, length, control, frame[4] | frame[5] << 8, frame[6] | frame[7] << 8)
    finding = Dnp3Finding.OK
    user_data = control & PRM and control & 0x0F in fc.USER_DATA
    if size < _FRAME_SIZES[length]:
        finding = Dnp3Finding.TRUNCATED_FRAME
    elif not header_ok(frame):
        finding = Dnp3Finding.BAD_HEADER_CRC
    elif not _KNOWN_LINK[control]:
        finding = Dnp3Finding.UNKNOWN_LINK_FUNCTION
    elif length == MIN_LENGTH:
        finding = Dnp3Finding.NO_USER_DATA if user_data else Dnp3Finding.OK
    elif not blocks_ok(frame, HEADER_SIZE, _FRAME_SIZES[length]):
        finding = Dnp3Finding.BAD_DATA_CRC
    elif not user_data:
        finding = Dnp3Finding.UNEXPECTED_USER_DATA
    else:
        data = b"".join(map(frame.__getitem__, _USER_BLOCKS[length]))
        transport = data[0]
        if transport & TRANSPORT_FIR and transport & TRANSPORT_FIN:
            return _application(*link, transport, data, data[1:], 1)
        return Dnp3Message(*link, transport=transport, data=data, status=ParseStatus.PARTIAL)
    status = MALFORMED if finding else ParseStatus.OK
    return Dnp3Message(*link, status=status, finding=finding)


def decode_application(message: Dnp3Message, fragment: bytes, fragments: int) -> Dnp3Message:
    """`message` with the application layer of `fragment` (the transport segments' data without
    their headers) put together from `fragments` segments."""
    return _application(
        message.offset,
        message.size,
        message.from_server,
        message.length,
        message.control,
        message.destination,
        message.source,
        message.transport,
        message.data,
        fragment,
        fragments,
    )


def _application(
    offset: int,
    size: int,
    from_server: bool,
    length: int,
    control: int,
    destination: int,
    source: int,
    transport: int,
    data: bytes,
    fragment: bytes,
    fragments: int,
) -> Dnp3Message:
    """The message of a frame (its link and transport fields) that ends an application
    `fragment` of `fragments` segments."""
    link = (offset, size, from_server, length, control, destination, source, transport)
    if len(fragment) < 2:
        return Dnp3Message(
            *link, data=data, fragments=fragments, status=MALFORMED, finding=Dnp3Finding.APPLICATION_TOO_SHORT
        )
    app_control, function = fragment[0], fragment[1]
    application = (*link, app_control, function)
    header = 2
    iin = -1
    if function in fc.RESPONSES:
        if len(fragment) < 4:
            return Dnp3Message(
                *application,
                data=data,
                fragments=fragments,
                status=MALFORMED,
                finding=Dnp3Finding.APPLICATION_TOO_SHORT,
            )
        iin = fragment[2] << 8 | fragment[3]
        header = 4
    if function not in fc.NAMES:
        return Dnp3Message(
            *application,
            iin,
            data=data,
            fragments=fragments,
            status=MALFORMED,
            finding=Dnp3Finding.UNKNOWN_FUNCTION,
        )
    found = walk_fragment(function, fragment[header:])
    return Dnp3Message(
        *application, iin, found.headers, found.file_mode, fragments, data, found.status, found.finding
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
        self._open: dict[tuple[int, int], tuple[int, list[bytes], int]] = {}
        """Per (source, destination): the last sequence number, the segments' data, its size."""

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
        transport = message.transport
        if transport < 0 or transport & _WHOLE == _WHOLE:
            return message
        key = (message.source, message.destination)
        sequence, payload = transport & 0x3F, message.data[1:]
        if transport & TRANSPORT_FIR:
            self._open[key] = (sequence, [payload], len(payload))
            return message
        last = self._open.pop(key, None)
        if last is None or sequence != (last[0] + 1) % 64:
            return replace(message, finding=Dnp3Finding.TRANSPORT_SEQUENCE)
        _, parts, size = last
        parts.append(payload)  # the list is this fragment's own: no one else holds it
        size += len(payload)
        if not transport & TRANSPORT_FIN:
            if size <= MAX_FRAGMENT:
                self._open[key] = (sequence, parts, size)
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
