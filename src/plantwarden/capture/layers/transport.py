"""The transport layer, vectorised: TCP and UDP headers, and where their payload lies."""

from __future__ import annotations

import numpy as np

from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP, LayerStatus
from plantwarden.capture.layers.gather import Bytes, Int64, fill, header_rows, u16, u32
from plantwarden.capture.layers.state import Decoding, Mask


def decode_transport(work: Decoding) -> None:
    """Fill the TCP and UDP columns and the payload of the packets that got past IP."""
    out = work.out
    start = out.l4_offset
    tcp = work.alive & (out.ip_proto == PROTO_TCP)
    udp = work.alive & (out.ip_proto == PROTO_UDP)
    data_end = work.ip_end.copy()
    if (tcp | udp).any():
        available = np.where(tcp | udp, work.capture_end - start, 0)
        rows = header_rows(work.batch.buffer, start, available, 20 if tcp.any() else 8)
        if tcp.any():
            _decode_tcp(work, rows, tcp)
        if udp.any():
            data_end = _decode_udp(work, rows, udp, data_end)
    work.flag(work.capture_end < data_end, LayerStatus.TRUNCATED_PAYLOAD)
    carried = work.alive & (tcp | udp)
    fill(out.payload_offset, carried, start + np.where(tcp, out.tcp_header_length, 8))
    end = np.minimum(data_end, work.capture_end)
    fill(out.payload_length, carried, end - out.payload_offset)


def _header_checks(work: Decoding, which: Mask, size: int, status: LayerStatus) -> Mask:
    """Stop the packets whose fixed header is past the IP packet (`status`) or the capture."""
    start = work.out.l4_offset
    work.fail(which & (work.ip_end - start < size), status)
    work.fail(which & (work.capture_end - start < size), LayerStatus.TRUNCATED_TRANSPORT)
    return which & work.alive


def _decode_tcp(work: Decoding, rows: Bytes, tcp: Mask) -> None:
    out = work.out
    tcp = _header_checks(work, tcp, 20, LayerStatus.BAD_TCP_HEADER_LENGTH)
    header_length = (rows[:, 12] >> 4).astype(np.int64) * 4
    _fill_ports(work, rows, tcp)
    for name, values in (
        ("tcp_seq", u32(rows, 4)),
        ("tcp_ack", u32(rows, 8)),
        ("tcp_flags", u16(rows, 12) & 0x0FFF),
        ("tcp_window", u16(rows, 14)),
        ("tcp_header_length", header_length),
    ):
        fill(getattr(out, name), tcp, values)
    end = out.l4_offset + header_length
    work.fail(tcp & ((header_length < 20) | (end > work.ip_end)), LayerStatus.BAD_TCP_HEADER_LENGTH)
    work.fail(tcp & (end > work.capture_end), LayerStatus.TRUNCATED_TRANSPORT)


def _fill_ports(work: Decoding, rows: Bytes, which: Mask) -> None:
    fill(work.out.src_port, which, u16(rows, 0))
    fill(work.out.dst_port, which, u16(rows, 2))


def _decode_udp(work: Decoding, rows: Bytes, udp: Mask, data_end: Int64) -> Int64:
    """UDP's header; returns where each packet's data ends, the UDP length taken into account."""
    out = work.out
    udp = _header_checks(work, udp, 8, LayerStatus.BAD_UDP_LENGTH)
    length = u16(rows, 4)
    _fill_ports(work, rows, udp)
    fill(out.udp_length, udp, length)
    end = out.l4_offset + length
    past_ip = end > work.ip_end
    work.fail(udp & ((length < 8) | (past_ip & ~out.fragment)), LayerStatus.BAD_UDP_LENGTH)
    return np.where(udp & work.alive, np.minimum(end, work.ip_end), data_end)
