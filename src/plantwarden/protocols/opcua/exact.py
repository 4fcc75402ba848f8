"""The exact path: one payload at a time, message by message, into `OpcuaMessage`s.

Framing (OPC UA Part 6 §7.1.2): every message starts with an 8-byte header: message type (3
ASCII bytes), chunk type (F, C or A) and message size (UInt32, little-endian, counting the
header). A payload starts at a message boundary and may hold several messages; an incomplete
last message (fewer than 8 bytes, or fewer than the size says) is left over for the next
segment. A header whose type is unknown or whose size is below 8 makes the rest of the payload
one `MALFORMED` message: nothing after it can be framed.

The decoder is stateless: it reads a body when it can be read in the message itself, i.e.

- OPN: when the asymmetric security header names the None policy (otherwise the sequence
  header and body are encrypted);
- MSG and CLO: when the body starts with the type node id (numeric, namespace 0) of a known
  service, which is the case for a channel whose security mode is None or Sign, on the first
  (or only) chunk of a message; the other chunks (continuations, encrypted bodies) are
  `PARTIAL`, with the secure channel and token ids only. Encrypted bytes pass that test with a
  probability below 1e-7 per chunk;
- an abort chunk (A): when its error code and reason fill it exactly.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from plantwarden.protocols import common
from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.opcua.columns import SCHEMA, OpcuaColumns
from plantwarden.protocols.opcua.findings import OpcuaFinding
from plantwarden.protocols.opcua.messages import (
    ACK,
    CLO,
    ERR,
    HEL,
    MSG,
    OPN,
    RHE,
    TYPE_CODES,
    OpcuaMessage,
)
from plantwarden.protocols.opcua.services import (
    CHANNEL_SERVICES,
    CLOSE_SECURE_CHANNEL,
    NAMES,
    OPEN_SECURE_CHANNEL,
    POLICY_NONE,
    RESPONSES,
)

HEADER_SIZE = 8
SYMMETRIC_SIZE = 24
"""MSG and CLO: header, secure channel id, token id, sequence number, request id."""
CHUNKS = frozenset(b"FCA")
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")


class _Stop(Exception):
    """A field could not be read: its finding."""

    def __init__(self, finding: OpcuaFinding) -> None:
        super().__init__(finding.name)
        self.finding = finding


class _Reader:
    """A cursor over one message's bytes; running out is `TRUNCATED`."""

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise _Stop(OpcuaFinding.TRUNCATED)
        part = self.data[self.at : self.at + size]
        self.at += size
        return part

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int(U32.unpack(self.take(4))[0])

    def bytestring(self) -> bytes:
        length = int(I32.unpack(self.take(4))[0])
        if length < -1:
            raise _Stop(OpcuaFinding.BAD_STRING)
        return self.take(length) if length > 0 else b""

    def string(self) -> str:
        return self.bytestring().decode("utf-8", "replace")

    def node_id(self) -> tuple[int, int] | None:
        """A NodeId (Part 6 §5.2.2.9): (namespace, numeric id), or None for other id kinds."""
        encoding = self.u8()
        kind = encoding & 0x3F
        if kind == 0:
            found: tuple[int, int] | None = (0, self.u8())
        elif kind == 1:
            found = (self.u8(), self.u16())
        elif kind == 2:
            found = (self.u16(), self.u32())
        elif kind in (3, 5):
            self.u16()
            self.bytestring()
            found = None
        elif kind == 4:
            self.take(18)
            found = None
        else:
            raise _Stop(OpcuaFinding.TRUNCATED)
        if encoding & 0x80:  # ExpandedNodeId: namespace URI
            self.bytestring()
        if encoding & 0x40:  # ExpandedNodeId: server index
            self.u32()
        return found

    def extension_object(self) -> None:
        self.node_id()
        encoding = self.u8()
        if encoding in (1, 2):
            self.bytestring()


