"""The layer decoder, held to three oracles: its exact twin (`decode_packet`), tshark, and hand-made
frames whose every field the test knows.

* Twin: the vectorised decoder and the plain-Python one agree on every column of every packet, on
  hand-made frames, on every truncation and single-byte mutation of them, and on random batches
  (hypothesis), with garbage between the packets of the buffer.
* tshark: every column tshark also gives agrees on every packet of a generated capture, of every
  capture in ../shared/datasets/pcaps this file's little reader can read, and of captures of the
  hand-made frames, apart from the documented differences in `accepted_difference`.
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.capture.batch import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PacketBatch,
)
from plantwarden.capture.layers import (
    COLUMNS,
    Layers,
    LayerStatus,
    PacketLayers,
    decode_layers,
    decode_packet,
)
from plantwarden.core.records.schema import ipv4_addresses
from tests.helpers import plantwarden
from tests.tshark_support import tshark

DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "pcaps"
S = LayerStatus
SRC_MAC, DST_MAC = 0x02AABBCCDD01, 0x02AABBCCDD02

# ---------------------------------------------------------------------------------------------
# Hand-made frames


def ethernet(payload: bytes, ethertype: int = 0x0800, tags: Iterable[tuple[int, int]] = ()) -> bytes:
    header = DST_MAC.to_bytes(6, "big") + SRC_MAC.to_bytes(6, "big")
    for tpid, vlan in tags:
        header += struct.pack(">HH", tpid, vlan)
    return header + struct.pack(">H", ethertype) + payload


def ipv4(
    payload: bytes,
    proto: int = 6,
    *,
    options: bytes = b"",
    flags_offset: int = 0x4000,
    total: int | None = None,
    ihl: int | None = None,
    version: int = 4,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
) -> bytes:
    words = ihl if ihl is not None else 5 + len(options) // 4
    length = total if total is not None else 20 + len(options) + len(payload)
    header = struct.pack(">BBHHHBBH", version << 4 | words, 0, length, 0x1234, flags_offset, 64, proto, 0)
    return header + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + options + payload


def ipv6(payload: bytes, next_header: int = 6, *, extensions: bytes = b"", plen: int | None = None) -> bytes:
    length = plen if plen is not None else len(extensions) + len(payload)
    header = struct.pack(">IHBB", 0x60000000, length, next_header, 57)
    src, dst = ipaddress.IPv6Address("2001:db8::1").packed, ipaddress.IPv6Address("2001:db8::2").packed
    return header + src + dst + extensions + payload


def extension(next_header: int, units: int = 0) -> bytes:
    """A hop-by-hop / routing / destination options header of (units + 1) * 8 bytes (PadN)."""
    return bytes([next_header, units, 1, 4 + 8 * units]) + bytes(4 + 8 * units)


def fragment_header(next_header: int, offset: int, more: bool, identification: int = 0xCAFE) -> bytes:
    return struct.pack(">BBHI", next_header, 0, offset | int(more), identification)


def tcp(payload: bytes = b"", *, words: int = 5, flags: int = 0x018, options: bytes = b"") -> bytes:
    header = struct.pack(">HHIIHHHH", 50000, 502, 0xDEADBEEF, 0x01020304, words << 12 | flags, 8192, 0, 0)
    return header + options + payload


def udp(payload: bytes = b"", *, length: int | None = None) -> bytes:
    return struct.pack(">HHHH", 40000, 20000, length if length is not None else 8 + len(payload), 0) + payload


def sll(payload: bytes, protocol: int = 0x0800) -> bytes:
    return (
        struct.pack(">HHH", 0, 1, 6)
        + SRC_MAC.to_bytes(6, "big")
        + b"\0\0"
        + struct.pack(">H", protocol)
        + payload
    )


def sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    head = struct.pack(">HHIHBB", protocol, 0, 2, 1, 0, 6)
    return head + SRC_MAC.to_bytes(6, "big") + b"\0\0" + payload


MODBUS = bytes.fromhex("000100000006010300000002")
TCP_PACKET = ipv4(tcp(MODBUS))
ETH, IPV6_TYPE = LINKTYPE_ETHERNET, 0x86DD
TCP_OPTIONS = ipv4(tcp(MODBUS, words=8, options=bytes(12)), options=bytes(8))
IPV6_EXTENDED = ipv6(tcp(MODBUS), 0, extensions=extension(60) + extension(6, 1))
IPV6_FIRST = ipv6(tcp(), 44, extensions=fragment_header(6, 0, True))
IPV6_LATER = ipv6(b"more", 44, extensions=fragment_header(6, 1480, False))
SAMPLES: list[tuple[str, int, bytes]] = [
    ("ethernet-tcp", ETH, ethernet(TCP_PACKET)),
    ("vlan-tcp-options", ETH, ethernet(TCP_OPTIONS, tags=[(0x8100, 10)])),
    ("qinq-udp", ETH, ethernet(ipv4(udp(b"dnp3"), 17), tags=[(0x88A8, 100), (0x8100, 30)])),
    ("old-qinq", ETH, ethernet(TCP_PACKET, tags=[(0x9100, 7), (0x8100, 8)])),
    ("three-tags", ETH, ethernet(TCP_PACKET, tags=[(0x88A8, 1), (0x8100, 2), (0x8100, 3)])),
    ("padded", ETH, ethernet(ipv4(tcp(b"x"))) + bytes(5)),
    ("arp", ETH, ethernet(bytes.fromhex("0001080006040001") + bytes(20), 0x0806)),
    ("first-fragment", ETH, ethernet(ipv4(udp(b"0123456789", length=100), 17, flags_offset=0x2000))),
    ("later-fragment", ETH, ethernet(ipv4(b"later data", 17, flags_offset=0x0003))),
    ("ipv6-extensions", ETH, ethernet(IPV6_EXTENDED, IPV6_TYPE)),
    ("ipv6-routing-udp", ETH, ethernet(ipv6(udp(b"abc"), 43, extensions=extension(17, 2)), IPV6_TYPE)),
    ("ipv6-first-fragment", ETH, ethernet(IPV6_FIRST, IPV6_TYPE)),
    ("ipv6-later-fragment", ETH, ethernet(IPV6_LATER, IPV6_TYPE)),
    ("ipv6-icmp", ETH, ethernet(ipv6(bytes(8), 58), IPV6_TYPE)),
    ("icmp", ETH, ethernet(ipv4(bytes(8) + TCP_PACKET[:28], 1))),
    ("sll", LINKTYPE_LINUX_SLL, sll(TCP_PACKET)),
    ("sll2-ipv6", LINKTYPE_LINUX_SLL2, sll2(ipv6(udp(b"hi"), 17), IPV6_TYPE)),
    ("sll-vlan", LINKTYPE_LINUX_SLL, sll(struct.pack(">HH", 5, 0x0800) + TCP_PACKET, 0x8100)),
    ("raw-ipv4", LINKTYPE_RAW, TCP_PACKET),
    ("raw-ipv6", LINKTYPE_RAW, ipv6(tcp(MODBUS))),
    ("ipv4-link", LINKTYPE_IPV4, ipv4(udp(b"x"), 17)),
    ("ipv6-link", LINKTYPE_IPV6, ipv6(udp(b"x"), 17)),
    ("null-little", LINKTYPE_NULL, struct.pack("<I", 2) + TCP_PACKET),
    ("null-big-ipv6", LINKTYPE_NULL, struct.pack(">I", 30) + ipv6(tcp())),
]


def batch_of(
    packets: list[tuple[int, bytes]], wire: list[int] | None = None, gaps: list[bytes] | None = None
) -> PacketBatch:
    """A batch of (linktype, frame) pairs, with `gaps` (garbage) before each frame in the buffer."""
    gaps = gaps or [b""] * len(packets)
    chunks, offsets, position = [], [], 0
    for (_, frame), gap in zip(packets, gaps, strict=True):
        chunks += [gap, frame]
        offsets.append(position + len(gap))
        position += len(gap) + len(frame)
    lengths = np.array([len(frame) for _, frame in packets], dtype=np.int32)
    return PacketBatch(
        buffer=np.frombuffer(b"".join(chunks), dtype=np.uint8),
        offsets=np.array(offsets, dtype=np.int64),
        lengths=lengths,
        wire_lengths=np.array(wire, dtype=np.int32) if wire is not None else lengths.copy(),
        ts_ns=np.zeros(len(packets), dtype=np.int64),
        linktypes=np.array([linktype for linktype, _ in packets], dtype=np.uint16),
        interfaces=np.zeros(len(packets), dtype=np.uint16),
    )


def twin_rows(batch: PacketBatch) -> list[PacketLayers]:
    return [
        decode_packet(
            batch.packet(i), int(batch.linktypes[i]), int(batch.wire_lengths[i]), int(batch.offsets[i])
        )
        for i in range(len(batch))
    ]


def assert_twins_agree(batch: PacketBatch) -> Layers:
    layers = decode_layers(batch)
    assert len(layers) == len(batch)
    for name, column in COLUMNS.items():
        assert getattr(layers, name).dtype == np.dtype(column.dtype), name
    for index, expected in enumerate(twin_rows(batch)):
        assert layers.row(index) == expected, (index, batch.packet(index).hex())
    return layers


def one(linktype: int, frame: bytes, wire: int | None = None) -> PacketLayers:
    layers = assert_twins_agree(batch_of([(linktype, frame)], [wire or len(frame)]))
    return layers.row(0)


# ---------------------------------------------------------------------------------------------
# Hand-made frames: every field known


def test_ethernet_ipv4_tcp_fills_every_column() -> None:
    frame = ethernet(TCP_PACKET)
    row = one(LINKTYPE_ETHERNET, frame)
    assert row == PacketLayers(
        status=S.OK, ethertype=0x0800, src_mac=SRC_MAC, dst_mac=DST_MAC, vlan_count=0, l3_offset=14,
        ip_version=4, ip_total_length=len(TCP_PACKET), ttl=64, ip_id=0x1234, ip_proto=6,
        dont_fragment=True, src_v4=0x0A000001, dst_v4=0x0A000002,
        src_addr=bytes(10) + b"\xff\xff\x0a\x00\x00\x01", dst_addr=bytes(10) + b"\xff\xff\x0a\x00\x00\x02",
        l4_offset=34, src_port=50000, dst_port=502, tcp_seq=0xDEADBEEF, tcp_ack=0x01020304,
        tcp_flags=0x018, tcp_window=8192, tcp_header_length=20, payload_offset=54,
        payload_length=len(MODBUS),
    )  # fmt: skip
    assert frame[54:] == MODBUS


def test_ipv4_addresses_are_those_of_the_records_plane() -> None:
    layers = decode_layers(batch_of([(LINKTYPE_ETHERNET, ethernet(TCP_PACKET))]))
    assert layers.src_addr.tobytes() == ipv4_addresses(np.array([0x0A000001], dtype=np.uint32)).tobytes()


@pytest.mark.parametrize(
    ("tags", "outer", "inner", "count"),
    [
        ([(0x8100, 10)], 10, -1, 1),
        ([(0x88A8, 100), (0x8100, 30)], 100, 30, 2),
        ([(0x9100, 7), (0x8100, 4095)], 7, 4095, 2),
        ([(0x8100, 0x2001), (0x8100, 0xF002), (0x8100, 3)], 1, 3, 3),
    ],
)
def test_vlan_tags(tags: list[tuple[int, int]], outer: int, inner: int, count: int) -> None:
    frame = ethernet(TCP_PACKET, tags=tags)
    row = one(LINKTYPE_ETHERNET, frame)
    assert (row.status, row.ethertype, row.vlan_outer, row.vlan_inner, row.vlan_count) == (
        S.OK,
        0x0800,
        outer,
        inner,
        count,
    )
    assert (row.l3_offset, row.src_port) == (14 + 4 * count, 50000)


def test_more_than_four_tags_are_refused() -> None:
    row = one(LINKTYPE_ETHERNET, ethernet(TCP_PACKET, tags=[(0x8100, n) for n in range(1, 6)]))
    assert (row.status, row.vlan_count, row.vlan_outer, row.vlan_inner, row.ethertype) == (
        S.TOO_MANY_VLAN_TAGS,
        4,
        1,
        4,
        0x8100,
    )
    assert row.l3_offset == -1 and row.ip_version == 0


def test_linux_cooked_captures_and_loopback() -> None:
    for linktype, frame, l3 in [
        (LINKTYPE_LINUX_SLL, sll(TCP_PACKET), 16),
        (LINKTYPE_LINUX_SLL2, sll2(TCP_PACKET), 20),
        (LINKTYPE_NULL, struct.pack("<I", 2) + TCP_PACKET, 4),
        (LINKTYPE_NULL, struct.pack(">I", 2) + TCP_PACKET, 4),
        (LINKTYPE_RAW, TCP_PACKET, 0),
        (LINKTYPE_IPV4, TCP_PACKET, 0),
    ]:
        row = one(linktype, frame)
        assert (row.status, row.ethertype, row.l3_offset, row.src_port, row.payload_length) == (
            S.OK,
            0x0800,
            l3,
            50000,
            12,
        )
        assert row.src_mac == (SRC_MAC if linktype in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2) else 0)
        assert row.dst_mac == 0
    for family in (24, 28, 30):
        assert one(LINKTYPE_NULL, struct.pack("<I", family) + ipv6(tcp())).ip_version == 6
    unknown = one(LINKTYPE_NULL, struct.pack("<I", 7) + TCP_PACKET)
    assert (unknown.status, unknown.ethertype, unknown.l3_offset) == (S.NOT_IP, 0, 4)


def test_non_ip_keeps_its_link_columns_for_layer_2_protocols() -> None:
    goose = ethernet(bytes(20), 0x88B8, tags=[(0x8100, 5)])
    row = one(LINKTYPE_ETHERNET, goose)
    assert (row.status, row.ethertype, row.vlan_outer, row.l3_offset, row.ip_version) == (
        S.NOT_IP,
        0x88B8,
        5,
        18,
        0,
    )
    llc = DST_MAC.to_bytes(6, "big") + SRC_MAC.to_bytes(6, "big") + struct.pack(">H", 38) + bytes(38)
    assert one(LINKTYPE_ETHERNET, llc).ethertype == 38


def test_unsupported_linktype_leaves_everything_empty() -> None:
    assert one(147, ethernet(TCP_PACKET)) == PacketLayers(status=S.UNSUPPORTED_LINKTYPE)


def test_a_batch_of_mixed_linktypes() -> None:
    packets = [(linktype, frame) for _, linktype, frame in SAMPLES] + [(147, b"??"), (LINKTYPE_ETHERNET, b"")]
    layers = assert_twins_agree(batch_of(packets))
    assert layers.status_counts()[S.UNSUPPORTED_LINKTYPE] == 1


# ---------------------------------------------------------------------------------------------
# Edge cases


def statuses_of_truncations(linktype: int, frame: bytes) -> list[LayerStatus]:
    """The status of every truncation of `frame` (0 to all its bytes), on the wire whole."""
    packets = [(linktype, frame[:length]) for length in range(len(frame) + 1)]
    layers = assert_twins_agree(batch_of(packets, [len(frame)] * len(packets)))
    return [LayerStatus(code) for code in layers.status]


def test_truncated_frames_at_every_length() -> None:
    frame = ethernet(ipv4(tcp(MODBUS, words=6, options=bytes(4)), options=bytes(4)), tags=[(0x8100, 1)])
    l3, l4, data = 18, 18 + 24, 18 + 24 + 24
    expected = (
        [S.TRUNCATED_LINK] * l3
        + [S.TRUNCATED_IP] * 24
        + [S.TRUNCATED_TRANSPORT] * 24
        + [S.TRUNCATED_PAYLOAD] * len(MODBUS)
        + [S.OK]
    )
    assert len(frame) == data + len(MODBUS) and l4 == 42
    assert statuses_of_truncations(LINKTYPE_ETHERNET, frame) == expected


def test_every_truncation_of_every_sample_agrees_and_never_reads_outside_the_packet() -> None:
    for _, linktype, frame in SAMPLES:
        packets = [(linktype, frame[:length]) for length in range(len(frame) + 1)]
        # Garbage after each truncation: the decoder must not read it as part of the packet.
        gaps = [b"\xff" * 3] * len(packets)
        layers = assert_twins_agree(batch_of(packets, [len(frame)] * len(packets), gaps))
        ends = layers.payload_offset + layers.payload_length
        inside = batch_of(packets, gaps=gaps)
        assert ((layers.payload_offset == -1) | (ends <= inside.offsets + inside.lengths)).all()


def test_zero_length_packets() -> None:
    for linktype in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL):
        assert one(linktype, b"") == PacketLayers(status=S.TRUNCATED_LINK)
    for linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        row = one(linktype, b"")
        assert (row.status, row.l3_offset, row.ip_version) == (S.TRUNCATED_IP, 0, 0)
    empty = decode_layers(batch_of([]))
    assert len(empty) == 0 and empty.status_counts() == {}


def test_ip_total_length_larger_than_captured() -> None:
    frame = ethernet(ipv4(tcp(MODBUS), total=20 + 20 + 100))
    claimed = one(LINKTYPE_ETHERNET, frame)
    assert (claimed.status, claimed.src_v4, claimed.l4_offset, claimed.src_port) == (
        S.BAD_IP_TOTAL_LENGTH,
        0x0A000001,
        -1,
        0,
    )
    snapped = one(LINKTYPE_ETHERNET, frame, wire=14 + 140)
    assert (snapped.status, snapped.src_port, snapped.payload_length) == (
        S.TRUNCATED_PAYLOAD,
        50000,
        len(MODBUS),
    )


def test_ip_header_lengths() -> None:
    short = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(), ihl=4)))
    assert (short.status, short.src_v4, short.ip_options, short.l4_offset) == (
        S.BAD_IP_HEADER_LENGTH,
        0x0A000001,
        False,
        -1,
    )
    shorter_total = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(), total=19)))
    assert shorter_total.status == S.BAD_IP_TOTAL_LENGTH
    options = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(), options=bytes(40))))
    assert (options.status, options.ip_options, options.l4_offset) == (S.OK, True, 14 + 60)
    version = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(), version=6)))
    assert (version.status, version.ip_version, version.l3_offset) == (S.BAD_IP_VERSION, 0, 14)
    assert one(LINKTYPE_RAW, b"\x50" + bytes(30)).status == S.BAD_IP_VERSION


def test_tcp_header_lengths() -> None:
    short = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(MODBUS, words=4))))
    assert (short.status, short.src_port, short.tcp_header_length, short.payload_offset) == (
        S.BAD_TCP_HEADER_LENGTH,
        50000,
        16,
        -1,
    )
    long = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(MODBUS, words=15))))
    assert long.status == S.BAD_TCP_HEADER_LENGTH
    cut = one(LINKTYPE_ETHERNET, ethernet(ipv4(tcp(), total=20 + 12)))
    assert (cut.status, cut.src_port) == (S.BAD_TCP_HEADER_LENGTH, 0)


def test_udp_lengths() -> None:
    assert one(LINKTYPE_ETHERNET, ethernet(ipv4(udp(b"abc", length=7), 17))).status == S.BAD_UDP_LENGTH
    assert one(LINKTYPE_ETHERNET, ethernet(ipv4(udp(b"abc", length=12), 17))).status == S.BAD_UDP_LENGTH
    inside = one(LINKTYPE_ETHERNET, ethernet(ipv4(udp(b"abc", length=10), 17)))
    assert (inside.status, inside.udp_length, inside.payload_length) == (S.OK, 10, 2)


def test_ethernet_padding_is_not_payload() -> None:
    frame = ethernet(ipv4(tcp(b"x"))) + bytes(5)
    row = one(LINKTYPE_ETHERNET, frame)
    assert (row.status, row.payload_length) == (S.OK, 1)
    assert frame[row.payload_offset : row.payload_offset + row.payload_length] == b"x"


def test_ipv4_fragments() -> None:
    first = one(LINKTYPE_ETHERNET, ethernet(ipv4(udp(b"0123", length=100), 17, flags_offset=0x2000)))
    assert (first.status, first.fragment, first.fragment_offset, first.src_port, first.payload_length) == (
        S.FRAGMENT,
        True,
        0,
        40000,
        4,
    )
    later = one(LINKTYPE_ETHERNET, ethernet(ipv4(b"later", 17, flags_offset=0x0003)))
    assert (later.status, later.fragment, later.fragment_offset, later.l4_offset, later.src_port) == (
        S.FRAGMENT,
        True,
        24,
        -1,
        0,
    )
    whole = one(LINKTYPE_ETHERNET, ethernet(TCP_PACKET))
    assert not whole.fragment and whole.dont_fragment


def test_ipv6_extension_headers_and_fragments() -> None:
    frame = ethernet(ipv6(tcp(MODBUS), 0, extensions=extension(60) + extension(6, 1)), 0x86DD)
    row = one(LINKTYPE_ETHERNET, frame)
    assert (row.status, row.ip_version, row.ip_proto, row.ip_options, row.ttl) == (S.OK, 6, 6, True, 57)
    assert (row.l4_offset, row.src_port, row.payload_length) == (14 + 40 + 8 + 16, 50000, len(MODBUS))
    assert row.src_addr == ipaddress.IPv6Address("2001:db8::1").packed and row.src_v4 == 0
    first = one(LINKTYPE_ETHERNET, ethernet(ipv6(tcp(), 44, extensions=fragment_header(6, 0, True)), 0x86DD))
    assert (first.status, first.fragment, first.ip_id, first.src_port) == (S.FRAGMENT, True, 0xCAFE, 50000)
    later = one(
        LINKTYPE_ETHERNET, ethernet(ipv6(b"more", 44, extensions=fragment_header(6, 1480, False)), 0x86DD)
    )
    assert (later.status, later.fragment_offset, later.ip_proto, later.l4_offset) == (S.FRAGMENT, 1480, 6, -1)
    atomic = one(
        LINKTYPE_ETHERNET, ethernet(ipv6(tcp(), 44, extensions=fragment_header(6, 0, False)), 0x86DD)
    )
    assert (atomic.status, atomic.fragment, atomic.src_port) == (S.OK, False, 50000)


def test_bad_ipv6_extension_chains() -> None:
    past_payload = ethernet(ipv6(b"", 0, extensions=extension(6, 3), plen=16), 0x86DD)
    assert one(LINKTYPE_ETHERNET, past_payload, wire=200).status == S.BAD_IP_HEADER_LENGTH
    chain = b"".join(extension(60) for _ in range(9)) + tcp()
    too_long = one(LINKTYPE_ETHERNET, ethernet(ipv6(chain, 60), 0x86DD))
    assert (too_long.status, too_long.ip_proto, too_long.l4_offset) == (S.BAD_IP_HEADER_LENGTH, 60, -1)
    eight = b"".join(extension(60) for _ in range(7)) + extension(6) + tcp()
    assert one(LINKTYPE_ETHERNET, ethernet(ipv6(eight, 60), 0x86DD)).status == S.OK


def test_every_single_byte_mutation_of_every_sample_agrees() -> None:
    """Each header byte of each sample set to values that matter (lengths, versions, tag types)."""
    values = (0x00, 0x01, 0x05, 0x06, 0x0F, 0x11, 0x2C, 0x3C, 0x45, 0x60, 0x81, 0x88, 0xA8, 0xFF)
    packets, wire = [], []
    for _, linktype, frame in SAMPLES:
        for position in range(min(len(frame), 90)):
            for value in values:
                mutated = frame[:position] + bytes([value]) + frame[position + 1 :]
                packets.append((linktype, mutated))
                wire.append(len(frame) + value % 3 * 20)
    layers = assert_twins_agree(batch_of(packets, wire))
    reached = set(layers.status_counts())
    assert {
        S.BAD_IP_VERSION,
        S.BAD_IP_HEADER_LENGTH,
        S.BAD_IP_TOTAL_LENGTH,
        S.BAD_TCP_HEADER_LENGTH,
    } <= reached
    assert {S.BAD_UDP_LENGTH, S.FRAGMENT, S.TRUNCATED_PAYLOAD, S.NOT_IP} <= reached, reached


# ---------------------------------------------------------------------------------------------
# Random batches (hypothesis): the twins agree, and the vectorised decoder never raises

LINKTYPES = [
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_NULL,
    147,
]


@st.composite
def hostile_packets(draw: st.DrawFn) -> tuple[int, bytes, int, bytes]:
    """(linktype, frame, wire length, garbage before it): random bytes or a mutated sample."""
    if draw(st.booleans()):
        linktype, frame = draw(st.sampled_from(LINKTYPES)), draw(st.binary(max_size=120))
    else:
        _, linktype, frame = draw(st.sampled_from(SAMPLES))
        edits = draw(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 255)), max_size=4))
        for position, value in edits:
            if position < len(frame):
                frame = frame[:position] + bytes([value]) + frame[position + 1 :]
        frame = frame[: draw(st.integers(0, len(frame)))] if draw(st.booleans()) else frame
    return linktype, frame, len(frame) + draw(st.integers(0, 64)), draw(st.binary(max_size=8))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_packets(), max_size=8))
def test_random_batches_agree_with_the_exact_decoder(packets: list[tuple[int, bytes, int, bytes]]) -> None:
    batch = batch_of([(p[0], p[1]) for p in packets], [p[2] for p in packets], [p[3] for p in packets])
    assert_twins_agree(batch)


@settings(max_examples=50, deadline=None)
@given(
    st.binary(max_size=64),
    st.lists(st.tuples(st.integers(-100, 100), st.integers(-10, 100)), min_size=1, max_size=6),
)
def test_offsets_outside_the_buffer_never_raise(buffer: bytes, spans: list[tuple[int, int]]) -> None:
    batch = PacketBatch(
        buffer=np.frombuffer(buffer, dtype=np.uint8),
        offsets=np.array([start for start, _ in spans], dtype=np.int64),
        lengths=np.array([length for _, length in spans], dtype=np.int32),
        wire_lengths=np.zeros(len(spans), dtype=np.int32),
        ts_ns=np.zeros(len(spans), dtype=np.int64),
        linktypes=np.full(len(spans), LINKTYPE_ETHERNET, dtype=np.uint16),
        interfaces=np.zeros(len(spans), dtype=np.uint16),
    )
    layers = decode_layers(batch)
    assert len(layers) == len(spans)


# ---------------------------------------------------------------------------------------------
# tshark as the oracle

TSHARK_FIELDS = (
    "frame.protocols", "eth.type", "eth.len", "eth.src", "eth.dst", "sll.etype", "sll.src.eth",
    "null.family", "vlan.id", "vlan.etype", "ieee8021ad.id",
    "ip.version", "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "ip.flags.df", "ip.flags.mf",
    "ip.frag_offset", "ip.len", "ip.hdr_len",
    "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.plen", "ipv6.nxt", "ipv6.hopopts.nxt",
    "ipv6.routing.nxt", "ipv6.dstopts.nxt", "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags",
    "tcp.window_size_value", "tcp.hdr_len", "tcp.len", "udp.srcport", "udp.dstport", "udp.length",
)  # fmt: skip
IPV6_EXTENSIONS = {"ipv6.hopopts": "ipv6.hopopts.nxt", "ipv6.routing": "ipv6.routing.nxt",
                   "ipv6.dstopts": "ipv6.dstopts.nxt", "ipv6.fraghdr": "ipv6.fraghdr.nxt"}  # fmt: skip
MAPPED = bytes(10) + b"\xff\xff"


def tshark_rows(capture: Path) -> list[dict[str, list[str]]]:
    """Every frame's fields, each as the list of its occurrences; no reassembly of IP fragments."""
    command = [tshark(), "-n", "-r", str(capture), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
    command += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    rows = []
    for line in result.stdout.splitlines():
        cells = line.split("\t")
        rows.append(
            {name: [v for v in cell.split("|") if v] for name, cell in zip(TSHARK_FIELDS, cells, strict=True)}
        )
    return rows


def number(value: str) -> int:
    return int(value, 0) if value.startswith("0x") else int(value)


def mac(value: str) -> int:
    return int(value.replace(":", ""), 16)


def expected_link(row: dict[str, list[str]]) -> dict[str, Any]:
    expect: dict[str, Any] = {}
    first = {name: values[0] for name, values in row.items() if values}
    tags = row["ieee8021ad.id"] + row["vlan.id"]
    if "eth.src" in first:
        expect |= {"src_mac": mac(first["eth.src"]), "dst_mac": mac(first["eth.dst"])}
    elif "sll.src.eth" in first:
        expect |= {"src_mac": mac(first["sll.src.eth"]), "dst_mac": 0}
    if "eth.src" in first or "sll.etype" in first:
        expect |= {"vlan_count": len(tags), "vlan_outer": number(tags[0]) if tags else -1}
        expect["vlan_inner"] = number(tags[-1]) if len(tags) > 1 else -1
    if row["vlan.etype"]:
        expect["ethertype"] = number(row["vlan.etype"][-1])
    elif not row["ieee8021ad.id"]:  # after a lone 802.1ad tag tshark has no EtherType field
        for name in ("eth.type", "eth.len", "sll.etype"):
            if name in first:
                expect["ethertype"] = number(first[name])
                break
    if "null.family" in first:
        family = number(first["null.family"])
        expect["ethertype"] = 0x0800 if family == 2 else 0x86DD if family in (24, 28, 30) else 0
    return expect


def present(first: dict[str, str], wanted: dict[str, str]) -> dict[str, int]:
    """Our column -> tshark's value as a number, for the tshark fields this frame has."""
    return {column: number(first[name]) for column, name in wanted.items() if name in first}


def expected_ip(row: dict[str, list[str]]) -> dict[str, Any]:
    """The first IP layer's columns (later ones are inside ICMP errors or tunnels)."""
    layers = row["frame.protocols"][0].split(":")
    network = next((layer for layer in layers if layer in ("ip", "ipv6")), None)
    first = {name: values[0] for name, values in row.items() if values}
    if network == "ip":
        return _expected_ipv4(first)
    if network == "ipv6":
        return _expected_ipv6(row, first, layers)
    return {"ip_version": 0}


def _expected_ipv4(first: dict[str, str]) -> dict[str, Any]:
    expect: dict[str, Any] = present(first, {
        "ip_version": "ip.version", "ip_proto": "ip.proto", "ttl": "ip.ttl", "ip_id": "ip.id",
        "ip_total_length": "ip.len",
    })  # fmt: skip
    if "ip.frag_offset" in first:  # tshark gives it in units of 8 bytes, we in bytes
        expect["fragment_offset"] = number(first["ip.frag_offset"]) * 8
    for column, name in (("src", "ip.src"), ("dst", "ip.dst")):
        if name in first:
            address = ipaddress.IPv4Address(first[name])
            expect |= {f"{column}_v4": int(address), f"{column}_addr": MAPPED + address.packed}
    if "ip.flags.df" in first:
        expect["dont_fragment"] = first["ip.flags.df"] == "1"
        expect["fragment"] = first["ip.flags.mf"] == "1" or expect["fragment_offset"] > 0
    if "ip.hdr_len" in first:
        expect["ip_options"] = number(first["ip.hdr_len"]) > 20
    return expect


def _expected_ipv6(row: dict[str, list[str]], first: dict[str, str], layers: list[str]) -> dict[str, Any]:
    expect: dict[str, Any] = {"ip_version": 6} | present(first, {"ttl": "ipv6.hlim", "ip_proto": "ipv6.nxt"})
    for column, name in (("src_addr", "ipv6.src"), ("dst_addr", "ipv6.dst")):
        if name in first:
            expect[column] = ipaddress.IPv6Address(first[name]).packed
    if "ipv6.plen" in first:
        expect["ip_total_length"] = 40 + number(first["ipv6.plen"])
    walked = [layer for layer in layers if layer in IPV6_EXTENSIONS]
    seen: Counter[str] = Counter()
    for layer in walked:
        expect["ip_proto"] = number(row[IPV6_EXTENSIONS[layer]][seen[layer]])
        seen[layer] += 1
    expect["ip_options"] = bool(walked)
    if "ipv6.fraghdr.offset" in first:
        offset = number(first["ipv6.fraghdr.offset"]) * 8
        expect |= {"fragment_offset": offset, "ip_id": number(first["ipv6.fraghdr.ident"])}
        expect["fragment"] = first["ipv6.fraghdr.more"] == "1" or offset > 0
    return expect


def expected_transport(row: dict[str, list[str]], proto: int | None) -> dict[str, Any]:
    """TCP/UDP columns when the first IP layer carries them (tshark also shows those inside ICMP)."""
    first = {name: values[0] for name, values in row.items() if values}
    if proto == 6 and "tcp.srcport" in first:
        return present(first, {
            "src_port": "tcp.srcport", "dst_port": "tcp.dstport", "tcp_seq": "tcp.seq_raw",
            "tcp_ack": "tcp.ack_raw", "tcp_flags": "tcp.flags", "tcp_window": "tcp.window_size_value",
            "tcp_header_length": "tcp.hdr_len", "payload_length": "tcp.len",
        })  # fmt: skip
    if proto == 17 and "udp.srcport" in first:
        expect = present(
            first, {"src_port": "udp.srcport", "dst_port": "udp.dstport", "udp_length": "udp.length"}
        )
        if "udp_length" in expect:
            expect["payload_length"] = expect["udp_length"] - 8
        return expect
    return {"src_port": 0, "dst_port": 0}


TRANSPORT_COLUMNS = (
    *("src_port", "dst_port", "tcp_seq", "tcp_ack", "tcp_flags", "tcp_window"),
    *("tcp_header_length", "udp_length", "payload_length"),
)


def accepted_difference(ours: PacketLayers, column: str, theirs: Any, captured_end: int) -> str | None:
    """Why a difference from tshark is by design, or None. Each reason is a documented choice."""
    transport = column in TRANSPORT_COLUMNS
    if ours.status == S.BAD_IP_TOTAL_LENGTH and transport:
        # The IP total length claims more than the frame had on the wire: we stop at IP (the
        # packet is malformed and its payload bounds unknown), tshark decodes on.
        return "bad IP total length: transport not decoded"
    if ours.status == S.BAD_IP_VERSION and column == "ip_version":
        # tshark shows the bogus version nibble; ours is 0: the header is not IP of any version.
        return "bad IP version: ip_version 0"
    fixed = 20 if ours.ip_proto == 6 else 8
    if transport and ours.l4_offset >= 0 and ours.l4_offset + fixed > captured_end:
        # tshark shows the fields of a partly captured header; ours leaves a layer whose fixed
        # header is not all there empty (a column is either right or empty, never half-read).
        return "partly captured transport header: empty"
    if column == "payload_length" and ours.payload_length < theirs:
        if ours.status == S.TRUNCATED_PAYLOAD:
            # tshark's tcp.len / udp.length count the bytes the snap length cut off; ours what was captured.
            return "snapped payload: captured bytes only"
        if ours.status == S.FRAGMENT and ours.ip_proto == 17:
            # A first fragment's UDP length is the whole datagram's; our payload is this fragment's part.
            return "first fragment: the fragment's payload"
    return None


def compare_with_tshark(
    batch: PacketBatch, rows: list[dict[str, list[str]]]
) -> tuple[Layers, list[Any], Counter[str]]:
    """Our decode of `batch` (the twins agreeing) against tshark's: the unaccepted differences, and
    how often each accepted one occurred."""
    layers = assert_twins_agree(batch)
    assert len(rows) == len(layers)
    differences: list[Any] = []
    accepted: Counter[str] = Counter()
    ends = (batch.offsets + batch.lengths).tolist()
    for index, row in enumerate(rows):
        ours = layers.row(index)
        expect = expectations(row)
        for column, theirs in expect.items():
            mine = getattr(ours, column)
            if mine == theirs:
                continue
            reason = accepted_difference(ours, column, theirs, ends[index])
            if reason is None:
                differences.append((index + 1, column, mine, theirs, LayerStatus(ours.status).name))
            else:
                accepted[reason] += 1
    return layers, differences, accepted


def read_capture(path: Path) -> PacketBatch | None:
    """A little test-only reader: classic pcap (either byte order) and pcapng (EPB, SPB, PB)."""
    data = path.read_bytes()
    packets = list(_pcap_records(data) if data[:4] in PCAP_MAGICS else _pcapng_records(data))
    if data[:4] not in PCAP_MAGICS and data[:4] != b"\x0a\x0d\x0d\x0a":
        return None
    batch = batch_of([(linktype, frame) for linktype, frame, _ in packets], [wire for _, _, wire in packets])
    return batch


PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}


