"""A small test-only capture reader: pcap or pcapng, Ethernet (802.1Q too), IPv4, TCP payloads.

Just enough to lift the Modbus/TCP payloads out of the shared captures for the decoder tests; the
product's capture layer is elsewhere.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ETHERNET, IPV4, VLAN, TCP = 1, 0x0800, 0x8100, 6


class Segment(NamedTuple):
    frame: int
    """1-based, as tshark counts."""
    source: tuple[bytes, int]
    destination: tuple[bytes, int]
    sequence: int
    payload: bytes


def frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """(link type, frame bytes) for each frame of a pcap or pcapng file."""
    data = path.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(data)
    else:
        yield from _pcap(data)


def _pcap(data: bytes) -> Iterator[tuple[int, bytes]]:
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    at = 24
    while at + 16 <= len(data):
        captured = struct.unpack_from(order + "I", data, at + 8)[0]
        yield link, data[at + 16 : at + 16 + captured]
        at += 16 + captured


def _pcapng(data: bytes) -> Iterator[tuple[int, bytes]]:
    order, links, at = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">", [], 0
    while at + 12 <= len(data):
        kind, size = struct.unpack_from(order + "II", data, at)
        if kind == 1:
            links.append(struct.unpack_from(order + "H", data, at + 8)[0])
        elif kind == 6:
            interface, _, _, captured = struct.unpack_from(order + "IIII", data, at + 8)
            yield links[interface], data[at + 28 : at + 28 + captured]
        at += max(size, 12)


def tcp_segments(path: Path) -> Iterator[Segment]:
    """Every IPv4 TCP segment with a payload, over Ethernet."""
    for number, (link, frame) in enumerate(frames(path), start=1):
        segment = _tcp(number, frame) if link == ETHERNET else None
        if segment is not None:
            yield segment


def _tcp(number: int, frame: bytes) -> Segment | None:
    at, kind = 14, struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else 0
    while kind == VLAN and len(frame) >= at + 4:
        kind, at = struct.unpack_from(">H", frame, at + 2)[0], at + 4
    if kind != IPV4 or len(frame) < at + 20 or frame[at + 9] != TCP:
        return None
    total, header = struct.unpack_from(">H", frame, at + 2)[0], (frame[at] & 0x0F) * 4
    source, destination = frame[at + 12 : at + 16], frame[at + 16 : at + 20]
    tcp = frame[at + header : at + total]
    if len(tcp) < 20:
        return None
    sport, dport, sequence = struct.unpack_from(">HHI", tcp)
    payload = tcp[(tcp[12] >> 4) * 4 :]
    return Segment(number, (source, sport), (destination, dport), sequence, payload) if payload else None
