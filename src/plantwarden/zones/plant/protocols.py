"""The services a channel can name: transport, default ports, whether they are encrypted, and the
records plane's protocol code of the industrial ones (so the sensor's records can be matched)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from plantwarden.core.records.schema import Protocol


@dataclass(frozen=True, slots=True)
class Service:
    """A protocol a channel may name. `record_protocol` is the `Protocol` code the sensor gives its
    records (None: the sensor does not decode it, only flows show it); `encrypted`: the protocol
    itself encrypts (a channel that requires encryption may use it)."""

    name: str
    transport: str
    ports: tuple[int, ...]
    encrypted: bool
    record_protocol: int | None
    description: str


SERVICES: Mapping[str, Service] = MappingProxyType(
    {
        service.name: service
        for service in (
            Service("modbus", "tcp", (502,), False, Protocol.MODBUS, "Modbus/TCP"),
            Service("mbaps", "tcp", (802,), True, None, "Modbus/TCP Security (Modbus over TLS)"),
            Service("s7comm", "tcp", (102,), False, Protocol.S7COMM, "Siemens S7 (ISO-on-TCP)"),
            Service("dnp3", "tcp", (20000,), False, Protocol.DNP3, "DNP3 over TCP"),
            Service("enip", "tcp", (44818,), False, Protocol.ENIP, "EtherNet/IP explicit messaging"),
            Service("enip-io", "udp", (2222,), False, None, "EtherNet/IP implicit I/O"),
            Service("iec104", "tcp", (2404,), False, Protocol.IEC104, "IEC 60870-5-104"),
            Service("opcua", "tcp", (4840,), False, Protocol.OPCUA, "OPC UA binary"),
            Service("mqtt", "tcp", (1883,), False, Protocol.MQTT, "MQTT"),
            Service("mqtt-tls", "tcp", (8883,), True, None, "MQTT over TLS"),
            Service("bacnet", "udp", (47808,), False, Protocol.BACNET, "BACnet/IP"),
            Service("https", "tcp", (443,), True, None, "HTTPS"),
            Service("http", "tcp", (80,), False, None, "HTTP"),
            Service("ssh", "tcp", (22,), True, None, "SSH"),
            Service("rdp", "tcp", (3389,), True, None, "Remote Desktop"),
            Service("smb", "tcp", (445,), False, None, "SMB file sharing"),
            Service("dns", "udp", (53,), False, None, "DNS"),
            Service("ntp", "udp", (123,), False, None, "NTP"),
            Service("syslog", "udp", (514,), False, None, "syslog"),
            Service("syslog-tls", "tcp", (6514,), True, None, "syslog over TLS"),
            Service("nats", "tcp", (4222,), False, None, "NATS"),
            Service("tcp", "tcp", (), False, None, "any TCP service (ports required)"),
            Service("udp", "udp", (), False, None, "any UDP service (ports required)"),
        )
    }
)
"""Every service a channel may name, by name."""

CLEARTEXT_RECORD_PROTOCOLS: frozenset[int] = frozenset(
    int(service.record_protocol)
    for service in SERVICES.values()
    if service.record_protocol is not None and not service.encrypted
)
"""Record protocol codes whose records prove cleartext: if the sensor decoded it, it was not encrypted."""

BY_RECORD_PROTOCOL: Mapping[int, str] = MappingProxyType(
    {int(s.record_protocol): s.name for s in SERVICES.values() if s.record_protocol is not None}
)
"""The service name of each record protocol code."""
