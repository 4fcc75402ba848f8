"""The network layer, vectorised: IPv4 and IPv6 with its common extension headers.

Sets `ip_end` (the end of the IP packet) and `l4_offset` for the packets still alive after it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.capture.layers.columns import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPV6_EXTENSION_HEADERS,
    IPV6_FRAGMENT,
    MAX_IPV6_EXTENSION_HEADERS,
    LayerStatus,
)
from plantwarden.capture.layers.gather import Bytes, Int64, fill, header_rows, u16, u32
from plantwarden.capture.layers.state import Decoding, Mask
from plantwarden.core.records.schema import ADDRESS_DTYPE, ipv4_addresses


def decode_network(work: Decoding) -> None:
    """Fill the IP columns; packets that are not IP stop here as `NOT_IP`."""
    out = work.out
    ipv4 = work.alive & (out.ethertype == ETHERTYPE_IPV4)
    ipv6 = work.alive & (out.ethertype == ETHERTYPE_IPV6)
    work.fail(~(ipv4 | ipv6), LayerStatus.NOT_IP)
    if not work.alive.any():
        return
    start = out.l3_offset
    available = np.where(work.alive, work.capture_end - start, 0)
    rows = header_rows(work.batch.buffer, start, available, 40 if ipv6.any() else 20)
    version = rows[:, 0] >> 4
    work.fail(available < 1, LayerStatus.TRUNCATED_IP)
    work.fail((ipv4 & (version != 4)) | (ipv6 & (version != 6)), LayerStatus.BAD_IP_VERSION)
    work.fail(ipv4 & (available < 20), LayerStatus.TRUNCATED_IP)
    work.fail(ipv6 & (available < 40), LayerStatus.TRUNCATED_IP)
    if (work.alive & ipv4).any():
        _decode_ipv4(work, rows, work.alive & ipv4, available)
    if (work.alive & ipv6).any():
        _decode_ipv6(work, rows, work.alive & ipv6)


def _store_addresses(work: Decoding, ipv4: Mask, rows: Bytes, ipv6: Mask) -> None:
    """`src_addr`/`dst_addr` for both versions, IPv4 mapped as the records plane stores it."""
    out = work.out
    for name, v4, column in (("src_addr", out.src_v4, 12), ("dst_addr", out.dst_v4, 16)):
        addresses = getattr(out, name)
        if ipv4.any():
            fill(addresses, ipv4, ipv4_addresses(v4))
        if ipv6.any():
            column6 = 8 if column == 12 else 24
            raw = np.ascontiguousarray(rows[:, column6 : column6 + 16])
            fill(addresses, ipv6, raw.view(ADDRESS_DTYPE).reshape(-1))


def _decode_ipv4(work: Decoding, rows: Bytes, ipv4: Mask, available: Int64) -> None:
    out = work.out
    header_length = (rows[:, 0] & 0x0F).astype(np.int64) * 4
    total_length = u16(rows, 2)
    flags_offset = u16(rows, 6)
    fragment_offset = (flags_offset & 0x1FFF) * 8
    more_fragments = (flags_offset & 0x2000) != 0
    fill(out.ip_version, ipv4, 4)
    fill(out.ip_total_length, ipv4, total_length)
    fill(out.ttl, ipv4, rows[:, 8])
    fill(out.ip_id, ipv4, u16(rows, 4))
    fill(out.ip_proto, ipv4, rows[:, 9])
    fill(out.ip_options, ipv4, header_length > 20)
    fill(out.dont_fragment, ipv4, (flags_offset & 0x4000) != 0)
    fill(out.fragment, ipv4, more_fragments | (fragment_offset > 0))
    fill(out.fragment_offset, ipv4, fragment_offset)
    fill(out.src_v4, ipv4, u32(rows, 12))
    fill(out.dst_v4, ipv4, u32(rows, 16))
    _store_addresses(work, ipv4, rows, np.zeros(len(ipv4), dtype=np.bool_))
    start = out.l3_offset
    end = start + total_length
    fill(work.ip_end, ipv4, end)
    work.fail(ipv4 & (header_length < 20), LayerStatus.BAD_IP_HEADER_LENGTH)
    work.fail(ipv4 & (total_length < header_length), LayerStatus.BAD_IP_TOTAL_LENGTH)
    work.fail(ipv4 & (end > work.wire_end), LayerStatus.BAD_IP_TOTAL_LENGTH)
    work.fail(ipv4 & (available < header_length), LayerStatus.TRUNCATED_IP)
    work.flag(ipv4 & out.fragment, LayerStatus.FRAGMENT)
    work.fail(ipv4 & (fragment_offset > 0), LayerStatus.FRAGMENT)
    fill(out.l4_offset, work.alive & ipv4, start + header_length)


def _decode_ipv6(work: Decoding, rows: Bytes, ipv6: Mask) -> None:
    out = work.out
    payload_length = u16(rows, 4).astype(np.int64)
    fill(out.ip_version, ipv6, 6)
    fill(out.ip_total_length, ipv6, 40 + payload_length)
    fill(out.ttl, ipv6, rows[:, 7])
    fill(out.ip_proto, ipv6, rows[:, 6])
    _store_addresses(work, np.zeros(len(ipv6), dtype=np.bool_), rows, ipv6)
    end = out.l3_offset + 40 + payload_length
    fill(work.ip_end, ipv6, end)
    work.fail(ipv6 & (end > work.wire_end), LayerStatus.BAD_IP_TOTAL_LENGTH)
    packets = np.flatnonzero(work.alive & ipv6)
    _walk_extension_headers(work, packets, out.l3_offset[packets] + 40)


def _walk_extension_headers(work: Decoding, packets: Int64, position: Int64) -> None:
    """Hop-by-hop, routing, destination options and fragment headers, up to the transport."""
    out = work.out
    next_header = out.ip_proto[packets]
    ip_end = work.ip_end[packets]
    capture_end = work.capture_end[packets]
    walking = np.isin(next_header, IPV6_EXTENSION_HEADERS)
    problem = np.zeros(len(packets), dtype=np.uint8)
    for _ in range(MAX_IPV6_EXTENSION_HEADERS):
        if not walking.any():
            break
        step = _ExtensionStep(work.batch.buffer, position, np.where(walking, capture_end - position, 0))
        length = np.where(next_header == IPV6_FRAGMENT, 8, step.length)
        for reach in (8, length):
            beyond = walking & (position + reach > ip_end)
            short = walking & ~beyond & (position + reach > capture_end)
            problem[beyond] = LayerStatus.BAD_IP_HEADER_LENGTH
            problem[short] = LayerStatus.TRUNCATED_IP
            walking &= ~(beyond | short)
        fragment = walking & (next_header == IPV6_FRAGMENT)
        _store_fragment_header(work, packets[fragment], step, fragment)
        problem[fragment & (step.fragment_offset > 0)] = LayerStatus.FRAGMENT
        out.ip_options[packets[walking]] = True
        next_header = np.where(walking, step.next_header, next_header)
        position = np.where(walking, position + length, position)
        walking &= (problem == 0) & np.isin(next_header, IPV6_EXTENSION_HEADERS)
    problem[walking] = LayerStatus.BAD_IP_HEADER_LENGTH
    out.ip_proto[packets] = next_header
    _end_extension_walk(work, packets, problem, position)


class _ExtensionStep:
    """The 8 bytes every extension header starts with, for the packets being walked."""

    def __init__(self, buffer: Bytes, position: Int64, available: Int64) -> None:
        rows = header_rows(buffer, position, available, 8)
        self.next_header = rows[:, 0]
        self.length = (rows[:, 1].astype(np.int64) + 1) * 8
        self.fragment_offset = u16(rows, 2) & 0xFFF8
        self.more_fragments = (rows[:, 3] & 1) != 0
        self.identification = u32(rows, 4)


def _store_fragment_header(work: Decoding, packets: Int64, step: _ExtensionStep, fragment: Mask) -> None:
    out = work.out
    is_fragment = step.more_fragments[fragment] | (step.fragment_offset[fragment] > 0)
    out.fragment[packets] = is_fragment
    out.fragment_offset[packets] = step.fragment_offset[fragment]
    out.ip_id[packets] = step.identification[fragment]
    flagged = np.zeros(len(work.alive), dtype=np.bool_)
    flagged[packets[is_fragment]] = True
    work.flag(flagged, LayerStatus.FRAGMENT)


def _end_extension_walk(
    work: Decoding, packets: Int64, problem: npt.NDArray[np.uint8], position: Int64
) -> None:
    for code in np.unique(problem[problem != 0]):
        stopped = np.zeros(len(work.alive), dtype=np.bool_)
        stopped[packets[problem == code]] = True
        work.fail(stopped, LayerStatus(int(code)))
    alive = work.alive[packets]
    work.out.l4_offset[packets[alive]] = position[alive]
