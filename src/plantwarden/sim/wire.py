"""Frames as they cross a plant's wire: Ethernet (with 802.1Q and stacked 802.1ad tags), IPv4 and
TCP or UDP, with real checksums, options, sequence and acknowledgement numbers.

`TcpConnection` keeps the state of one TCP connection seen at a capture point (sequence numbers,
timestamps option, IP identification) and turns payloads into frames: the three-way handshake,
data segments with their acknowledgements, retransmissions and the closing exchange. The traffic
generator and the live plant's software tap both build their frames here, so both give the same
bytes for the same exchange. Nothing here does I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8
PROTOCOL_TCP = 6
PROTOCOL_UDP = 17

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
IPV4_HEADER = struct.Struct(">BBHHHBBH4s4s")
TCP_HEADER = struct.Struct(">HHIIBBHHH")
UDP_HEADER = struct.Struct(">HHHH")

RECORD_ROUTE_OPTION = bytes((7, 11, 4)) + bytes(8) + b"\x00"
"""IPv4 Record Route with two empty slots, padded to a word: the IP option some flows carry."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`: the ones' complement of its ones' complement sum.

    A ones' complement sum of 16-bit words is the number the bytes spell modulo 0xFFFF (0x10000 is
    1 modulo 0xFFFF), except that a non-zero sum is 0xFFFF rather than 0.
    """
    if len(data) % 2:
        data += b"\x00"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    if total == 0 and number:
        total = 0xFFFF
    return ~total & 0xFFFF


def mac_bytes(text: str) -> bytes:
    """Six bytes from `aa:bb:cc:dd:ee:ff`."""
    return bytes(int(part, 16) for part in text.split(":"))


def ip_bytes(text: str) -> bytes:
    """Four bytes from a dotted IPv4 address."""
    return bytes(int(part) for part in text.split("."))


@dataclass(frozen=True, slots=True)
class Link:
    """How frames look on the link where they are captured: MACs and VLAN tags (outermost first)."""

    source_mac: bytes
    destination_mac: bytes
    vlans: tuple[int, ...] = ()

    def reversed(self) -> Link:
        """The same link seen in the other direction."""
        return Link(self.destination_mac, self.source_mac, self.vlans)

    def ethernet_header(self, ethertype: int) -> bytes:
        """The Ethernet header with its tags: 802.1ad outside 802.1Q when there are two."""
        header = self.destination_mac + self.source_mac
        for index, vlan in enumerate(self.vlans):
            tpid = TPID_8021AD if index == 0 and len(self.vlans) > 1 else TPID_8021Q
            header += struct.pack(">HH", tpid, vlan & 0x0FFF)
        return header + struct.pack(">H", ethertype)


@dataclass(slots=True)
class IpHost:
    """One end of an IPv4 exchange: its address, initial TTL, IP identification counter, options."""

    address: bytes
    ttl: int = 64
    identification: int = 0
    dont_fragment: bool = True
    options: bytes = b""

    def next_identification(self) -> int:
        """The identification of the host's next datagram."""
        self.identification = (self.identification + 1) & 0xFFFF
        return self.identification


def ipv4_packet(source: IpHost, destination: bytes, protocol: int, payload: bytes, hops: int = 0) -> bytes:
    """An IPv4 datagram from `source`, its TTL lowered by the `hops` routers it crossed."""
    header_length = 20 + len(source.options)
    flags = 0x4000 if source.dont_fragment else 0
    header = IPV4_HEADER.pack(
        0x40 | header_length // 4,
        0,
        header_length + len(payload),
        source.next_identification(),
        flags,
        source.ttl - hops,
        protocol,
        0,
        source.address,
        destination,
    )
    header += source.options
    header = header[:10] + struct.pack(">H", checksum(header)) + header[12:]
    return header + payload


def _pseudo_header(source: bytes, destination: bytes, protocol: int, length: int) -> bytes:
    return source + destination + struct.pack(">BBH", 0, protocol, length)


def udp_datagram(
    source: bytes, destination: bytes, source_port: int, destination_port: int, data: bytes
) -> bytes:
    """A UDP datagram (header, checksum over the pseudo-header, data)."""
    length = 8 + len(data)
    header = UDP_HEADER.pack(source_port, destination_port, length, 0)
    value = checksum(_pseudo_header(source, destination, PROTOCOL_UDP, length) + header + data) or 0xFFFF
    return UDP_HEADER.pack(source_port, destination_port, length, value) + data


def udp_frame(
    link: Link,
    source: IpHost,
    destination: bytes,
    ports: tuple[int, int],
    data: bytes,
    hops: int = 0,
) -> bytes:
    """A whole Ethernet frame carrying one UDP datagram."""
    datagram = udp_datagram(source.address, destination, ports[0], ports[1], data)
    return link.ethernet_header(ETHERTYPE_IPV4) + ipv4_packet(
        source, destination, PROTOCOL_UDP, datagram, hops
    )