def _pcap_records(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    order = PCAP_MAGICS[data[:4]]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    position = 24
    while position + 16 <= len(data):
        captured, wire = struct.unpack_from(order + "II", data, position + 8)
        yield linktype, data[position + 16 : position + 16 + captured], wire
        position += 16 + captured


def _pcapng_records(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    position, order, interfaces = 0, "<", list[int]()
    while position + 12 <= len(data):
        kind = struct.unpack_from("<I", data, position)[0]
        if kind == 0x0A0D0D0A:
            order, interfaces = (
                ("<" if data[position + 8 : position + 12] == b"\x4d\x3c\x2b\x1a" else ">"),
                [],
            )
        length = struct.unpack_from(order + "I", data, position + 4)[0]
        body = data[position + 8 : position + length - 4]
        if kind == 1:
            interfaces.append(struct.unpack_from(order + "H", body)[0])
        elif kind in (2, 6):  # (obsolete) packet block, enhanced packet block
            interface = struct.unpack_from(order + ("H" if kind == 2 else "I"), body)[0]
            captured, wire = struct.unpack_from(order + "II", body, 12)
            yield interfaces[interface], body[20 : 20 + captured], wire
        elif kind == 3:  # simple packet block
            wire = struct.unpack_from(order + "I", body)[0]
            yield interfaces[0], body[4 : 4 + min(wire, len(body) - 4)], wire
        position += length


def write_pcap(path: Path, linktype: int, frames: list[bytes], wire: list[int] | None = None) -> None:
    records = b"".join(
        struct.pack("<IIII", 0, 0, len(frame), max(len(frame), (wire or [0] * len(frames))[i])) + frame
        for i, frame in enumerate(frames)
    )
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype) + records)


