"""What the layer decoder gives: one row per packet, as numpy columns, and the status of each row.

Rules every column follows (both decoders, the vectorised and the exact one, keep them):

* A column is *empty* (0, False, -1 for offsets and VLAN ids, 16 zero bytes for addresses) when
  its layer is absent or was not decoded.
* The `status` is the first problem found, in decode order: link, IP header, fragment, transport
  header, payload. Decoding stops at the first problem, except `FRAGMENT` of a first fragment
  (offset 0), whose transport header is still decoded, and `TRUNCATED_PAYLOAD`, which is last.
* A truncated link header (`TRUNCATED_LINK`) leaves every column empty.
* The IP columns are filled as soon as the fixed IP header (20 bytes IPv4, 40 bytes IPv6) is
  captured and its version matches, even when a later check of the header fails: the source of a
  malformed packet is a finding too. The TCP (UDP) columns likewise as soon as the fixed 20-byte
  (8-byte) header lies inside both the capture and the IP packet.
* Claims are checked before captures: a header that does not fit in the IP total length is a
  `BAD_...` status even if the capture is short too.
* Offsets are absolute indices into the batch's buffer. `l3_offset` is set for every packet whose
  link header decoded, IP or not (GOOSE and PROFINET start there); `payload_offset` and
  `payload_length` only for TCP and UDP, the payload cut to the IP total length (Ethernet padding
  and trailers are not payload), to the UDP length, and to what was captured.
* `ethertype` is the one after the VLAN tags; on raw-IP and loopback links the one the link
  implies (0x0800, 0x86DD, or 0 for an unknown loopback family); an 802.3 frame's length field
  as it stands (below 0x0600).
* Fragments: every fragment is flagged (`fragment`, status `FRAGMENT`); only a first fragment
  (offset 0) has its TCP/UDP header decoded, and its payload is the fragment's part. Nothing is
  reassembled here.
* Not decoded: IPv6 jumbograms (payload length 0), IPv4 options' contents, AH/ESP, tunnels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.schema import ADDRESS_DTYPE

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_QINQ_OLD = 0x9100
VLAN_ETHERTYPES = (ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD)
MAX_VLAN_TAGS = 4
"""Tags walked before giving up (`TOO_MANY_VLAN_TAGS`); two are normal, three are already odd."""

PROTO_TCP = 6
PROTO_UDP = 17
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_DESTINATION_OPTIONS = 60
IPV6_EXTENSION_HEADERS = (IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_DESTINATION_OPTIONS)
MAX_IPV6_EXTENSION_HEADERS = 8
"""Extension headers walked before giving up (`BAD_IP_HEADER_LENGTH`)."""

NULL_FAMILY_IPV4 = 2
NULL_FAMILIES_IPV6 = (24, 28, 30)
"""AF_INET6 of NetBSD/OpenBSD (24), FreeBSD/DragonFly (28) and Darwin (30)."""


class LayerStatus(enum.IntEnum):
    """How far the decoder got with a packet; everything but OK is worth counting."""

    OK = 0
    """IP with every header sound and the payload captured, or IP carrying neither TCP nor UDP."""
    NOT_IP = 1
    """The link header decoded but carries no IP (ARP, GOOSE, PROFINET, LLC, an unknown loopback
    family): the link columns and `l3_offset` are filled, for the layer-2 protocols to use."""
    UNSUPPORTED_LINKTYPE = 2
    """A link type the decoder does not know; every column is empty."""
    TRUNCATED_LINK = 3
    """The capture ends inside the link header or a VLAN tag; every column is empty."""
    TOO_MANY_VLAN_TAGS = 4
    """More than `MAX_VLAN_TAGS` tags (VLAN hopping?): the link columns hold the first tags and
    the tag type after them; `l3_offset` is -1."""
    TRUNCATED_IP = 5
    """The capture ends inside the IP header, its options, or an IPv6 extension header."""
    BAD_IP_VERSION = 6
    """The version nibble disagrees with the EtherType (or is neither 4 nor 6 on a raw-IP link)."""
    BAD_IP_HEADER_LENGTH = 7
    """IPv4 header length (IHL) below 5; IPv6 extension headers that run past the payload length,
    or more than `MAX_IPV6_EXTENSION_HEADERS` of them."""
    BAD_IP_TOTAL_LENGTH = 8
    """IPv4 total length shorter than the header, or an IP packet (IPv4 total length, IPv6 40 +
    payload length) longer than the frame was on the wire."""
    FRAGMENT = 9
    """An IP fragment (IPv4 MF or offset > 0; IPv6 fragment header with M or offset > 0). Only a
    first fragment (offset 0) has its transport header decoded; its payload is the fragment's."""
    TRUNCATED_TRANSPORT = 10
    """The TCP or UDP header (with TCP options) fits in the IP packet but was not all captured."""
    BAD_TCP_HEADER_LENGTH = 11
    """TCP data offset below 5, or the TCP header does not fit in the IP packet."""
    BAD_UDP_LENGTH = 12
    """The IP packet is too short for a UDP header, or the UDP length is below 8 or (not in a
    fragment) runs past the IP packet."""
    TRUNCATED_PAYLOAD = 13
    """Headers sound, but the capture (snap length) holds less than the IP packet (or UDP datagram);
    `payload_length` counts what was captured."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its dtype, its value when empty, and what it holds."""

    dtype: str
    empty: Any
    doc: str