def split_messages(payload: bytes) -> tuple[list[tuple[int, int]], int]:
    """(offset, size) of each whole message of `payload`, and the bytes of a partial last one.

    A header that cannot be framed (unknown type, size below 8) ends the walk with the rest of
    the payload as the last "message"."""
    found: list[tuple[int, int]] = []
    offset, end = 0, len(payload)
    while offset < end:
        remaining = end - offset
        if remaining < HEADER_SIZE:
            return found, remaining
        size = int(U32.unpack_from(payload, offset + 4)[0])
        if payload[offset : offset + 3] not in TYPE_CODES_BYTES or size < HEADER_SIZE:
            found.append((offset, remaining))
            return found, 0
        if remaining < size:
            return found, remaining
        found.append((offset, size))
        offset += size
    return found, 0


TYPE_CODES_BYTES = {name.encode(): code for name, code in TYPE_CODES.items()}


def decode(message: bytes, from_server: bool, offset: int = 0) -> OpcuaMessage:
    """One message (framed by `split_messages`); never raises: an internal error is `UNEXPECTED`."""
    values: dict[str, object] = {}
    try:
        finding, status = _decode(bytes(message), values)
    except Exception:  # no input may crash the sensor; the tests show it never happens
        values = {}
        finding, status = OpcuaFinding.UNEXPECTED, ParseStatus.MALFORMED
    values.pop("_finding", None)  # a finding found after the fields (returned already)
    return OpcuaMessage(offset, from_server, finding=finding, status=status, **values)  # type: ignore[arg-type]


def _decode(data: bytes, values: dict[str, object]) -> tuple[OpcuaFinding, ParseStatus]:
    kind = TYPE_CODES_BYTES.get(data[:3], 0)
    values["message_type"] = kind
    if kind == 0:
        return OpcuaFinding.UNKNOWN_MESSAGE_TYPE, ParseStatus.MALFORMED
    if len(data) < HEADER_SIZE:
        return OpcuaFinding.TRUNCATED, ParseStatus.MALFORMED
    values["chunk_type"] = data[3]
    size = int(U32.unpack_from(data, 4)[0])
    values["message_size"] = size
    if size < HEADER_SIZE:
        return OpcuaFinding.BAD_MESSAGE_SIZE, ParseStatus.MALFORMED
    if not (data[3] == ord("F") or (data[3] in CHUNKS and kind in (OPN, MSG, CLO))):
        return OpcuaFinding.BAD_CHUNK_TYPE, ParseStatus.MALFORMED
    reader = _Reader(data, HEADER_SIZE)
    try:
        status = _body(kind, reader, values)
    except _Stop as stop:
        return stop.finding, ParseStatus.MALFORMED
    if kind in (HEL, ACK, ERR, RHE) and reader.at != len(data):
        return OpcuaFinding.TRAILING_BYTES, ParseStatus.MALFORMED
    return values.pop("_finding", OpcuaFinding.OK), status  # type: ignore[return-value]


def _body(kind: int, reader: _Reader, values: dict[str, object]) -> ParseStatus:
    if kind in (HEL, ACK):
        names = ["protocol_version", "receive_buffer_size", "send_buffer_size", "max_message_size"]
        for name in [*names, "max_chunk_count"]:
            values[name] = reader.u32()
        if kind == HEL:
            values["endpoint_url"] = reader.string()
        return ParseStatus.OK
    if kind == ERR:
        values["error_code"] = reader.u32()
        values["reason"] = reader.string()
        return ParseStatus.OK
    if kind == RHE:
        values["server_uri"] = reader.string()
        values["endpoint_url"] = reader.string()
        return ParseStatus.OK
    values["secure_channel_id"] = reader.u32()
    if kind == OPN:
        return _open(reader, values)
    values["token_id"] = reader.u32()
    sequence, request = reader.u32(), reader.u32()
    if reader.data[3] == ord("A"):
        return _abort(reader, values, sequence, request)
    body_start = reader.at
    try:
        node = reader.node_id()
    except _Stop:
        node = None
    if node is None or node[0] != 0 or node[1] not in NAMES:
        return ParseStatus.PARTIAL  # encrypted, or a continuation chunk
    reader.at = body_start
    _readable(reader, values, sequence, request)
    service = node[1]
    expected = CLOSE_SECURE_CHANNEL if kind == CLO else None
    if (expected is not None and service not in expected) or (
        expected is None and service in CHANNEL_SERVICES
    ):
        values["_finding"] = OpcuaFinding.WRONG_SERVICE
        return ParseStatus.MALFORMED
    return ParseStatus.OK


