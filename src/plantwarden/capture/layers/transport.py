"""The transport layer, vectorised: TCP and UDP headers, and where their payload lies."""

from __future__ import annotations

import numpy as np

from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP, LayerStatus
from plantwarden.capture.layers.gather import U32
from plantwarden.capture.layers.state import Decoding, Int32, Mask, Rows


def decode_transport(work: Decoding) -> None:
    """Fill the TCP and UDP columns and the payload of the packets that got past IP."""
    out = work.out
    tcp = work.alive & (out.ip_proto == PROTO_TCP)
    udp = work.alive & (out.ip_proto == PROTO_UDP)
    carried = tcp | udp
    if not carried.any():
        work.flag(work.captured < work.ip_end, LayerStatus.TRUNCATED_PAYLOAD)
        return
    available = work.captured - work.l4
    # 16 bytes: TCP's ports, numbers, offset, flags and window; UDP needs 8.
    words = work.words_at(work.l4, 4 if tcp.any() else 2, carried)
    payload = work.l4 + 8  # UDP's; TCP's below
    data_end = work.ip_end
    if tcp.any():
        payload = _decode_tcp(work, words, tcp, available)
    if udp.any():
        data_end = _decode_udp(work, words, udp, available, payload)
    work.flag(work.captured < data_end, LayerStatus.TRUNCATED_PAYLOAD)
    carried &= work.alive
    if carried.any():
        where = Rows(carried)
        work.fill("payload_offset", where, work.starts + payload)
        work.fill("payload_length", where, np.minimum(data_end, work.captured) - payload)


def _header_checks(work: Decoding, which: Mask, size: int, status: LayerStatus, available: Int32) -> Mask:
    """Stop the packets whose fixed header is past the IP packet (`status`) or the capture."""
    work.fail(which & (work.ip_end - work.l4 < size), status)
    work.fail(which & (available < size), LayerStatus.TRUNCATED_TRANSPORT)
    return which & work.alive


def _decode_tcp(work: Decoding, words: U32, tcp: Mask, available: Int32) -> Int32:
    """TCP's header; returns where each packet's TCP payload starts (its header's end)."""
    tcp = _header_checks(work, tcp, 20, LayerStatus.BAD_TCP_HEADER_LENGTH, available)
    where = Rows(tcp)
    ports, sequence, acknowledgement, offset_flags_window = words[:4]
    header_length = ((offset_flags_window >> 26) & 0x3C).view(np.int32)  # data offset * 4
    work.fill("src_port", where, ports >> 16)
    work.fill("dst_port", where, ports & 0xFFFF)
    work.fill("tcp_seq", where, sequence)
    work.fill("tcp_ack", where, acknowledgement)
    work.fill("tcp_flags", where, (offset_flags_window >> 16) & 0x0FFF)
    work.fill("tcp_window", where, offset_flags_window & 0xFFFF)
    work.fill("tcp_header_length", where, header_length)
    end: Int32 = work.l4 + header_length
    work.fail(tcp & ((header_length < 20) | (end > work.ip_end)), LayerStatus.BAD_TCP_HEADER_LENGTH)
    work.fail(tcp & (end > work.captured), LayerStatus.TRUNCATED_TRANSPORT)
    return end


def _decode_udp(work: Decoding, words: U32, udp: Mask, available: Int32, payload: Int32) -> Int32:
    """UDP's header; returns where each packet's data ends, the UDP length taken into account.

    UDP is read for its packets alone (a minority on a plant network), and sets their payload
    start (8 bytes in) in `payload`.
    """
    packets = np.flatnonzero(udp)
    start, ip_end = work.l4[packets], work.ip_end[packets]
    work.fail_at(packets[ip_end - start < 8], LayerStatus.BAD_UDP_LENGTH)
    work.fail_at(packets[available[packets] < 8], LayerStatus.TRUNCATED_TRANSPORT)
    alive = work.alive[packets]
    packets, start, ip_end = packets[alive], start[alive], ip_end[alive]
    ports, length = words[0][packets], (words[1][packets] >> 16).view(np.int32)
    work.fill_at("src_port", packets, ports >> 16)
    work.fill_at("dst_port", packets, ports & 0xFFFF)
    work.fill_at("udp_length", packets, length)
    end = start + length
    past_ip = (end > ip_end) & ~work.out.fragment[packets]
    bad = (length < 8) | past_ip
    work.fail_at(packets[bad], LayerStatus.BAD_UDP_LENGTH)
    packets, start, end, ip_end = packets[~bad], start[~bad], end[~bad], ip_end[~bad]
    payload[packets] = start + 8
    data_end = work.ip_end.copy()
    data_end[packets] = np.minimum(end, ip_end)
    return data_end