COLUMNS: dict[str, Column] = {
    "status": Column("u1", 0, "LayerStatus"),
    "ethertype": Column("u2", 0, "EtherType after the VLAN tags (raw IP, loopback: the one implied)"),
    "src_mac": Column("u8", 0, "Ethernet source (or the cooked-capture address when 6 bytes long)"),
    "dst_mac": Column("u8", 0, "Ethernet destination"),
    "vlan_outer": Column("i4", -1, "VLAN id of the first (outer) tag"),
    "vlan_inner": Column("i4", -1, "VLAN id of the last (innermost) tag when there are two or more"),
    "vlan_count": Column("u1", 0, "VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100) walked"),
    "l3_offset": Column("i8", -1, "first byte after the link header and tags"),
    "ip_version": Column("u1", 0, "4 or 6"),
    "ip_total_length": Column("u4", 0, "IPv4 total length; IPv6 40 + payload length"),
    "ttl": Column("u1", 0, "IPv4 time to live; IPv6 hop limit"),
    "ip_id": Column("u4", 0, "IPv4 identification; IPv6 fragment header identification"),
    "ip_proto": Column("u1", 0, "IPv4 protocol; IPv6 next header after the extension headers"),
    "ip_options": Column("?", False, "IPv4 header longer than 20 bytes; IPv6 extension headers"),
    "fragment": Column("?", False, "a fragment: more-fragments set or offset > 0"),
    "fragment_offset": Column("u2", 0, "fragment offset in bytes"),
    "dont_fragment": Column("?", False, "IPv4 DF"),
    "src_v4": Column("u4", 0, "IPv4 source, host order"),
    "dst_v4": Column("u4", 0, "IPv4 destination, host order"),
    "src_addr": Column(ADDRESS_DTYPE.str, bytes(16), "source, IPv4 as ::ffff:a.b.c.d"),
    "dst_addr": Column(ADDRESS_DTYPE.str, bytes(16), "destination, IPv4 as ::ffff:a.b.c.d"),
    "l4_offset": Column("i8", -1, "first byte after the IP header(s); -1 for non-first fragments"),
    "src_port": Column("u2", 0, "TCP or UDP source port"),
    "dst_port": Column("u2", 0, "TCP or UDP destination port"),
    "tcp_seq": Column("u4", 0, "raw sequence number"),
    "tcp_ack": Column("u4", 0, "raw acknowledgement number"),
    "tcp_flags": Column("u2", 0, "the 12 flag bits, reserved and AE/NS to FIN"),
    "tcp_window": Column("u2", 0, "window field, unscaled"),
    "tcp_header_length": Column("u1", 0, "data offset * 4"),
    "udp_length": Column("u2", 0, "UDP length field"),
    "payload_offset": Column("i8", -1, "TCP or UDP payload; -1 when not decoded"),
    "payload_length": Column("i4", 0, "captured payload bytes inside the IP packet and UDP length"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PacketLayers:
    """The layers of one packet, as plain Python values (the exact decoder's result, a row)."""

    status: int = LayerStatus.OK
    ethertype: int = 0
    src_mac: int = 0
    dst_mac: int = 0
    vlan_outer: int = -1
    vlan_inner: int = -1
    vlan_count: int = 0
    l3_offset: int = -1
    ip_version: int = 0
    ip_total_length: int = 0
    ttl: int = 0
    ip_id: int = 0
    ip_proto: int = 0
    ip_options: bool = False
    fragment: bool = False
    fragment_offset: int = 0
    dont_fragment: bool = False
    src_v4: int = 0
    dst_v4: int = 0
    src_addr: bytes = bytes(16)
    dst_addr: bytes = bytes(16)
    l4_offset: int = -1
    src_port: int = 0
    dst_port: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    tcp_flags: int = 0
    tcp_window: int = 0
    tcp_header_length: int = 0
    udp_length: int = 0
    payload_offset: int = -1
    payload_length: int = 0


Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Layers:
    """The layers of a batch of packets, one row per packet (see `COLUMNS` for each column).

    Offsets are absolute indices into the batch's buffer. The arrays are writable so that the
    decoder can fill them; treat them as read-only once returned.
    """

    status: npt.NDArray[np.uint8]
    ethertype: npt.NDArray[np.uint16]
    src_mac: npt.NDArray[np.uint64]
    dst_mac: npt.NDArray[np.uint64]
    vlan_outer: npt.NDArray[np.int32]
    vlan_inner: npt.NDArray[np.int32]
    vlan_count: npt.NDArray[np.uint8]
    l3_offset: npt.NDArray[np.int64]
    ip_version: npt.NDArray[np.uint8]
    ip_total_length: npt.NDArray[np.uint32]
    ttl: npt.NDArray[np.uint8]
    ip_id: npt.NDArray[np.uint32]
    ip_proto: npt.NDArray[np.uint8]
    ip_options: npt.NDArray[np.bool_]
    fragment: npt.NDArray[np.bool_]
    fragment_offset: npt.NDArray[np.uint16]
    dont_fragment: npt.NDArray[np.bool_]
    src_v4: npt.NDArray[np.uint32]
    dst_v4: npt.NDArray[np.uint32]
    src_addr: npt.NDArray[np.bytes_]
    dst_addr: npt.NDArray[np.bytes_]
    l4_offset: npt.NDArray[np.int64]
    src_port: npt.NDArray[np.uint16]
    dst_port: npt.NDArray[np.uint16]
    tcp_seq: npt.NDArray[np.uint32]
    tcp_ack: npt.NDArray[np.uint32]
    tcp_flags: npt.NDArray[np.uint16]
    tcp_window: npt.NDArray[np.uint16]
    tcp_header_length: npt.NDArray[np.uint8]
    udp_length: npt.NDArray[np.uint16]
    payload_offset: npt.NDArray[np.int64]
    payload_length: npt.NDArray[np.int32]

    @classmethod
    def empty(cls, count: int) -> Layers:
        """`count` rows, every column empty and status OK."""
        return cls(**{name: _empty_column(count, column) for name, column in COLUMNS.items()})

    @classmethod
    def unwritten(cls, count: int) -> Layers:
        """`count` rows, status OK and every other column uninitialised, for a decoder that writes
        each of them whole (`state.Decoding` does): a zeroed column would be written twice."""
        columns = {name: np.empty(count, dtype=column.dtype) for name, column in COLUMNS.items()}
        columns["status"] = np.zeros(count, dtype=COLUMNS["status"].dtype)
        return cls(**columns)

    def __len__(self) -> int:
        return len(self.status)

    def row(self, index: int) -> PacketLayers:
        """Row `index` as plain Python values, comparable with `decode_packet`."""
        values: dict[str, Any] = {}
        for name in COLUMNS:
            column: Array = getattr(self, name)
            # tobytes, not item: numpy drops the trailing zero bytes of an S16 item.
            values[name] = (
                column[index : index + 1].tobytes() if column.dtype.kind == "S" else column[index].item()
            )
        return PacketLayers(**values)

    def status_counts(self) -> dict[LayerStatus, int]:
        """How many packets have each status (the statuses that occur)."""
        counts = np.bincount(self.status, minlength=len(LayerStatus))
        return {LayerStatus(code): int(n) for code, n in enumerate(counts) if n and code < len(LayerStatus)}


def _empty_column(count: int, column: Column) -> Array:
    if column.empty == -1:
        return np.full(count, -1, dtype=column.dtype)
    return np.zeros(count, dtype=column.dtype)  # zeros, False, 16 zero bytes: no filling needed


def check_columns() -> None:
    """The column table, the batch and the row classes name the same columns (import-time check)."""
    names = list(COLUMNS)
    assert [f.name for f in fields(Layers)] == names
    assert [f.name for f in fields(PacketLayers)] == names


check_columns()