def _readable(reader: _Reader, values: dict[str, object], sequence: int, request: int) -> int:
    """Read the body's type id (and a response's service result); return the service id."""
    values["sequence_number"], values["request_id"], values["body_readable"] = sequence, request, True
    node = reader.node_id()
    service = node[1] if node is not None and node[0] == 0 and node[1] in NAMES else -1
    values["service_id"] = service
    if service in RESPONSES:
        reader.take(12)  # Timestamp, RequestHandle
        values["service_result"] = reader.u32()
    return service


def _abort(reader: _Reader, values: dict[str, object], sequence: int, request: int) -> ParseStatus:
    start = reader.at
    try:
        error, reason = reader.u32(), reader.string()
    except _Stop:
        error, reason = -1, ""
    if error < 0 or reader.at != len(reader.data):
        reader.at = start
        return ParseStatus.PARTIAL  # encrypted
    values.update(
        sequence_number=sequence, request_id=request, body_readable=True, error_code=error, reason=reason
    )
    return ParseStatus.OK


def _open(reader: _Reader, values: dict[str, object]) -> ParseStatus:
    policy = reader.string()
    values["security_policy"] = policy
    reader.bytestring()  # SenderCertificate
    reader.bytestring()  # ReceiverCertificateThumbprint
    if policy != POLICY_NONE:
        return ParseStatus.PARTIAL  # the sequence header and body are encrypted
    if reader.data[3] != ord("F"):
        return ParseStatus.PARTIAL  # a chunked OpenSecureChannel (not met in practice)
    sequence, request = reader.u32(), reader.u32()
    service = _readable(reader, values, sequence, request)
    if service not in OPEN_SECURE_CHANNEL:
        values["_finding"] = OpcuaFinding.WRONG_SERVICE
        return ParseStatus.MALFORMED
    if service in RESPONSES:
        return ParseStatus.OK
    # RequestHeader (Part 4 §7.28), then the OpenSecureChannel request's parameters.
    reader.node_id()  # AuthenticationToken
    reader.take(16)  # Timestamp, RequestHandle, ReturnDiagnostics
    reader.bytestring()  # AuditEntryId
    reader.take(4)  # TimeoutHint
    reader.extension_object()  # AdditionalHeader
    reader.take(4)  # ClientProtocolVersion
    values["request_type"] = request_type = reader.u32()
    values["security_mode"] = mode = reader.u32()
    reader.bytestring()  # ClientNonce
    reader.take(4)  # RequestedLifetime
    if not 1 <= mode <= 3:
        values["_finding"] = OpcuaFinding.BAD_SECURITY_MODE
        return ParseStatus.MALFORMED
    if request_type not in (0, 1):
        values["_finding"] = OpcuaFinding.BAD_REQUEST_TYPE
        return ParseStatus.MALFORMED
    return ParseStatus.OK


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[OpcuaMessage], bytes]:
    """Every complete message of `payload` (starting at a message boundary), and the bytes of an
    incomplete last one."""
    frames, leftover = split_messages(payload)
    messages = [decode(payload[at : at + size], from_server, at) for at, size in frames]
    return messages, payload[len(payload) - leftover :] if leftover else b""


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> OpcuaColumns:
    """`extract`'s exact twin: every segment `buffer[start:start + length]` through `decode_payload`."""
    return common.decode_segments(decode_payload, SCHEMA, buffer, starts, lengths, from_server)
