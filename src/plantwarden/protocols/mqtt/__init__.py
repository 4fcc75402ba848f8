"""MQTT (MQTT 3.1, OASIS MQTT 3.1.1, OASIS MQTT 5.0) over TCP.

Two paths, identical records:

- exact: `decode_payload(payload, from_server)` gives one payload's `MqttMessage`s and the bytes
  of an incomplete last packet;
- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payloads at once
  into `MqttColumns`.

Port 8883 (MQTT over TLS) is not decoded: its packets are encrypted.
"""

from plantwarden.protocols.common import ProtocolModule, Support
from plantwarden.protocols.mqtt.columns import SCHEMA, MqttColumns
from plantwarden.protocols.mqtt.exact import decode, decode_payload, decode_segments, split_packets
from plantwarden.protocols.mqtt.extract import extract
from plantwarden.protocols.mqtt.findings import MqttFinding
from plantwarden.protocols.mqtt.messages import PACKET_TYPES, MqttMessage

MODULE = ProtocolModule(
    name="mqtt",
    support=Support.PARTIAL,
    references=(
        "MQTT V3.1 Protocol Specification (IBM, Eurotech, 2010)",
        "MQTT Version 3.1.1, OASIS Standard, 29 October 2014, §2 (control packet format), §3 (packets)",
        "MQTT Version 5.0, OASIS Standard, 7 March 2019, §2-§3 (properties skipped, not interpreted)",
    ),
    tcp_ports=(1883,),
)

__all__ = [
    "MODULE",
    "PACKET_TYPES",
    "SCHEMA",
    "MqttColumns",
    "MqttFinding",
    "MqttMessage",
    "decode",
    "decode_payload",
    "decode_segments",
    "extract",
    "split_packets",
]