@pytest.fixture(scope="module")
def generated_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    output = folder / "plant.pcapng"
    command = ("sim", "generate", "--seed", "3", "--packets", "20000", "--attacks", "all", str(output))
    result = plantwarden(*command, cwd=folder, timeout=120)
    assert result.returncode == 0, result.stderr
    return output


@pytest.mark.slow
def test_a_generated_capture_agrees_with_tshark(generated_capture: Path) -> None:
    batch = read_capture(generated_capture)
    assert batch is not None and len(batch) == 20000
    layers, differences, accepted = compare_with_tshark(batch, tshark_rows(generated_capture))
    assert differences == []
    assert accepted == Counter()
    counts = layers.status_counts()
    # The generator's traffic: tagged, double-tagged, IP options, ARP, UDP and TCP.
    assert counts[S.OK] > 19000 and counts[S.NOT_IP] > 0
    assert (layers.vlan_count == 2).any() and layers.ip_options.any() and (layers.ip_proto == 17).any()


def dataset_captures() -> list[Path]:
    if not DATASETS.is_dir():
        return []
    return sorted(path for path in DATASETS.rglob("*") if path.suffix in (".pcap", ".pcapng"))


NO_DATASETS = f"no shared captures at {DATASETS} (the datasets folder lies outside the repository)"
# fuzz-1011.pcap: one frame with IP version 2; fuzz-72.pcap: two frames whose IP total length runs
# past the frame. Nothing else in the datasets differs from tshark.
DATASET_DIFFERENCES = {"bad IP total length: transport not decoded", "bad IP version: ip_version 0"}


