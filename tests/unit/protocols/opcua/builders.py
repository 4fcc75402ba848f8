"""OPC UA binary messages built from the specification (OPC 10000-6 Part 6 v1.04), independently
of the decoder: §5.2.2 built-in types, §7.1.2 message header, §7.1.2.3-7.1.2.5 Hello,
Acknowledge, Error, §7.1.2.6 ReverseHello, §6.7.2 security headers and sequence header, and
Part 4 §5.5.2 / §7.28 / §7.29 for the OpenSecureChannel service and the request/response
headers. There is no scapy layer for OPC UA."""

from __future__ import annotations

import struct

NONE_POLICY = "http://opcfoundation.org/UA/SecurityPolicy#None"
BASIC256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"


def uint32(value: int) -> bytes:
    return struct.pack("<I", value)


def string(value: str | None) -> bytes:
    """String / ByteString: Int32 length (-1 for null), then the bytes."""
    if value is None:
        return struct.pack("<i", -1)
    data = value.encode()
    return struct.pack("<i", len(data)) + data


def bytestring(value: bytes | None) -> bytes:
    if value is None:
        return struct.pack("<i", -1)
    return struct.pack("<i", len(value)) + value


def numeric_node(identifier: int, namespace: int = 0) -> bytes:
    """A NodeId in the smallest numeric form (§5.2.2.9: two-byte, four-byte or numeric)."""
    if namespace == 0 and identifier < 256:
        return bytes([0x00, identifier])
    if namespace < 256 and identifier < 65536:
        return bytes([0x01, namespace]) + struct.pack("<H", identifier)
    return bytes([0x02]) + struct.pack("<HI", namespace, identifier)


def message(kind: str, body: bytes, chunk: str = "F") -> bytes:
    """Message header (§7.1.2.2): MessageType, ChunkType, MessageSize (with the header)."""
    return kind.encode() + chunk.encode() + uint32(8 + len(body)) + body


def hello(
    url: str = "opc.tcp://plc:4840", version: int = 0, buffers: tuple[int, ...] = (65536, 65536, 0, 0)
) -> bytes:
    return message("HEL", uint32(version) + b"".join(uint32(b) for b in buffers) + string(url))


def acknowledge(version: int = 0, buffers: tuple[int, ...] = (65536, 65536, 16777216, 5000)) -> bytes:
    return message("ACK", uint32(version) + b"".join(uint32(b) for b in buffers))


def error(code: int, reason: str = "bad") -> bytes:
    return message("ERR", uint32(code) + string(reason))


def reverse_hello(server: str, url: str) -> bytes:
    return message("RHE", string(server) + string(url))


def request_header(handle: int = 1) -> bytes:
    """RequestHeader (Part 4 §7.28): AuthenticationToken, Timestamp, RequestHandle,
    ReturnDiagnostics, AuditEntryId, TimeoutHint, AdditionalHeader (null ExtensionObject)."""
    token = bytes([0x04, 0x01, 0x00]) + bytes(range(16))  # a GUID NodeId in namespace 1
    return (
        token
        + struct.pack("<qII", 132_000_000_000_000_000, handle, 0)
        + string(None)
        + uint32(10000)
        + b"\x00\x00\x00"
    )


def response_header(result: int = 0, handle: int = 1) -> bytes:
    """ResponseHeader (Part 4 §7.29): Timestamp, RequestHandle, ServiceResult, ServiceDiagnostics
    (empty DiagnosticInfo), StringTable (empty array), AdditionalHeader."""
    return (
        struct.pack("<qII", 132_000_000_000_000_000, handle, result)
        + b"\x00"
        + struct.pack("<i", -1)
        + b"\x00\x00\x00"
    )


def open_request(
    channel: int = 0,
    policy: str = NONE_POLICY,
    mode: int = 1,
    request_type: int = 0,
    sequence: int = 51,
    request: int = 1,
    certificate: bytes | None = None,
) -> bytes:
    """OPN (§6.7.2.3 asymmetric security header, §6.7.2.4 sequence header), OpenSecureChannel request."""
    security = string(policy) + bytestring(certificate) + bytestring(None)
    body = numeric_node(446) + request_header() + uint32(0) + uint32(request_type) + uint32(mode)
    body += bytestring(b"") + uint32(600000)
    return message("OPN", uint32(channel) + security + uint32(sequence) + uint32(request) + body)


def open_response(
    channel: int = 7, token: int = 1, result: int = 0, sequence: int = 1, request: int = 1
) -> bytes:
    security = string(NONE_POLICY) + bytestring(None) + bytestring(None)
    body = numeric_node(449) + response_header(result) + uint32(0)
    body += uint32(channel) + uint32(token) + struct.pack("<q", 0) + uint32(600000) + bytestring(b"")
    return message("OPN", uint32(channel) + security + uint32(sequence) + uint32(request) + body)


def encrypted_open(channel: int = 0, policy: str = BASIC256, size: int = 200) -> bytes:
    """OPN with a security policy: everything after the security header is ciphertext."""
    security = string(policy) + bytestring(b"\x30\x82" + bytes(40)) + bytestring(bytes(20))
    return message("OPN", uint32(channel) + security + bytes((i * 37 + 11) % 256 for i in range(size)))


def symmetric(
    kind: str, channel: int, token: int, sequence: int, request: int, body: bytes, chunk: str = "F"
) -> bytes:
    """MSG or CLO (§6.7.2.3 symmetric security header, §6.7.2.4 sequence header) and its body."""
    return message(kind, uint32(channel) + uint32(token) + uint32(sequence) + uint32(request) + body, chunk)


def service_request(
    service: int, channel: int = 7, token: int = 1, sequence: int = 2, request: int = 2
) -> bytes:
    return symmetric(
        "MSG", channel, token, sequence, request, numeric_node(service) + request_header() + b"\x00" * 8
    )


def service_response(
    service: int, result: int = 0, channel: int = 7, token: int = 1, sequence: int = 2, request: int = 2
) -> bytes:
    return symmetric(
        "MSG", channel, token, sequence, request, numeric_node(service) + response_header(result) + uint32(0)
    )
