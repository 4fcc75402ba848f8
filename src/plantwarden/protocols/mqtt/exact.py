"""The exact path: one payload at a time, packet by packet, into `MqttMessage`s.

Framing (MQTT 3.1.1 §2.2, MQTT 5.0 §2.1): a control packet is one byte of packet type and
flags, the remaining length (a variable byte integer of 1-4 bytes, 7 bits each, least
significant first) and that many bytes. A payload starts at a packet boundary and may hold
several packets; an incomplete last packet is left over for the next segment. A remaining
length of more than 4 bytes makes the rest of the payload one `MALFORMED` packet.

The decoder is stateless: it does not know the connection's protocol level. MQTT 5 adds
properties to most packets; where their presence changes the reading it is told by the bytes:

- CONNECT carries its level; CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH have
  properties only after the fields MQTT 3 has, so their length tells;
- SUBSCRIBE and UNSUBSCRIBE are read as MQTT 3 (topic filters straight after the packet id)
  when that reading fills the packet with non-empty filters (and, for SUBSCRIBE, option bytes
  with the 6 reserved bits clear), else as MQTT 5 (a property length first). An MQTT 5 packet
  whose properties are empty starts with a zero byte, i.e. an empty filter in the MQTT 3
  reading, which is not allowed: the two readings do not meet in practice;
- SUBACK and UNSUBACK likewise (MQTT 3 return codes 0, 1, 2, 0x80; UNSUBACK has none in MQTT 3).

Properties, the will payload and PUBLISH's application payload are skipped, not interpreted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.protocols import common
from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.mqtt.columns import SCHEMA, MqttColumns
from plantwarden.protocols.mqtt.findings import MqttFinding
from plantwarden.protocols.mqtt.messages import (
    AUTH,
    CONNACK,
    CONNECT,
    DISCONNECT,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    RESERVED,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    MqttMessage,
)

PROTOCOLS = frozenset({("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)})
"""(protocol name, level) of MQTT 3.1, 3.1.1 and 5.0."""
FLAGS_TWO = frozenset({PUBREL, SUBSCRIBE, UNSUBSCRIBE})
"""Packet types whose fixed-header flags must be 0010 (the others but PUBLISH: 0000)."""
ACKS = frozenset({PUBACK, PUBREC, PUBREL, PUBCOMP})
SUBACK_CODES_3 = frozenset({0, 1, 2, 0x80})
MAX_VARINT = 4


class _Stop(Exception):
    """A field could not be read: its finding."""

    def __init__(self, finding: MqttFinding) -> None:
        super().__init__(finding.name)
        self.finding = finding


class _Reader:
    """A cursor over one packet's body; running out is `TRUNCATED`."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise _Stop(MqttFinding.TRUNCATED)
        part = self.data[self.at : self.at + size]
        self.at += size
        return part

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def string(self) -> bytes:
        """A length-prefixed field (UTF-8 string or binary data): its bytes."""
        return self.take(self.u16())

    def skip_properties(self) -> None:
        """MQTT 5 properties: a variable byte integer length, then that many bytes."""
        value = 0
        for index in range(MAX_VARINT):
            byte = self.u8()
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                self.take(value)
                return
        raise _Stop(MqttFinding.TRUNCATED)


