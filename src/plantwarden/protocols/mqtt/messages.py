"""The exact path's record: one `MqttMessage` per MQTT control packet, and its `Summary`.

Numbers not read are -1; texts not read are empty. The password itself is never kept: only
whether one was sent and its length.
"""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary
from plantwarden.protocols.mqtt.findings import MqttFinding

PACKET_TYPES = (
    "reserved",
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
    "auth",
)
"""Packet type names by type code (MQTT 3.1.1 §2.2.1, MQTT 5.0 §2.1.2: 15 AUTH)."""
(RESERVED, CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP) = range(8)
(SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH) = range(8, 16)
LOST = frozenset({MqttFinding.BAD_REMAINING_LENGTH, MqttFinding.RESERVED_TYPE})
"""Findings after which the packet type is not to be trusted (operation MALFORMED)."""


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One MQTT control packet as the exact decoder reads it."""

    offset: int
    """Byte offset of the packet within its payload."""
    is_response: bool
    """Sent by the server (the broker)."""
    packet_type: int = -1
    flags: int = -1
    """The fixed header's low four bits."""
    remaining_length: int = -1
    qos: int = -1
    """PUBLISH's QoS (0-2; -1 for other packets)."""
    retain: bool = False
    dup: bool = False
    packet_id: int = -1
    topics: tuple[str, ...] = ()
    """PUBLISH's topic name; SUBSCRIBE's and UNSUBSCRIBE's topic filters."""
    requested_qos: tuple[int, ...] = ()
    """SUBSCRIBE: each filter's requested QoS."""
    protocol_name: str = ""
    protocol_level: int = -1
    """CONNECT: 3 (MQTT 3.1), 4 (3.1.1), 5 (5.0)."""
    connect_flags: int = -1
    """CONNECT's connect flags byte (0x80 username, 0x40 password, 0x20 will retain, 0x18 will
    QoS, 0x04 will, 0x02 clean session): the record's `address`."""
    client_id: str = ""
    keep_alive: int = -1
    clean_session: bool = False
    will_flag: bool = False
    will_topic: str = ""
    has_username: bool = False
    username: str = ""
    has_password: bool = False
    password_length: int = -1
    """The password's length in bytes (the password itself is not kept)."""
    credentials_in_clear: bool = False
    """A CONNECT whose username or password is readable in the segment (plain MQTT, not TLS)."""
    session_present: bool = False
    return_code: int = -1
    """CONNACK's return (reason) code; the reason code of PUBACK, PUBREC, PUBREL, PUBCOMP,
    DISCONNECT, AUTH (MQTT 5); SUBACK's and UNSUBACK's first failure code, else 0."""
    status: ParseStatus = ParseStatus.OK
    finding: MqttFinding = MqttFinding.OK

    def summary(self) -> Summary:
        """The packet in common terms (see docs/protocols/mqtt.md)."""
        if self.finding in LOST or self.packet_type < 0:
            operation = Operation.MALFORMED
        elif self.packet_type == PUBLISH and not self.is_response:
            operation = Operation.WRITE
        elif self.packet_type == SUBSCRIBE:
            operation = Operation.READ
        else:
            operation = Operation.OTHER
        return Summary(
            function_code=self.packet_type,
            function=PACKET_TYPES[self.packet_type] if self.packet_type >= 0 else "",
            operation=operation,
            is_response=self.is_response,
            address=self.connect_flags,
            quantity=len(self.topics),
            targets=self.topics[:MAX_TARGETS],
            result=self.return_code,
            status=self.status,
            finding=int(self.finding),
        )