def arp_frame(link: Link, request: bool, sender: tuple[bytes, bytes], target: tuple[bytes, bytes]) -> bytes:
    """An ARP request or reply: `sender` and `target` are (MAC, IPv4 address) pairs."""
    body = struct.pack(">HHBBH", 1, ETHERTYPE_IPV4, 6, 4, 1 if request else 2)
    body += sender[0] + sender[1] + target[0] + target[1]
    frame = link.ethernet_header(ETHERTYPE_ARP) + body
    return frame + bytes(max(0, 60 - len(frame)))


LLDP_MULTICAST = bytes.fromhex("0180c200000e")
ETHERTYPE_LLDP = 0x88CC
LLDP_BRIDGE, LLDP_ROUTER = 0x0004, 0x0010
"""System capability bits (IEEE 802.1AB, 8.5.8): a bridge (switch) and a router."""


@dataclass(frozen=True, slots=True)
class LldpAnnouncement:
    """What an LLDPDU says: the sender's MAC (its chassis id), port, names, capabilities, address."""

    mac: bytes
    port: str
    system_name: str
    system_description: str
    capabilities: int
    management: bytes
    ttl: int = 120


def _lldp_tlv(kind: int, value: bytes) -> bytes:
    return struct.pack(">H", kind << 9 | len(value)) + value


def lldp_frame(announcement: LldpAnnouncement) -> bytes:
    """An untagged LLDPDU to the nearest-bridge address: chassis id (a MAC), port id (an interface
    name), TTL, system name and description, capabilities (all enabled), management address."""
    a = announcement
    management = bytes((1 + len(a.management), 1)) + a.management + b"\x02" + struct.pack(">I", 1) + b"\x00"
    body = b"".join(
        (
            _lldp_tlv(1, b"\x04" + a.mac),
            _lldp_tlv(2, b"\x05" + a.port.encode()),
            _lldp_tlv(3, struct.pack(">H", a.ttl)),
            _lldp_tlv(5, a.system_name.encode()),
            _lldp_tlv(6, a.system_description.encode()),
            _lldp_tlv(7, struct.pack(">HH", a.capabilities, a.capabilities)),
            _lldp_tlv(8, management),
            _lldp_tlv(0, b""),
        )
    )
    frame = Link(a.mac, LLDP_MULTICAST).ethernet_header(ETHERTYPE_LLDP) + body
    return frame + bytes(max(0, 60 - len(frame)))


@dataclass(slots=True)
class TcpEnd:
    """One end of a TCP connection: port, next sequence number, timestamps clock, window, MSS."""

    host: IpHost
    port: int
    sequence: int
    timestamps: bool = True
    window: int = 64240
    window_scale: int = 7
    mss: int = 1460
    clock_offset: int = 0
    last_peer_tsval: int = 0

    def tsval(self, time: float) -> int:
        """The timestamps option value at `time`: a millisecond clock with a per-host offset."""
        return (self.clock_offset + int(time * 1000)) & 0xFFFFFFFF


@dataclass(slots=True)
class Segment:
    """A frame of a TCP connection and what it carries."""

    time: float
    frame: bytes
    from_client: bool
    payload_length: int
    retransmission: bool = False


