"""The network layer, vectorised: IPv4 and IPv6 with its common extension headers.

Sets `ip_end` (the end of the IP packet) and `l4` (`l4_offset`) for the packets still alive after it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.capture.layers.columns import (
    COLUMNS,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPV6_EXTENSION_HEADERS,
    IPV6_FRAGMENT,
    MAX_IPV6_EXTENSION_HEADERS,
    LayerStatus,
)
from plantwarden.capture.layers.gather import U32, Bytes, Int64, header_rows, u16, u32
from plantwarden.capture.layers.state import Decoding, Int32, Mask, Rows, write
from plantwarden.core.records.schema import ADDRESS_DTYPE

IPV4_MAPPED = np.dtype([("prefix", "V12"), ("address", ">u4")])
"""A 16-byte address column seen as the parts of an IPv4-mapped address (::ffff:a.b.c.d)."""
IPV4_MAPPED_ANY = np.frombuffer(bytes(10) + b"\xff\xff" + bytes(4), dtype=ADDRESS_DTYPE)[0]
"""::ffff:0.0.0.0, the mapped prefix alone."""


def decode_network(work: Decoding) -> None:
    """Fill the IP columns; packets that are not IP stop here as `NOT_IP`.

    The IPv4 header is read for every packet at once (20 bytes, its options skipped) and fills
    the IP columns whole; IPv6 is rare on a plant network, and its headers are read for the IPv6
    packets alone, afterwards.
    """
    out = work.out
    ipv4 = work.alive & (out.ethertype == ETHERTYPE_IPV4)
    ipv6 = work.alive & (out.ethertype == ETHERTYPE_IPV6)
    work.fail(~(ipv4 | ipv6), LayerStatus.NOT_IP)
    if not work.alive.any():
        return
    available = work.captured - work.l3  # of the packets still alive: IP ones, their l3 known
    # The 20 bytes of an IPv4 header, and the 16 after it (TCP's, unless there are IP options).
    words = work.words_at(work.l3, 5, work.alive, ahead=4)
    work.drop_window()
    version = words[0] >> 28
    work.fail(available < 1, LayerStatus.TRUNCATED_IP)
    work.fail((ipv4 & (version != 4)) | (ipv6 & (version != 6)), LayerStatus.BAD_IP_VERSION)
    work.fail(ipv4 & (available < 20), LayerStatus.TRUNCATED_IP)
    work.fail(ipv6 & (available < 40), LayerStatus.TRUNCATED_IP)
    ipv4 &= work.alive
    ipv6 &= work.alive
    _decode_ipv4(work, words, ipv4, available)
    if ipv6.any():
        _decode_ipv6(work, np.flatnonzero(ipv6))


def _decode_ipv4(work: Decoding, words: U32, ipv4: Mask, available: Int32) -> None:
    """The IPv4 columns (written whole, even with no IPv4 packet: IPv6 writes its rows after)."""
    where = Rows(ipv4)
    version_length, identification_flags, ttl_protocol, source, destination = words
    header_length = _signed((version_length >> 22) & 0x3C)  # the IHL nibble (32-bit words) * 4
    total_length = _signed(version_length & 0xFFFF)
    flags_offset = identification_flags & 0xFFFF
    fragment_offset = (flags_offset & 0x1FFF) << 3
    fragment = (flags_offset & 0x3FFF) != 0  # more fragments, or an offset
    work.fill("ip_version", where, 4)
    work.fill("ip_total_length", where, total_length)
    work.fill("ttl", where, ttl_protocol >> 24)
    work.fill("ip_id", where, identification_flags >> 16)
    work.fill("ip_proto", where, (ttl_protocol >> 16) & 0xFF)
    work.fill("ip_options", where, header_length > 20)
    work.fill("dont_fragment", where, (flags_offset & 0x4000) != 0)
    work.fill("fragment", where, fragment)
    work.fill("fragment_offset", where, fragment_offset)
    work.fill("src_v4", where, source)
    work.fill("dst_v4", where, destination)
    _store_ipv4_addresses(work, where, source, destination)
    end = work.l3 + total_length
    work.ip_end = end
    work.fail(ipv4 & (header_length < 20), LayerStatus.BAD_IP_HEADER_LENGTH)
    work.fail(ipv4 & (total_length < header_length), LayerStatus.BAD_IP_TOTAL_LENGTH)
    work.fail(ipv4 & (end > work.wire), LayerStatus.BAD_IP_TOTAL_LENGTH)
    work.fail(ipv4 & (available < header_length), LayerStatus.TRUNCATED_IP)
    work.flag(ipv4 & fragment, LayerStatus.FRAGMENT)
    work.fail(ipv4 & (fragment_offset > 0), LayerStatus.FRAGMENT)
    work.l4 = work.l3 + header_length
    work.fill("l4_offset", Rows(work.alive & ipv4), work.starts + work.l4)


def _signed(field: U32) -> Int32:
    """A field below 2**31 as int32, to compute with the int32 positions (a view, no copy)."""
    signed: Int32 = field.view(np.int32)
    return signed


def _store_ipv4_addresses(work: Decoding, where: Rows, source: U32, destination: U32) -> None:
    """`src_addr`/`dst_addr` as the records plane stores IPv4 (::ffff:a.b.c.d): the mapped prefix
    in one contiguous pass, then the address into the last four bytes."""
    for name, address in (("src_addr", source), ("dst_addr", destination)):
        first = name not in work.written
        column = work.own(name)
        write(column, where, IPV4_MAPPED_ANY, COLUMNS[name].empty, first=first)
        write(column.view(IPV4_MAPPED)["address"], where, address, 0, first=False)


def _decode_ipv6(work: Decoding, packets: Int64) -> None:
    """The fixed header of the IPv6 `packets` (each has its 40 bytes captured), then the walk."""
    start = work.l3[packets]
    rows = header_rows(work.batch.buffer, work.starts[packets] + start, work.captured[packets] - start, 40)
    payload_length = u16(rows, 4).astype(np.int32)
    work.fill_at("ip_version", packets, 6)
    work.fill_at("ip_total_length", packets, 40 + payload_length)
    work.fill_at("ttl", packets, rows[:, 7])
    work.fill_at("ip_proto", packets, rows[:, 6])
    work.fill_at("src_addr", packets, np.ascontiguousarray(rows[:, 8:24]).view(ADDRESS_DTYPE)[:, 0])
    work.fill_at("dst_addr", packets, np.ascontiguousarray(rows[:, 24:40]).view(ADDRESS_DTYPE)[:, 0])
    end = start + 40 + payload_length
    work.ip_end[packets] = end
    too_long = end > work.wire[packets]
    work.fail_at(packets[too_long], LayerStatus.BAD_IP_TOTAL_LENGTH)
    _walk_extension_headers(work, packets[~too_long], start[~too_long] + 40)


def _walk_extension_headers(work: Decoding, packets: Int64, position: Int32) -> None:
    """Hop-by-hop, routing, destination options and fragment headers, up to the transport."""
    out = work.out
    next_header = out.ip_proto[packets]
    ip_end = work.ip_end[packets]
    captured = work.captured[packets]
    starts = work.starts[packets]
    walking = np.isin(next_header, IPV6_EXTENSION_HEADERS)
    problem = np.zeros(len(packets), dtype=np.uint8)
    for _ in range(MAX_IPV6_EXTENSION_HEADERS):
        if not walking.any():
            break
        available = np.where(walking, captured - position, 0)
        step = _ExtensionStep(work.batch.buffer, starts + position, available)
        length = np.where(next_header == IPV6_FRAGMENT, 8, step.length)
        for reach in (8, length):
            beyond = walking & (position + reach > ip_end)
            short = walking & ~beyond & (position + reach > captured)
            problem[beyond] = LayerStatus.BAD_IP_HEADER_LENGTH
            problem[short] = LayerStatus.TRUNCATED_IP
            walking &= ~(beyond | short)
        fragment = walking & (next_header == IPV6_FRAGMENT)
        _store_fragment_header(work, packets[fragment], step, fragment)
        problem[fragment & (step.fragment_offset > 0)] = LayerStatus.FRAGMENT
        work.fill_at("ip_options", packets[walking], True)
        next_header = np.where(walking, step.next_header, next_header)
        position = np.where(walking, position + length, position)
        walking &= (problem == 0) & np.isin(next_header, IPV6_EXTENSION_HEADERS)
    problem[walking] = LayerStatus.BAD_IP_HEADER_LENGTH
    work.fill_at("ip_proto", packets, next_header)
    _end_extension_walk(work, packets, problem, position)


class _ExtensionStep:
    """The 8 bytes every extension header starts with, for the packets being walked."""

    def __init__(self, buffer: Bytes, position: Int64, available: Int32) -> None:
        rows = header_rows(buffer, position, available, 8)
        self.next_header = rows[:, 0]
        self.length = (rows[:, 1].astype(np.int32) + 1) * 8
        self.fragment_offset = u16(rows, 2) & 0xFFF8
        self.more_fragments = (rows[:, 3] & 1) != 0
        self.identification = u32(rows, 4)


def _store_fragment_header(work: Decoding, packets: Int64, step: _ExtensionStep, fragment: Mask) -> None:
    is_fragment = step.more_fragments[fragment] | (step.fragment_offset[fragment] > 0)
    work.fill_at("fragment", packets, is_fragment)
    work.fill_at("fragment_offset", packets, step.fragment_offset[fragment])
    work.fill_at("ip_id", packets, step.identification[fragment])
    work.flag_at(packets[is_fragment], LayerStatus.FRAGMENT)


def _end_extension_walk(
    work: Decoding, packets: Int64, problem: npt.NDArray[np.uint8], position: Int32
) -> None:
    for code in np.unique(problem[problem != 0]):
        work.fail_at(packets[problem == code], LayerStatus(int(code)))
    alive = work.alive[packets]
    packets, position = packets[alive], position[alive]
    work.l4[packets] = position
    work.fill_at("l4_offset", packets, work.starts[packets] + position)