@pytest.fixture(scope="module")
def tshark_of_datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[dict[str, list[str]]]]:
    """tshark's rows of every readable dataset capture, from one tshark run over all of them.

    tshark takes about half a second to start, and most of the 178 captures are small: one run over
    the captures concatenated (mergecap, Wireshark's own tool) takes 19 s where one run each took
    146. Concatenated, tshark carries TCP conversations from one file into the next, which changes
    only the application layers it names in `frame.protocols` (after TCP), none of which we read;
    `test_one_tshark_run_over_the_datasets_reads_as_runs_of_each` holds that on two captures.
    """
    readable = [capture for capture in dataset_captures() if read_capture(capture) is not None]
    merged = tmp_path_factory.mktemp("datasets") / "all.pcapng"
    mergecap = [str(Path(tshark()).with_name("mergecap")), "-a", "-F", "pcapng", "-w", str(merged)]
    merging = subprocess.run([*mergecap, *map(str, readable)], capture_output=True, timeout=300, check=False)
    if merging.returncode != 0:
        return {}  # each capture is then read alone, and its own test names what tshark refused
    rows = tshark_rows(merged)
    split, position = {}, 0
    for capture in readable:
        batch = read_capture(capture)
        assert batch is not None
        split[capture] = rows[position : position + len(batch)]
        position += len(batch)
    if position != len(rows):
        return {}  # a capture whose frames tshark counts otherwise: its own test says which
    return split


