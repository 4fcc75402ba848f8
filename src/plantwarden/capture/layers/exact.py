"""The exact layer decoder: one packet at a time in plain Python with `struct`.

Written apart from the vectorised decoder, to the same rules (`columns`), so that the tests can
hold each to the other on every column of every packet. Slow; meant for tests and single packets.
"""

from __future__ import annotations

import struct
from typing import Any, NoReturn

from plantwarden.capture import batch as linktypes
from plantwarden.capture.layers.columns import (
    COLUMNS,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPV6_EXTENSION_HEADERS,
    IPV6_FRAGMENT,
    MAX_IPV6_EXTENSION_HEADERS,
    MAX_VLAN_TAGS,
    NULL_FAMILIES_IPV6,
    NULL_FAMILY_IPV4,
    PROTO_TCP,
    PROTO_UDP,
    VLAN_ETHERTYPES,
    LayerStatus,
    PacketLayers,
)

IPV4_MAPPED = bytes(10) + b"\xff\xff"


class _Stop(Exception):
    """Decoding of this packet ends here."""


class _Packet:
    """One packet being decoded: its bytes, what is known so far, and its first problem."""

    def __init__(self, frame: bytes, wire_length: int) -> None:
        self.frame = frame
        self.wire_length = max(wire_length, len(frame))
        self.row: dict[str, Any] = {name: column.empty for name, column in COLUMNS.items()}
        self.row["status"] = LayerStatus.OK

    def note(self, status: LayerStatus) -> None:
        """`status` becomes the packet's status unless it has one already; decoding goes on."""
        if self.row["status"] == LayerStatus.OK:
            self.row["status"] = status

    def stop(self, status: LayerStatus) -> NoReturn:
        self.note(status)
        raise _Stop

    def stop_if(self, condition: bool, status: LayerStatus) -> None:
        if condition:
            self.stop(status)

    def set(self, **values: Any) -> None:
        self.row.update(values)


def decode_packet(frame: bytes, linktype: int, wire_length: int = 0, offset: int = 0) -> PacketLayers:
    """The layers of one packet, to the same rules as `decode_layers` (see `columns`).

    `wire_length` is the frame's length on the wire (at least `len(frame)`); `offset` is where the
    frame starts in its batch's buffer, added to the offset columns to make them comparable.
    """
    packet = _Packet(frame, wire_length)
    try:
        network, ethertype = _decode_link(packet, linktype)
        _decode_network(packet, network, ethertype)
    except _Stop:
        pass
    row = packet.row
    for name in ("l3_offset", "l4_offset", "payload_offset"):
        if row[name] >= 0:
            row[name] += offset
    return PacketLayers(**row)


def _decode_link(packet: _Packet, linktype: int) -> tuple[int, int]:
    """(where the network layer starts, its EtherType)."""
    frame = packet.frame
    if linktype == linktypes.LINKTYPE_ETHERNET:
        packet.stop_if(len(frame) < 14, LayerStatus.TRUNCATED_LINK)
        dst, src = int.from_bytes(frame[0:6], "big"), int.from_bytes(frame[6:12], "big")
        return _walk_tags(packet, 14, struct.unpack_from(">H", frame, 12)[0], src, dst)
    if linktype == linktypes.LINKTYPE_LINUX_SLL:
        packet.stop_if(len(frame) < 16, LayerStatus.TRUNCATED_LINK)
        address_length, protocol = (
            struct.unpack_from(">H", frame, 4)[0],
            struct.unpack_from(">H", frame, 14)[0],
        )
        src = int.from_bytes(frame[6:12], "big") if address_length == 6 else 0
        return _walk_tags(packet, 16, protocol, src, 0)
    if linktype == linktypes.LINKTYPE_LINUX_SLL2:
        packet.stop_if(len(frame) < 20, LayerStatus.TRUNCATED_LINK)
        src = int.from_bytes(frame[12:18], "big") if frame[11] == 6 else 0
        return _walk_tags(packet, 20, struct.unpack_from(">H", frame, 0)[0], src, 0)
    return _decode_link_without_addresses(packet, linktype)


