"""MQTT 3.1.1 control packets as bytes, the few the plant's devices send (OASIS MQTT 3.1.1, sec. 3).

The devices publish telemetry at QoS 0 on a long-lived connection: CONNECT and CONNACK, PUBLISH,
PINGREQ and PINGRESP, DISCONNECT. The traffic generator writes these bytes into captures and the
live plant sends them to a real broker.
"""

from __future__ import annotations

import struct

from plantwarden.core.errors import InvalidInput

CONNECT, CONNACK, PUBLISH, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 12, 13, 14
MAX_REMAINING = 268_435_455


def remaining_length(length: int) -> bytes:
    """The variable-length encoding of a packet's remaining length (seven bits a byte)."""
    if not 0 <= length <= MAX_REMAINING:
        raise InvalidInput(f"an MQTT packet of {length} bytes is too long")
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def _string(text: str) -> bytes:
    data = text.encode()
    if len(data) > 0xFFFF:
        raise InvalidInput("an MQTT string is longer than 65535 bytes")
    return struct.pack(">H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes(((kind << 4) | flags,)) + remaining_length(len(body)) + body


def connect(client_id: str, keep_alive: int = 60) -> bytes:
    """CONNECT with a clean session and no credentials."""
    header = _string("MQTT") + struct.pack(">BBH", 4, 0x02, keep_alive)
    return _packet(CONNECT, 0, header + _string(client_id))


def connack(return_code: int = 0) -> bytes:
    """CONNACK: no session present, `return_code` 0 (accepted) or a refusal."""
    return _packet(CONNACK, 0, bytes((0, return_code)))


def publish(topic: str, payload: bytes) -> bytes:
    """PUBLISH at QoS 0, not retained."""
    if not topic or "+" in topic or "#" in topic:
        raise InvalidInput(f"{topic!r} is not a topic one can publish to")
    return _packet(PUBLISH, 0, _string(topic) + payload)


def pingreq() -> bytes:
    """PINGREQ."""
    return _packet(PINGREQ, 0, b"")


def pingresp() -> bytes:
    """PINGRESP."""
    return _packet(PINGRESP, 0, b"")


def disconnect() -> bytes:
    """DISCONNECT."""
    return _packet(DISCONNECT, 0, b"")


SUBSCRIBE = 8


def subscribe(packet_id: int, topic_filter: str) -> bytes:
    """SUBSCRIBE to one topic filter at QoS 0."""
    return _packet(SUBSCRIBE, 0x02, struct.pack(">H", packet_id) + _string(topic_filter) + b"\x00")


def read_remaining_length(data: bytes, offset: int = 1) -> tuple[int, int]:
    """The remaining length encoded at `offset` and the offset after it; InvalidInput if cut short."""
    length = shift = 0
    for index in range(offset, min(offset + 4, len(data))):
        length |= (data[index] & 0x7F) << shift
        if not data[index] & 0x80:
            return length, index + 1
        shift += 7
    raise InvalidInput("an MQTT remaining length is cut short or longer than four bytes")


def parse_publish(packet: bytes) -> tuple[str, bytes]:
    """The topic and payload of a whole PUBLISH packet at QoS 0; InvalidInput otherwise."""
    if not packet or packet[0] >> 4 != PUBLISH or packet[0] & 0x06:
        raise InvalidInput("not a QoS 0 PUBLISH packet")
    length, start = read_remaining_length(packet)
    if len(packet) != start + length or length < 2:
        raise InvalidInput("a PUBLISH packet of the wrong length")
    topic_length = struct.unpack_from(">H", packet, start)[0]
    topic_end = start + 2 + topic_length
    return packet[start + 2 : topic_end].decode(), packet[topic_end:]