def expectations(row: dict[str, list[str]]) -> dict[str, Any]:
    expect = expected_link(row) | expected_ip(row)
    return expect | expected_transport(row, expect.get("ip_proto"))


def test_one_tshark_run_over_the_datasets_reads_as_runs_of_each(
    tshark_of_datasets: dict[Path, list[dict[str, list[str]]]],
) -> None:
    # Two IEC 104 captures after other TCP traffic: their frame.protocols differ after "tcp" when
    # merged (the conversation was carried over), and what we compare does not.
    if not dataset_captures():
        pytest.skip(NO_DATASETS)
    assert tshark_of_datasets, "mergecap or tshark could not read the captures as one"
    chosen = [path for path in tshark_of_datasets if path.name in ("C-0.01-0.pcap", "enip_test.pcap")]
    for capture in chosen:
        alone, merged = tshark_rows(capture), tshark_of_datasets[capture]
        assert [expectations(row) for row in alone] == [expectations(row) for row in merged]


@pytest.mark.slow
@pytest.mark.parametrize("capture", dataset_captures(), ids=lambda path: str(path.relative_to(DATASETS)))
def test_every_dataset_capture_agrees_with_tshark(
    capture: Path, tshark_of_datasets: dict[Path, list[dict[str, list[str]]]]
) -> None:
    batch = read_capture(capture)
    if batch is None:
        pytest.skip(f"{capture.name} is neither pcap nor pcapng")
    rows = tshark_of_datasets[capture] if capture in tshark_of_datasets else tshark_rows(capture)
    _, differences, accepted = compare_with_tshark(batch, rows)
    assert differences == []
    assert set(accepted) <= DATASET_DIFFERENCES