def _decode_link_without_addresses(packet: _Packet, linktype: int) -> tuple[int, int]:
    frame = packet.frame
    if linktype == linktypes.LINKTYPE_RAW:
        version = frame[0] >> 4 if frame else 0
        ethertype = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version, 0)
        packet.set(l3_offset=0, ethertype=ethertype)
        packet.stop_if(not frame, LayerStatus.TRUNCATED_IP)
        packet.stop_if(ethertype == 0, LayerStatus.BAD_IP_VERSION)
        return 0, ethertype
    if linktype in (linktypes.LINKTYPE_IPV4, linktypes.LINKTYPE_IPV6):
        ethertype = ETHERTYPE_IPV4 if linktype == linktypes.LINKTYPE_IPV4 else ETHERTYPE_IPV6
        packet.set(l3_offset=0, ethertype=ethertype)
        return 0, ethertype
    if linktype == linktypes.LINKTYPE_NULL:
        packet.stop_if(len(frame) < 4, LayerStatus.TRUNCATED_LINK)
        family = struct.unpack_from("<I", frame)[0]
        if family > 0xFFFF:
            family = struct.unpack_from(">I", frame)[0]
        ethertype = ETHERTYPE_IPV4 if family == NULL_FAMILY_IPV4 else 0
        ethertype = ETHERTYPE_IPV6 if family in NULL_FAMILIES_IPV6 else ethertype
        packet.set(l3_offset=4, ethertype=ethertype)
        return 4, ethertype
    return packet.stop(LayerStatus.UNSUPPORTED_LINKTYPE)


def _walk_tags(packet: _Packet, position: int, ethertype: int, src: int, dst: int) -> tuple[int, int]:
    """VLAN tags after a link header; fills the link columns."""
    tags: list[int] = []
    while ethertype in VLAN_ETHERTYPES:
        if len(tags) == MAX_VLAN_TAGS:
            _set_link(packet, ethertype, src, dst, tags)
            packet.stop(LayerStatus.TOO_MANY_VLAN_TAGS)
        packet.stop_if(len(packet.frame) < position + 4, LayerStatus.TRUNCATED_LINK)
        control, ethertype = struct.unpack_from(">HH", packet.frame, position)
        tags.append(control & 0x0FFF)
        position += 4
    _set_link(packet, ethertype, src, dst, tags)
    packet.set(l3_offset=position)
    return position, ethertype


def _set_link(packet: _Packet, ethertype: int, src: int, dst: int, tags: list[int]) -> None:
    packet.set(ethertype=ethertype, src_mac=src, dst_mac=dst, vlan_count=len(tags))
    if tags:
        packet.set(vlan_outer=tags[0], vlan_inner=tags[-1] if len(tags) > 1 else -1)


def _decode_network(packet: _Packet, position: int, ethertype: int) -> None:
    if ethertype not in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        packet.stop(LayerStatus.NOT_IP)
    frame = packet.frame
    packet.stop_if(len(frame) - position < 1, LayerStatus.TRUNCATED_IP)
    version = 4 if ethertype == ETHERTYPE_IPV4 else 6
    packet.stop_if(frame[position] >> 4 != version, LayerStatus.BAD_IP_VERSION)
    packet.stop_if(len(frame) - position < (20 if version == 4 else 40), LayerStatus.TRUNCATED_IP)
    if version == 4:
        transport, ip_end = _decode_ipv4(packet, position)
    else:
        transport, ip_end = _decode_ipv6(packet, position)
    packet.set(l4_offset=transport)
    _decode_transport(packet, transport, ip_end)


def _decode_ipv4(packet: _Packet, position: int) -> tuple[int, int]:
    """(where the transport starts, where the IP packet ends)."""
    frame = packet.frame
    first, total, identification, flags, ttl, proto = struct.unpack_from(">BxHHHBB", frame, position)
    header_length = (first & 0x0F) * 4
    offset = (flags & 0x1FFF) * 8
    fragment = bool(flags & 0x2000) or offset > 0
    packet.set(ip_version=4, ip_total_length=total, ttl=ttl, ip_id=identification, ip_proto=proto)
    packet.set(ip_options=header_length > 20, dont_fragment=bool(flags & 0x4000))
    packet.set(fragment=fragment, fragment_offset=offset)
    src, dst = frame[position + 12 : position + 16], frame[position + 16 : position + 20]
    packet.set(src_v4=int.from_bytes(src, "big"), dst_v4=int.from_bytes(dst, "big"))
    packet.set(src_addr=IPV4_MAPPED + src, dst_addr=IPV4_MAPPED + dst)
    packet.stop_if(header_length < 20, LayerStatus.BAD_IP_HEADER_LENGTH)
    packet.stop_if(total < header_length, LayerStatus.BAD_IP_TOTAL_LENGTH)
    packet.stop_if(position + total > packet.wire_length, LayerStatus.BAD_IP_TOTAL_LENGTH)
    packet.stop_if(len(frame) - position < header_length, LayerStatus.TRUNCATED_IP)
    if fragment:
        packet.note(LayerStatus.FRAGMENT)
        packet.stop_if(offset > 0, LayerStatus.FRAGMENT)
    return position + header_length, position + total


