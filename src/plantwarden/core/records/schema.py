"""Column schemas of the record kinds, and the codes shared by every protocol.

Columns are numpy dtypes. Addresses are 16-byte IPv6 (IPv4 as `::ffff:a.b.c.d`), so that
IPv4 and IPv6 share one column and one index; the endpoints of a layer-2 protocol (PROFINET DCP)
are their MAC addresses as IPv6 link-local addresses (modified EUI-64, RFC 4291 appendix A).
Text columns (site, segment, device, variable) are numpy object arrays and are
dictionary-encoded when stored.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantwarden.core.errors import InvalidInput

ADDRESS_DTYPE = np.dtype("S16")
TEXT = np.dtype(object)
NO_ANSWER_SEEN = -1
"""A protocol record's `status` when its request expected an answer and none came (within the
timeout, or before the request was replaced or evicted, or before the input ended)."""
NO_ANSWER_EXPECTED = -2
"""A protocol record's `status` when no answer was looked for: a one-way request (an MQTT QoS 0
PUBLISH, a BACnet unconfirmed request, DNP3's "no ack" functions, ...), or one the sensor cannot
pair (`ONE_WAY` in docs/protocols/README.md). Partitions written before -2 existed hold -1 for
these requests."""


class Operation(enum.IntEnum):
    """What an industrial request does, in every protocol's terms (the storage policy keys on it)."""

    OTHER = 0
    READ = 1
    WRITE = 2
    PROGRAM = 3
    CONTROL = 4
    DIAGNOSTIC = 5
    MALFORMED = 6
    IDENTIFY = 7


