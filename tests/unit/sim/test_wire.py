"""Frames: the Internet checksum against its definition, and what tshark reads of one connection."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.sim.pcap import PcapngWriter, PcapWriter
from plantwarden.sim.wire import IpHost, Link, TcpConnection, TcpEnd, checksum, ip_bytes, mac_bytes
from tests.tshark_support import fields


def reference_checksum(data: bytes) -> int:
    """RFC 1071 as written: 16-bit words summed with end-around carry, then complemented."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack(">H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600))
def test_the_checksum_is_rfc_1071s(data: bytes) -> None:
    assert checksum(data) == reference_checksum(data)


def test_a_checksum_over_data_with_its_checksum_is_zero() -> None:
    for data in (b"\x45\x00\x00\x1c", b"\xff\xff" * 10, bytes(range(255))):
        value = checksum(data + b"\x00\x00" if len(data) % 2 == 0 else data + b"\x00\x00\x00")
        whole = (data if len(data) % 2 == 0 else data + b"\x00") + struct.pack(">H", value)
        assert checksum(whole) == 0


def connection() -> TcpConnection:
    client = TcpEnd(IpHost(ip_bytes("127.10.1.10"), ttl=128), 50000, 0xFFFFFFF0, clock_offset=7)
    server = TcpEnd(
        IpHost(ip_bytes("127.10.2.11"), dont_fragment=False), 502, 1000, timestamps=False, window=8192
    )
    link = Link(mac_bytes("02:50:57:00:00:01"), mac_bytes("02:50:57:00:00:fe"), (10,))
    return TcpConnection(client, server, link, server_hops=1)


def test_tshark_follows_the_connection_through_a_sequence_number_wrap(tmp_path: Path) -> None:
    tcp = connection()
    frames = [*tcp.handshake(100.0, 0.001)]
    frames.append(tcp.send(100.01, True, b"A" * 20))  # the client's sequence numbers wrap here
    frames.append(tcp.send(100.02, False, b"B" * 9))
    frames += tcp.close(101.0, 0.001)
    path = tmp_path / "one.pcap"
    with PcapWriter(path.open("wb"), owns_stream=True) as writer:
        for segment in frames:
            writer.write(segment.time, segment.frame)
    names = [
        "tcp.flags.str",
        "tcp.seq",
        "tcp.ack",
        "tcp.checksum.status",
        "ip.ttl",
        "vlan.id",
        "_ws.expert.severity",
    ]
    rows = fields(path, names)
    assert [row[1:3] for row in rows] == [
        ["0", "0"], ["0", "1"], ["1", "1"], ["1", "1"], ["1", "21"], ["21", "10"], ["10", "22"], ["22", "11"]
    ]  # fmt: skip
    assert {row[3] for row in rows} == {"1"}  # Wireshark: 0 bad, 1 good, 2 unverified
    assert [row[4] for row in rows[:2]] == ["128", "63"]  # the PLC's answer crossed a router
    assert {row[5] for row in rows} == {"10"}
    assert all(not row[6] or max(int(s) for s in row[6].split(",")) < 0x00800000 for row in rows)


def test_pcapng_blocks_are_what_tshark_expects(tmp_path: Path) -> None:
    path = tmp_path / "one.pcapng"
    with PcapngWriter(path.open("wb"), owns_stream=True, nanoseconds=True, comment="a test") as writer:
        writer.write(1.5, connection().syn(1.5).frame)
    rows = fields(path, ["frame.time_epoch", "frame.len", "frame.interface_name"])
    assert rows == [["1.500000000", "78", "plant-tap"]]
