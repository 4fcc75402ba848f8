"""MQTT packets from an independent encoder: scapy's contrib layer (MQTT 3.1 and 3.1.1), and,
for MQTT 5 (whose properties scapy 2.8 does not encode), builders written from the OASIS MQTT
5.0 standard (§1.5.5 variable byte integer, §2.1 fixed header, §2.2.2 properties, §3)."""

from __future__ import annotations

import struct

from scapy.compat import raw
from scapy.contrib import mqtt


def connect(
    client: bytes = b"plc-7",
    level: int = 4,
    username: bytes | None = None,
    password: bytes | None = None,
    will: tuple[bytes, bytes] | None = None,
    keep_alive: int = 60,
) -> bytes:
    name = b"MQIsdp" if level == 3 else b"MQTT"
    layer = mqtt.MQTTConnect(
        protoname=name,
        protolevel=level,
        cleansess=1,
        klive=keep_alive,
        clientId=client,
        usernameflag=int(username is not None),
        username=username or b"",
        passwordflag=int(password is not None),
        password=password or b"",
        willflag=int(will is not None),
        willtopic=will[0] if will else b"",
        willmsg=will[1] if will else b"",
    )
    return raw(mqtt.MQTT(type=1) / layer)


def connack(code: int = 0, session_present: int = 0) -> bytes:
    return raw(mqtt.MQTT(type=2) / mqtt.MQTTConnack(sessPresentFlag=session_present, retcode=code))


def publish(topic: bytes, value: bytes = b"21.5", qos: int = 0, packet_id: int = 1, retain: int = 0) -> bytes:
    layer = mqtt.MQTTPublish(topic=topic, value=value, msgid=packet_id if qos else None)
    return raw(mqtt.MQTT(type=3, QOS=qos, RETAIN=retain) / layer)


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK (4), PUBREC (5), PUBREL (6, flags 0010) or PUBCOMP (7)."""
    layers = {4: mqtt.MQTTPuback, 5: mqtt.MQTTPubrec, 6: mqtt.MQTTPubrel, 7: mqtt.MQTTPubcomp}
    return raw(mqtt.MQTT(type=kind, QOS=1 if kind == 6 else 0) / layers[kind](msgid=packet_id))


def subscribe(packet_id: int, topics: list[tuple[bytes, int]]) -> bytes:
    filters = [mqtt.MQTTTopicQOS(topic=topic, QOS=qos) for topic, qos in topics]
    return raw(mqtt.MQTT(type=8, QOS=1) / mqtt.MQTTSubscribe(msgid=packet_id, topics=filters))


def suback(packet_id: int, codes: list[int]) -> bytes:
    return raw(mqtt.MQTT(type=9) / mqtt.MQTTSuback(msgid=packet_id, retcodes=codes))


def unsubscribe(packet_id: int, topics: list[bytes]) -> bytes:
    filters = [mqtt.MQTTTopic(topic=topic) for topic in topics]
    return raw(mqtt.MQTT(type=10, QOS=1) / mqtt.MQTTUnsubscribe(msgid=packet_id, topics=filters))


def unsuback(packet_id: int) -> bytes:
    return raw(mqtt.MQTT(type=11) / mqtt.MQTTUnsuback(msgid=packet_id))


def simple(kind: int) -> bytes:
    """PINGREQ (12), PINGRESP (13), DISCONNECT (14): a fixed header only."""
    return raw(mqtt.MQTT(type=kind))


# MQTT 5, from the standard.


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def utf8(text: bytes) -> bytes:
    return struct.pack(">H", len(text)) + text


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def properties(*items: bytes) -> bytes:
    data = b"".join(items)
    return varint(len(data)) + data


SESSION_EXPIRY = b"\x11" + struct.pack(">I", 3600)
USER_PROPERTY = b"\x26" + utf8(b"site") + utf8(b"north")
CONTENT_TYPE = b"\x03" + utf8(b"text/plain")


def connect5(client: bytes, username: bytes | None = None, password: bytes | None = None) -> bytes:
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = utf8(b"MQTT") + bytes([5, flags]) + struct.pack(">H", 30) + properties(SESSION_EXPIRY)
    body += utf8(client)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += utf8(password)
    return packet(1, 0, body)


def connack5(code: int = 0) -> bytes:
    return packet(2, 0, bytes([0, code]) + properties(b"\x24\x01", b"\x25\x01"))


def publish5(topic: bytes, qos: int, packet_id: int, value: bytes = b"on") -> bytes:
    body = utf8(topic) + (struct.pack(">H", packet_id) if qos else b"") + properties(CONTENT_TYPE) + value
    return packet(3, qos << 1, body)


def puback5(packet_id: int, code: int) -> bytes:
    return packet(4, 0, struct.pack(">H", packet_id) + bytes([code]) + properties())


def subscribe5(packet_id: int, topics: list[tuple[bytes, int]], *props: bytes) -> bytes:
    body = struct.pack(">H", packet_id) + properties(*props)
    body += b"".join(utf8(topic) + bytes([options]) for topic, options in topics)
    return packet(8, 2, body)


def suback5(packet_id: int, codes: list[int]) -> bytes:
    return packet(9, 0, struct.pack(">H", packet_id) + properties() + bytes(codes))


def unsubscribe5(packet_id: int, topics: list[bytes]) -> bytes:
    return packet(10, 2, struct.pack(">H", packet_id) + properties() + b"".join(utf8(t) for t in topics))


def unsuback5(packet_id: int, codes: list[int]) -> bytes:
    return packet(11, 0, struct.pack(">H", packet_id) + properties() + bytes(codes))


def disconnect5(code: int) -> bytes:
    return packet(14, 0, bytes([code]) + properties())