def remaining_length(payload: bytes, at: int) -> tuple[int, int]:
    """The remaining length of the packet at `at`, and the size of its fixed header; (-1, 0) when
    the bytes end first, (-1, -1) when it takes more than 4 bytes."""
    value = 0
    for index in range(MAX_VARINT):
        if at + 1 + index >= len(payload):
            return -1, 0
        byte = payload[at + 1 + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, 2 + index
    return -1, -1


def split_packets(payload: bytes) -> tuple[list[tuple[int, int]], int]:
    """(offset, size) of each whole packet of `payload`, and the bytes of a partial last one."""
    found: list[tuple[int, int]] = []
    offset, end = 0, len(payload)
    while offset < end:
        value, header = remaining_length(payload, offset)
        if header < 0:
            found.append((offset, end - offset))
            return found, 0
        if header == 0 or offset + header + value > end:
            return found, end - offset
        found.append((offset, header + value))
        offset += header + value
    return found, 0


def decode(packet: bytes, from_server: bool, offset: int = 0) -> MqttMessage:
    """One packet (framed by `split_packets`); never raises: an internal error is `UNEXPECTED`."""
    values: dict[str, object] = {}
    try:
        finding = _decode(bytes(packet), values)
    except Exception:  # no input may crash the sensor; the tests show it never happens
        values, finding = {}, MqttFinding.UNEXPECTED
    status = ParseStatus.OK if finding == MqttFinding.OK else ParseStatus.MALFORMED
    return MqttMessage(offset, from_server, status=status, finding=finding, **values)  # type: ignore[arg-type]


def _decode(data: bytes, values: dict[str, object]) -> MqttFinding:
    kind, flags = data[0] >> 4, data[0] & 0x0F
    values.update(packet_type=kind, flags=flags)
    length, header = remaining_length(data, 0)
    if header < 0:
        return MqttFinding.BAD_REMAINING_LENGTH
    if header == 0 or len(data) < header + length:
        return MqttFinding.TRUNCATED
    values["remaining_length"] = length
    if kind == RESERVED:
        return MqttFinding.RESERVED_TYPE
    if kind == PUBLISH:
        values.update(qos=(flags >> 1) & 3, dup=bool(flags & 8), retain=bool(flags & 1))
        if (flags >> 1) & 3 == 3:
            return MqttFinding.BAD_QOS
    elif flags != (2 if kind in FLAGS_TWO else 0):
        return MqttFinding.BAD_FLAGS
    reader = _Reader(data[header : header + length])
    try:
        return _body(kind, flags, reader, values)
    except _Stop as stop:
        return stop.finding


def _end(reader: _Reader) -> MqttFinding:
    return MqttFinding.TRAILING_BYTES if reader.left() else MqttFinding.OK


def _body(kind: int, flags: int, reader: _Reader, values: dict[str, object]) -> MqttFinding:
    if kind == CONNECT:
        return _connect(reader, values)
    if kind == CONNACK:
        acknowledge, code = reader.u8(), reader.u8()
        values.update(session_present=bool(acknowledge & 1), return_code=code)
        if reader.left():
            reader.skip_properties()
        return _end(reader)
    if kind == PUBLISH:
        topic = _topic(reader.string(), publish=True)
        values["topics"] = (topic,) if topic else ()
        if (flags >> 1) & 3:
            values["packet_id"] = reader.u16()
        return MqttFinding.OK
    if kind in (SUBSCRIBE, UNSUBSCRIBE):
        values["packet_id"] = reader.u16()
        return _filters(reader, values, options=kind == SUBSCRIBE)
    if kind in (SUBACK, UNSUBACK):
        values["packet_id"] = reader.u16()
        return _codes(reader, values, suback=kind == SUBACK)
    if kind in ACKS:
        values["packet_id"] = reader.u16()
    if kind in (*ACKS, DISCONNECT, AUTH) and reader.left():
        values["return_code"] = reader.u8()
        if reader.left():
            reader.skip_properties()
    return _end(reader)  # the rest: PINGREQ, PINGRESP


def _connect(reader: _Reader, values: dict[str, object]) -> MqttFinding:
    name = reader.string().decode("utf-8", "replace")
    level, flags, keep_alive = reader.u8(), reader.u8(), reader.u16()
    has_username, has_password, will = bool(flags & 0x80), bool(flags & 0x40), bool(flags & 0x04)
    values.update(
        protocol_name=name,
        protocol_level=level,
        connect_flags=flags,
        keep_alive=keep_alive,
        clean_session=bool(flags & 0x02),
        will_flag=will,
        has_username=has_username,
        has_password=has_password,
        credentials_in_clear=has_username or has_password,
    )
    if (name, level) not in PROTOCOLS:
        return MqttFinding.BAD_PROTOCOL
    will_qos = (flags >> 3) & 3
    if will_qos == 3:
        return MqttFinding.BAD_QOS
    if (
        flags & 0x01
        or (not will and (will_qos or flags & 0x20))
        or (has_password and not has_username and level < 5)
    ):
        return MqttFinding.BAD_CONNECT_FLAGS
    if level == 5:
        reader.skip_properties()
    values["client_id"] = reader.string().decode("utf-8", "replace")
    if will:
        if level == 5:
            reader.skip_properties()
        values["will_topic"] = reader.string().decode("utf-8", "replace")
        reader.string()  # will message
    if has_username:
        values["username"] = reader.string().decode("utf-8", "replace")
    if has_password:
        values["password_length"] = len(reader.string())
    return _end(reader)


def _topic(raw: bytes, publish: bool = False) -> str:
    """A topic name (PUBLISH) or filter, checked (MQTT 3.1.1 §1.5.3, §4.7)."""
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Stop(MqttFinding.BAD_TOPIC) from None
    if "\x00" in topic or (publish and ("+" in topic or "#" in topic)) or (not publish and not topic):
        raise _Stop(MqttFinding.BAD_TOPIC)
    return topic


def _filters(reader: _Reader, values: dict[str, object], options: bool) -> MqttFinding:
    start = reader.at
    first = _read_filters(reader, values, options, version=4)
    if first == MqttFinding.OK:
        return first
    reader.at = start
    try:
        reader.skip_properties()
    except _Stop:
        return first
    return MqttFinding.OK if _read_filters(reader, values, options, version=5) == MqttFinding.OK else first


def _read_filters(reader: _Reader, values: dict[str, object], options: bool, version: int) -> MqttFinding:
    topics: list[str] = []
    qos: list[int] = []
    try:
        while reader.left():
            topics.append(_topic(reader.string()))
            if options:
                option = reader.u8()
                reserved = 0xFC if version < 5 else 0xC0
                if option & 3 == 3 or option & reserved or (option >> 4) & 3 == 3:
                    return MqttFinding.BAD_QOS
                qos.append(option & 3)
    except _Stop as stop:
        return stop.finding
    if not topics:
        return MqttFinding.NO_TOPICS
    values["topics"], values["requested_qos"] = tuple(topics), tuple(qos)
    return MqttFinding.OK


def _codes(reader: _Reader, values: dict[str, object], suback: bool) -> MqttFinding:
    rest = reader.data[reader.at :]
    if not suback and not rest:
        return MqttFinding.OK  # MQTT 3 UNSUBACK: the packet id only
    if not (suback and rest and set(rest) <= SUBACK_CODES_3):
        reader.skip_properties()
        rest = reader.data[reader.at :]
    if not rest:
        return MqttFinding.NO_TOPICS
    values["return_code"] = next((code for code in rest if code >= 0x80), 0)
    return MqttFinding.OK


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[MqttMessage], bytes]:
    """Every complete packet of `payload` (starting at a packet boundary), and the bytes of an
    incomplete last one."""
    frames, leftover = split_packets(payload)
    messages = [decode(payload[at : at + size], from_server, at) for at, size in frames]
    return messages, payload[len(payload) - leftover :] if leftover else b""


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> MqttColumns:
    """`extract`'s exact twin: every segment `buffer[start:start + length]` through `decode_payload`."""
    return common.decode_segments(decode_payload, SCHEMA, buffer, starts, lengths, from_server)