@dataclass(slots=True)
class TcpConnection:
    """The state of one TCP connection at the capture point, turning payloads into frames.

    `client_link` is how client-to-server frames look where they are captured (server-to-client
    frames use its reverse); `server_hops` is how many routers the server's frames crossed.
    """

    client: TcpEnd
    server: TcpEnd
    client_link: Link
    server_hops: int = 0
    client_hops: int = 0
    open: bool = False

    def _ends(self, from_client: bool) -> tuple[TcpEnd, TcpEnd, Link, int]:
        if from_client:
            return self.client, self.server, self.client_link, self.client_hops
        return self.server, self.client, self.client_link.reversed(), self.server_hops

    def _frame(
        self, time: float, from_client: bool, flags: int, payload: bytes, options: bytes, seq: int
    ) -> bytes:
        sender, receiver, link, hops = self._ends(from_client)
        ack_number = receiver.sequence if flags & ACK else 0
        offset = (20 + len(options)) // 4
        scaled = self.full_options and not flags & SYN
        window = sender.window >> sender.window_scale if scaled else min(sender.window, 0xFFFF)
        header = TCP_HEADER.pack(
            sender.port, receiver.port, seq, ack_number, offset << 4, flags, window, 0, 0
        )
        header += options
        pseudo = _pseudo_header(
            sender.host.address, receiver.host.address, PROTOCOL_TCP, len(header) + len(payload)
        )
        value = checksum(pseudo + header + payload)
        segment = header[:16] + struct.pack(">H", value) + header[18:] + payload
        ip = ipv4_packet(sender.host, receiver.host.address, PROTOCOL_TCP, segment, hops)
        return link.ethernet_header(ETHERTYPE_IPV4) + ip

    @property
    def full_options(self) -> bool:
        """Whether both ends negotiated SACK, timestamps and window scaling (a full TCP stack)."""
        return self.client.timestamps and self.server.timestamps

    def syn(self, time: float) -> Segment:
        """The client's SYN."""
        client = self.client
        options = self._syn_options(client, time, client.timestamps, echo=0)
        frame = self._frame(time, True, SYN, b"", options, client.sequence)
        client.sequence = (client.sequence + 1) & 0xFFFFFFFF
        return Segment(time, frame, True, 0)

    def syn_ack(self, time: float, server_time: float, syn_time: float) -> Segment:
        """The server's SYN-ACK to a SYN sent at `syn_time`, sent at `server_time`, captured at `time`."""
        server = self.server
        echo = self.client.tsval(syn_time) if self.full_options else 0
        options = self._syn_options(server, server_time, self.full_options, echo)
        frame = self._frame(time, False, SYN | ACK, b"", options, server.sequence)
        server.sequence = (server.sequence + 1) & 0xFFFFFFFF
        self.client.last_peer_tsval = server.tsval(server_time)
        return Segment(time, frame, False, 0)

    def handshake(self, time: float, rtt: float) -> list[Segment]:
        """SYN, SYN-ACK and ACK as the client's side sees them, a round trip from first to second."""
        first = self.syn(time)
        second = self.syn_ack(time + rtt, time + rtt / 2, time)
        third = self.ack(time + rtt + 0.000_05, True)
        self.server.last_peer_tsval = self.client.tsval(third.time)
        self.open = True
        return [first, second, third]

    def _syn_options(self, end: TcpEnd, time: float, timestamps: bool, echo: int) -> bytes:
        options = struct.pack(">BBH", 2, 4, end.mss)
        if not end.timestamps:
            return options
        options += b"\x04\x02"  # SACK permitted
        if timestamps:
            options += struct.pack(">BBII", 8, 10, end.tsval(time), echo)
        else:
            options += b"\x01\x01"
        return options + struct.pack(">BBBB", 1, 3, 3, end.window_scale)

    def _data_options(self, from_client: bool, time: float) -> bytes:
        sender, receiver = (self.client, self.server) if from_client else (self.server, self.client)
        if not (sender.timestamps and receiver.timestamps):
            return b""
        return struct.pack(">BBBBII", 1, 1, 8, 10, sender.tsval(time), sender.last_peer_tsval)

    def send(self, time: float, from_client: bool, payload: bytes, *, push: bool = True) -> Segment:
        """One data segment carrying `payload` (which must fit one segment), acknowledging the peer."""
        sender, receiver, _, _ = self._ends(from_client)
        flags = ACK | (PSH if push else 0)
        frame = self._frame(
            time, from_client, flags, payload, self._data_options(from_client, time), sender.sequence
        )
        sender.sequence = (sender.sequence + len(payload)) & 0xFFFFFFFF
        receiver.last_peer_tsval = sender.tsval(time)
        return Segment(time, frame, from_client, len(payload))

    def retransmit(self, time: float, from_client: bool, payload: bytes) -> Segment:
        """The last segment of `payload` sent again (same sequence number) after a timeout."""
        sender = self.client if from_client else self.server
        sequence = (sender.sequence - len(payload)) & 0xFFFFFFFF
        frame = self._frame(
            time, from_client, ACK | PSH, payload, self._data_options(from_client, time), sequence
        )
        return Segment(time, frame, from_client, len(payload), retransmission=True)

    def ack(self, time: float, from_client: bool) -> Segment:
        """A bare acknowledgement of everything received."""
        sender, _, _, _ = self._ends(from_client)
        frame = self._frame(
            time, from_client, ACK, b"", self._data_options(from_client, time), sender.sequence
        )
        return Segment(time, frame, from_client, 0)

    def close(self, time: float, rtt: float, from_client: bool = True) -> list[Segment]:
        """The orderly close started by one side: FIN-ACK, FIN-ACK, ACK."""
        closer, other, _, _ = self._ends(from_client)
        first = self._frame(
            time, from_client, FIN | ACK, b"", self._data_options(from_client, time), closer.sequence
        )
        closer.sequence = (closer.sequence + 1) & 0xFFFFFFFF
        second = self._frame(
            time + rtt,
            not from_client,
            FIN | ACK,
            b"",
            self._data_options(not from_client, time + rtt),
            other.sequence,
        )
        other.sequence = (other.sequence + 1) & 0xFFFFFFFF
        third = self._frame(
            time + rtt, from_client, ACK, b"", self._data_options(from_client, time + rtt), closer.sequence
        )
        self.open = False
        return [
            Segment(time, first, from_client, 0),
            Segment(time + rtt, second, not from_client, 0),
            Segment(time + rtt + 0.000_04, third, from_client, 0),
        ]

    def reset(self, time: float, from_client: bool) -> Segment:
        """A reset from one side (a scanner dropping a half-open connection, a refused port)."""
        sender, _, _, _ = self._ends(from_client)
        frame = self._frame(time, from_client, RST, b"", b"", sender.sequence)
        self.open = False
        return Segment(time, frame, from_client, 0)

    def refuse(self, time: float) -> Segment:
        """The RST-ACK a closed port answers a SYN with."""
        server = self.server
        frame = self._frame(time, False, RST | ACK, b"", b"", 0)
        server.sequence = 0
        return Segment(time, frame, False, 0)