class Protocol(enum.IntEnum):
    """Industrial (and supporting) protocols known to the records plane."""

    UNKNOWN = 0
    MODBUS = 1
    S7COMM = 2
    DNP3 = 3
    ENIP = 4
    IEC104 = 5
    OPCUA = 6
    MQTT = 7
    BACNET = 8
    PROFINET_DCP = 9
    """PROFINET DCP (layer 2): its endpoints are MAC addresses, as IPv6 link-local addresses
    (`mac_addresses`)."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: np.dtype[np.generic]
    doc: str


@dataclass(frozen=True)
class RecordKind:
    """One kind of record: its columns, its time column, and the columns its chunks are indexed by."""

    name: str
    columns: tuple[Column, ...]
    indexed: tuple[str, ...]
    doc: str
    time_column: str = "ts"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def dtype_of(self, name: str) -> np.dtype[np.generic]:
        for column in self.columns:
            if column.name == name:
                return column.dtype
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, dtype: str | np.dtype[np.generic], doc: str) -> Column:
    return Column(name, np.dtype(dtype), doc)


_ENDPOINTS = (
    _c("site", TEXT, "Site the record was observed at."),
    _c("segment", TEXT, "Network segment within the site."),
    _c("src_addr", ADDRESS_DTYPE, "Source address (16 bytes; IPv4 mapped)."),
    _c("dst_addr", ADDRESS_DTYPE, "Destination address (16 bytes; IPv4 mapped)."),
    _c("src_port", "u2", "Source port (0 without one)."),
    _c("dst_port", "u2", "Destination port (0 without one)."),
    _c("transport", "u1", "IP protocol number (6 TCP, 17 UDP; 0 for layer 2)."),
    _c("protocol", "u1", "`Protocol` code."),
)

PROTOCOL_RECORDS = RecordKind(
    name="protocol",
    columns=(
        _c("ts", "i8", "Time of the request, nanoseconds since the Unix epoch (UTC)."),
        *_ENDPOINTS,
        _c("operation", "u1", "`Operation` code."),
        _c("function", "i4", "The protocol's function or service code."),
        _c("unit", "i4", "Unit, slave, station or rack/slot the request addresses (-1 if none)."),
        _c("address", "i8", "First register, object or data address (-1 if none)."),
        _c("quantity", "i4", "Number of registers, objects or bytes addressed (0 if none)."),
        _c(
            "status",
            "i2",
            "0 answered normally, >0 the protocol's exception code, -1 no answer seen, "
            "-2 no answer expected (a one-way request).",
        ),
        _c("value", "f8", "First value written, if any (NaN otherwise)."),
        _c("response_ns", "i8", "Time from the request to its answer, in nanoseconds (-1 if none came)."),
    ),
    indexed=("src_addr", "dst_addr", "protocol", "operation"),
    doc="One industrial request (with its answer's status), as the sensor or the gateway saw it.",
)

READ_MINUTES = RecordKind(
    name="protocol_read_minutes",
    columns=(
        _c("ts", "i8", "Start of the minute, nanoseconds since the Unix epoch (UTC)."),
        *_ENDPOINTS,
        _c("function", "i4", "The protocol's function or service code."),
        _c("unit", "i4", "Unit, slave, station or rack/slot."),
        _c("address", "i8", "First register, object or data address."),
        _c("quantity", "i4", "Number of registers, objects or bytes addressed."),
        _c("requests", "i8", "Number of read requests with this key in the minute."),
        _c(
            "errors",
            "i8",
            "How many of them were answered with an exception or not at all (one-way ones are not errors).",
        ),
        _c("first_ts", "i8", "Time of the first of them."),
        _c("last_ts", "i8", "Time of the last of them."),
    ),
    indexed=("src_addr", "dst_addr", "protocol"),
    doc="Read polling, kept as per-minute aggregates with counts (the storage policy).",
)

FLOWS = RecordKind(
    name="flows",
    columns=(
        _c("ts", "i8", "Start of the flow, nanoseconds since the Unix epoch (UTC)."),
        _c("ts_end", "i8", "Time of the flow's last packet."),
        *_ENDPOINTS,
        _c("packets", "i8", "Packets in both directions."),
        _c("bytes", "i8", "Bytes in both directions (IP length)."),
    ),
    indexed=("src_addr", "dst_addr", "protocol"),
    doc="One conversation between two endpoints.",
)

TELEMETRY = RecordKind(
    name="telemetry",
    columns=(
        _c("ts", "i8", "Sample time, nanoseconds since the Unix epoch (UTC)."),
        _c("site", TEXT, "Site of the device."),
        _c("device", TEXT, "Device (or PLC) the variable belongs to."),
        _c("variable", TEXT, "Variable name (a register's name in the plant model)."),
        _c("value", "f8", "The numeric value."),
        _c("quality", "i1", "0 good, >0 questionable or bad (source-specific)."),
    ),
    indexed=("device", "variable"),
    doc="Numeric time series per device and variable.",
)

GATEWAY_REQUESTS = RecordKind(
    name="gateway_requests",
    columns=(
        *PROTOCOL_RECORDS.columns,
        Column("allowed", np.dtype("u1"), "1 forwarded to the PLC, 0 refused or dropped."),
        Column("rule", TEXT, "The rule that decided (policy rule, gateway:envelope:..., gateway:malformed)."),
        Column("reason", TEXT, "The decision's reason, for people."),
        Column("policy_version", TEXT, "The version of the policy snapshot in force ('' with none)."),
        Column("subject", TEXT, "Who asked: 'cert_role <role>' or 'address <ip>'."),
        Column("device", TEXT, "The device of the client certificate ('' for plain Modbus/TCP)."),
        Column("asset", TEXT, "The PLC (asset id) the request went to ('' when not routed)."),
    ),
    indexed=("src_addr", "dst_addr", "protocol", "operation"),
    doc="One request through the Modbus/TCP security gateway and its decision.",
)

KINDS: dict[str, RecordKind] = {
    k.name: k for k in (PROTOCOL_RECORDS, READ_MINUTES, FLOWS, TELEMETRY, GATEWAY_REQUESTS)
}


def address(text: str) -> bytes:
    """The 16-byte form of an IPv4 or IPv6 address."""
    parsed = ipaddress.ip_address(text)
    if isinstance(parsed, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{parsed}").packed
    return parsed.packed


def address_text(packed: bytes) -> str:
    """The text form of a 16-byte address (IPv4-mapped addresses as dotted quads)."""
    parsed = ipaddress.IPv6Address(packed.ljust(16, b"\0"))
    mapped = parsed.ipv4_mapped
    return str(mapped) if mapped is not None else str(parsed)


def ipv4_addresses(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.bytes_]:
    """Vectorised: IPv4 addresses as host-order uint32 to 16-byte mapped addresses."""
    out = np.zeros((len(values), 16), dtype=np.uint8)
    out[:, 10] = 0xFF
    out[:, 11] = 0xFF
    out[:, 12:16] = np.asarray(values, dtype=">u4").view(np.uint8).reshape(-1, 4)
    return out.view(ADDRESS_DTYPE).reshape(-1)


def mac_addresses(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.bytes_]:
    """Vectorised: 48-bit MAC addresses (as integers) to 16-byte IPv6 link-local addresses, the
    standard mapping (RFC 4291 appendix A, modified EUI-64): fe80::, then the MAC with its
    universal/local bit (0x02 of the first octet) flipped and ff:fe inserted in the middle, so
    that 00:0c:29:ba:09:ea is fe80::20c:29ff:feba:9ea."""
    octets = np.asarray(values, dtype=">u8").view(np.uint8).reshape(-1, 8)[:, 2:]
    out = np.zeros((len(octets), 16), dtype=np.uint8)
    out[:, 0], out[:, 1] = 0xFE, 0x80
    out[:, 8:11] = octets[:, 0:3]
    out[:, 8] ^= 0x02
    out[:, 11], out[:, 12] = 0xFF, 0xFE
    out[:, 13:16] = octets[:, 3:6]
    return out.view(ADDRESS_DTYPE).reshape(-1)


def mac_address(text: str) -> bytes:
    """The 16-byte link-local form of a MAC address written aa:bb:cc:dd:ee:ff (or with hyphens)."""
    digits = text.replace(":", "").replace("-", "")
    if len(digits) != 12 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise InvalidInput(f"not a MAC address: {text!r} (write six octets in hex, as 00:1b:1b:01:02:03)")
    return bytes(mac_addresses(np.array([int(digits, 16)], dtype=np.uint64))[0]).ljust(16, b"\0")