def test_the_datasets_cover_ethernet_cooked_and_loopback_links() -> None:
    captures = dataset_captures()
    if not captures:
        pytest.skip(NO_DATASETS)
    batches = [read_capture(capture) for capture in captures]
    unreadable = [capture.name for capture, batch in zip(captures, batches, strict=True) if batch is None]
    assert unreadable == []
    linktypes = {int(kind) for batch in batches if batch is not None for kind in np.unique(batch.linktypes)}
    assert {LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_NULL} <= linktypes
    layers = [decode_layers(batch) for batch in batches if batch is not None]
    assert any((rows.ip_version == 6).any() for rows in layers)


@pytest.mark.parametrize("linktype", sorted({linktype for _, linktype, _ in SAMPLES}))
def test_hand_made_frames_agree_with_tshark(linktype: int, tmp_path: Path) -> None:
    frames = [frame for _, kind, frame in SAMPLES if kind == linktype]
    # A snapped copy of each (captured short of what the wire carried) and a truncated one.
    packets = frames + [frame[: len(frame) - 3] for frame in frames]
    wire = [len(frame) for frame in frames] * 2
    capture = tmp_path / "hand-made.pcap"
    write_pcap(capture, linktype, packets, wire)
    batch = read_capture(capture)
    assert batch is not None
    _, differences, accepted = compare_with_tshark(batch, tshark_rows(capture))
    assert differences == []
    assert set(accepted) <= {
        "partly captured transport header: empty", "snapped payload: captured bytes only",
        "first fragment: the fragment's payload",
    }  # fmt: skip


def test_the_row_class_and_the_column_table_agree() -> None:
    assert [f.name for f in fields(PacketLayers)] == list(COLUMNS)
    row = Layers.empty(1).row(0)
    assert row == PacketLayers() and len(row.src_addr) == 16