def _decode_ipv6(packet: _Packet, position: int) -> tuple[int, int]:
    frame = packet.frame
    payload_length, next_header, hop_limit = struct.unpack_from(">HBB", frame, position + 4)
    packet.set(ip_version=6, ip_total_length=40 + payload_length, ttl=hop_limit, ip_proto=next_header)
    packet.set(src_addr=frame[position + 8 : position + 24], dst_addr=frame[position + 24 : position + 40])
    ip_end = position + 40 + payload_length
    packet.stop_if(ip_end > packet.wire_length, LayerStatus.BAD_IP_TOTAL_LENGTH)
    position += 40
    walked = 0
    while next_header in IPV6_EXTENSION_HEADERS:
        packet.stop_if(walked == MAX_IPV6_EXTENSION_HEADERS, LayerStatus.BAD_IP_HEADER_LENGTH)
        _check_reach(packet, position + 8, ip_end)
        length = 8 if next_header == IPV6_FRAGMENT else (frame[position + 1] + 1) * 8
        _check_reach(packet, position + length, ip_end)
        later_fragment = next_header == IPV6_FRAGMENT and _fragment_header(packet, position)
        next_header = frame[position]
        packet.set(ip_options=True, ip_proto=next_header)
        position += length
        walked += 1
        packet.stop_if(later_fragment, LayerStatus.FRAGMENT)
    return position, ip_end


def _check_reach(packet: _Packet, end: int, ip_end: int) -> None:
    packet.stop_if(end > ip_end, LayerStatus.BAD_IP_HEADER_LENGTH)
    packet.stop_if(end > len(packet.frame), LayerStatus.TRUNCATED_IP)


def _fragment_header(packet: _Packet, position: int) -> bool:
    """Fill the fragment columns; True for a fragment that is not the first."""
    offset_flags, identification = struct.unpack_from(">HI", packet.frame, position + 2)
    offset = offset_flags & 0xFFF8
    fragment = bool(offset_flags & 1) or offset > 0
    packet.set(fragment=fragment, fragment_offset=offset, ip_id=identification)
    if fragment:
        packet.note(LayerStatus.FRAGMENT)
    return bool(offset > 0)


def _decode_transport(packet: _Packet, position: int, ip_end: int) -> None:
    proto, captured = packet.row["ip_proto"], len(packet.frame)
    data_end, payload = ip_end, -1
    if proto == PROTO_TCP:
        payload = _decode_tcp(packet, position, ip_end)
    elif proto == PROTO_UDP:
        packet.stop_if(ip_end - position < 8, LayerStatus.BAD_UDP_LENGTH)
        packet.stop_if(captured - position < 8, LayerStatus.TRUNCATED_TRANSPORT)
        src, dst, length = struct.unpack_from(">HHH", packet.frame, position)
        packet.set(src_port=src, dst_port=dst, udp_length=length)
        past_ip = position + length > ip_end and not packet.row["fragment"]
        packet.stop_if(length < 8 or past_ip, LayerStatus.BAD_UDP_LENGTH)
        data_end, payload = min(position + length, ip_end), position + 8
    if captured < data_end:
        packet.note(LayerStatus.TRUNCATED_PAYLOAD)
    if payload >= 0:
        packet.set(payload_offset=payload, payload_length=min(data_end, captured) - payload)


def _decode_tcp(packet: _Packet, position: int, ip_end: int) -> int:
    """Fill the TCP columns; returns where the payload starts."""
    packet.stop_if(ip_end - position < 20, LayerStatus.BAD_TCP_HEADER_LENGTH)
    packet.stop_if(len(packet.frame) - position < 20, LayerStatus.TRUNCATED_TRANSPORT)
    src, dst, seq, ack, offset_flags, window = struct.unpack_from(">HHIIHH", packet.frame, position)
    header_length = (offset_flags >> 12) * 4
    packet.set(src_port=src, dst_port=dst, tcp_seq=seq, tcp_ack=ack, tcp_flags=offset_flags & 0x0FFF)
    packet.set(tcp_window=window, tcp_header_length=header_length)
    end: int = position + header_length
    packet.stop_if(header_length < 20 or end > ip_end, LayerStatus.BAD_TCP_HEADER_LENGTH)
    packet.stop_if(end > len(packet.frame), LayerStatus.TRUNCATED_TRANSPORT)
    return end
