"""What the MQTT decoders say about a control packet: a closed list (an `IntEnum` stored as `uint8`).

A row carries one finding: the first problem met while decoding it, in the order fixed header,
flags, variable header, payload, trailing bytes.
"""

from __future__ import annotations

from enum import IntEnum


class MqttFinding(IntEnum):
    """Why a row is not a well-formed MQTT control packet (`OK` when it is)."""

    OK = 0
    BAD_REMAINING_LENGTH = 1
    """The remaining length takes more than 4 bytes: the rest of the payload is not framed."""
    RESERVED_TYPE = 2
    """Packet type 0 (reserved, forbidden)."""
    BAD_FLAGS = 3
    """Fixed-header flags other than the packet type requires (0010 for PUBREL, SUBSCRIBE,
    UNSUBSCRIBE; 0000 for the others but PUBLISH)."""
    BAD_QOS = 4
    """QoS 3 (PUBLISH flags, a will QoS, a subscription's requested QoS), or subscription options
    with reserved bits set (MQTT 3: bits 2-7; MQTT 5: bits 6-7) or retain handling 3."""
    TRUNCATED = 5
    """The packet ends inside a field it must carry."""
    BAD_PROTOCOL = 6
    """A CONNECT whose protocol name and level are not MQIsdp 3, MQTT 4 or MQTT 5."""
    BAD_CONNECT_FLAGS = 7
    """A CONNECT with the reserved flag set, or will QoS or will retain without the will flag."""
    BAD_TOPIC = 8
    """A topic that is not UTF-8, holds U+0000, a PUBLISH topic with a wildcard (+ #), or an
    empty topic filter."""
    NO_TOPICS = 9
    """A SUBSCRIBE or UNSUBSCRIBE without any topic filter, or a SUBACK without return codes."""
    TRAILING_BYTES = 10
    """Bytes after the last field of a packet with a fixed body (CONNACK, PUBACK..., PINGREQ,
    PINGRESP, an MQTT 3 DISCONNECT) or after a CONNECT's last field."""
    UNEXPECTED = 11
    """The exact decoder raised: a bug, never expected in practice (the tests look for it)."""
