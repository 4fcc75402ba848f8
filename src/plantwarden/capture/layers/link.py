"""The link layer, vectorised: Ethernet, Linux cooked captures, raw IP and BSD loopback, then VLAN tags.

Each link type has a reader that takes the packets of that type at once and says, per packet,
the EtherType, the addresses, where the network layer starts, and the problem if any; the VLAN
tags are then walked, the first in the words the reader already holds, the later ones (rare)
read for the packets that have them. A batch of one link type (the usual case) is read without
any selection, and its link columns are the reader's arrays themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture import batch as linktypes
from plantwarden.capture.layers.columns import (
    COLUMNS,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    MAX_VLAN_TAGS,
    NULL_FAMILIES_IPV6,
    NULL_FAMILY_IPV4,
    VLAN_ETHERTYPES,
    LayerStatus,
)
from plantwarden.capture.layers.gather import (
    U32,
    Bytes,
    Int64,
    field8,
    field16,
    field48,
    header_rows,
    u16,
    u32_le,
    window_words,
)
from plantwarden.capture.layers.state import WINDOW, Array, Decoding, Int32, Mask, Rows, write

U16 = npt.NDArray[np.uint16]
U64 = npt.NDArray[np.uint64]
Selection = slice | Int64


@dataclass(slots=True)
class LinkHeader:
    """What a link reader found, for the packets it was given.

    `network` is where the network layer starts, from the packet's start. On links that carry an
    EtherType, `tags` is where VLAN tags would start (the header's length), and `words` holds
    the packets' first 32-bit words, the header and the first tag; `tags` is None on other links.
    """

    problem: npt.NDArray[np.uint8]
    ethertype: U16
    src_mac: U64
    dst_mac: U64
    network: Int32
    tags: int | None = None
    words: U32 | None = None


Reader = Callable[[Bytes, Bytes, Int64, Int32], LinkHeader]
"""A link reader: (the batch's buffer, the packets' windows, their starts, their captured bytes)."""


def _no_addresses(count: int) -> U64:
    return np.zeros(count, dtype=np.uint64)


def _at(count: int, position: int) -> Int32:
    """The same position in every packet (a new array: the tag walk moves it on)."""
    return np.full(count, position, dtype=np.int32)


def _truncated(short: Mask) -> npt.NDArray[np.uint8]:
    problem: npt.NDArray[np.uint8] = short.view(np.uint8) * np.uint8(LayerStatus.TRUNCATED_LINK)
    return problem


def _with_first_tag(header_length: int) -> int:
    """Words that hold a header of `header_length` bytes and one VLAN tag after it."""
    return (header_length + 4 + 3) // 4


def read_ethernet(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
    """Ethernet II / 802.3: destination, source, type (or length)."""
    words = window_words(window, 0, _with_first_tag(14))
    problem = _truncated(available < 14)
    ethertype = field16(words, 12).astype(np.uint16)
    source, destination = field48(words, 6), field48(words, 0)
    return LinkHeader(problem, ethertype, source, destination, _at(len(starts), 14), 14, words)


def read_linux_sll(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
    """Linux cooked capture v1: 16 bytes, the sender's address at 6 (length at 4), protocol at 14."""
    words = window_words(window, 0, _with_first_tag(16))
    source = np.where(field16(words, 4) == 6, field48(words, 6), np.uint64(0))
    none = _no_addresses(len(starts))
    protocol = field16(words, 14).astype(np.uint16)
    return LinkHeader(_truncated(available < 16), protocol, source, none, _at(len(starts), 16), 16, words)


def read_linux_sll2(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
    """Linux cooked capture v2: 20 bytes, protocol at 0, address length at 11, address at 12."""
    words = window_words(window, 0, _with_first_tag(20))
    source = np.where(field8(words, 11) == 6, field48(words, 12), np.uint64(0))
    none = _no_addresses(len(starts))
    protocol = field16(words, 0).astype(np.uint16)
    return LinkHeader(_truncated(available < 20), protocol, source, none, _at(len(starts), 20), 20, words)


def read_raw_ip(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
    """Raw IP: no header; the version nibble says IPv4 or IPv6."""
    version = header_rows(buffer, starts, available, 1)[:, 0] >> 4
    ethertype = np.select([version == 4, version == 6], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], 0)
    problem = np.select(
        [available < 1, ethertype == 0], [LayerStatus.TRUNCATED_IP, LayerStatus.BAD_IP_VERSION], 0
    )
    count = len(starts)
    return LinkHeader(
        problem.astype(np.uint8),
        ethertype.astype(np.uint16),
        _no_addresses(count),
        _no_addresses(count),
        _at(len(starts), 0),
    )


def _fixed_ethertype(ethertype: int) -> Reader:
    def read(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
        count = len(starts)
        problem = np.zeros(count, dtype=np.uint8)
        types = np.full(count, ethertype, dtype=np.uint16)
        return LinkHeader(problem, types, _no_addresses(count), _no_addresses(count), _at(len(starts), 0))

    return read


def read_null(buffer: Bytes, window: Bytes, starts: Int64, available: Int32) -> LinkHeader:
    """BSD loopback: a 4-byte address family in the capturing host's byte order."""
    family = u32_le(header_rows(buffer, starts, available, 4), 0)
    family = np.where(family > 0xFFFF, family.byteswap(), family)
    ipv6 = np.isin(family, NULL_FAMILIES_IPV6)
    ethertype = np.select([family == NULL_FAMILY_IPV4, ipv6], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], 0)
    count = len(starts)
    return LinkHeader(
        _truncated(available < 4),
        ethertype.astype(np.uint16),
        _no_addresses(count),
        _no_addresses(count),
        _at(len(starts), 4),
    )


LONGEST_HEADER = 20
"""Linux cooked v2; the VLAN tags after a header are read out of the window."""
assert LONGEST_HEADER + 4 * MAX_VLAN_TAGS <= WINDOW

READERS: dict[int, Reader] = {
    linktypes.LINKTYPE_ETHERNET: read_ethernet,
    linktypes.LINKTYPE_LINUX_SLL: read_linux_sll,
    linktypes.LINKTYPE_LINUX_SLL2: read_linux_sll2,
    linktypes.LINKTYPE_RAW: read_raw_ip,
    linktypes.LINKTYPE_IPV4: _fixed_ethertype(ETHERTYPE_IPV4),
    linktypes.LINKTYPE_IPV6: _fixed_ethertype(ETHERTYPE_IPV6),
    linktypes.LINKTYPE_NULL: read_null,
}


@dataclass(slots=True)
class VlanTags:
    """The tags of the packets of one link type."""

    outer: npt.NDArray[np.int32]
    inner: npt.NDArray[np.int32]
    count: npt.NDArray[np.uint8]

    @classmethod
    def none(cls, count: int) -> VlanTags:
        return cls(np.full(count, -1, np.int32), np.full(count, -1, np.int32), np.zeros(count, np.uint8))


def _groups(work: Decoding) -> list[tuple[int, Selection]]:
    """The packets of each link type: one slice for a batch of a single link type."""
    types = work.batch.linktypes
    if len(types) == 0 or (types == types[0]).all():
        return [(int(types[0]), slice(None))] if len(types) else []
    return [(int(kind), np.flatnonzero(types == kind)) for kind in np.unique(types)]


def decode_link(work: Decoding) -> None:
    """Fill the link columns (VLAN tags included) and `l3_offset`."""
    for linktype, selection in _groups(work):
        reader = READERS.get(linktype)
        if reader is None:
            unsupported = np.zeros(len(work.alive), dtype=np.bool_)
            unsupported[selection] = True
            work.fail(unsupported, LayerStatus.UNSUPPORTED_LINKTYPE)
            continue
        starts, available = work.starts[selection], work.captured[selection]
        header = reader(work.batch.buffer, work.window[selection], starts, available)
        tags = walk_vlan_tags(header, work.window[selection], available)
        _store_link(work, selection, header, tags)


def _is_tag(ethertype: npt.NDArray[Any]) -> Mask:
    first, second, third = VLAN_ETHERTYPES
    tag: Mask = (ethertype == first) | (ethertype == second) | (ethertype == third)
    return tag


def walk_vlan_tags(header: LinkHeader, window: Bytes, available: Int32) -> VlanTags:
    """Up to `MAX_VLAN_TAGS` tags of 4 bytes (12-bit id, next EtherType) after the link header.

    Updates the header's EtherType, network start and problem (`TRUNCATED_LINK` for a cut tag,
    `TOO_MANY_VLAN_TAGS`). The first tag is common (a plant tags most of its traffic) and is
    read for every packet at once, in the reader's words; the packets with a second tag are few,
    and the later tags are read out of their window rows for those alone (every packet still
    walking has its next tag at the same place, the tags being 4 bytes each).
    """
    tags_at, words = header.tags, header.words
    if tags_at is None or words is None:
        return VlanTags.none(len(available))
    walking = (header.problem == LayerStatus.OK) & _is_tag(header.ethertype)
    if not walking.any():
        return VlanTags.none(len(available))
    tags = _first_tag(header, words, tags_at, available < tags_at + 4, walking)
    packets = np.flatnonzero(tags.count.view(np.bool_) & _is_tag(header.ethertype))
    for tag in range(1, MAX_VLAN_TAGS):
        if len(packets) == 0:
            break
        packets = _later_tag(header, window, tags_at + 4 * tag, available, packets, tags)
    header.problem[packets] = LayerStatus.TOO_MANY_VLAN_TAGS
    return tags


def _first_tag(header: LinkHeader, words: U32, at: int, short: Mask, walking: Mask) -> VlanTags:
    """The first tag (at byte `at` of `words`) of the `walking` packets, all read at once;
    `short` marks the packets that end before its end.

    Written through `Rows` (every row, then the few others put back) rather than with masked
    numpy operations, several times slower when the mask is mostly true.
    """
    short &= walking
    if short.any():
        header.problem[short] = LayerStatus.TRUNCATED_LINK
        walking = walking & ~short
    tagged = Rows(walking)
    vlan = field16(words, at)
    vlan &= 0x0FFF
    outer = np.empty(len(walking), dtype=np.int32)
    write(outer, tagged, vlan, -1, first=True)
    write(header.ethertype, tagged, field16(words, at + 2), 0, first=False)
    write(header.network, tagged, header.network + 4, 0, first=False)
    inner = np.full(len(walking), -1, dtype=np.int32)
    return VlanTags(outer, inner, walking.astype(np.uint8))


def _later_tag(
    header: LinkHeader, window: Bytes, position: int, available: Int32, packets: Int64, tags: VlanTags
) -> Int64:
    """The tag at `position` of `packets` (inside the window); returns those with one more."""
    short = available[packets] < position + 4
    header.problem[packets[short]] = LayerStatus.TRUNCATED_LINK
    packets = packets[~short]
    tag = window[packets, position : position + 4]
    tags.inner[packets] = u16(tag, 0) & 0x0FFF
    ethertype = u16(tag, 2)
    header.ethertype[packets] = ethertype
    tags.count[packets] += 1
    header.network[packets] = position + 4
    return packets[_is_tag(ethertype)]


def _store_link(work: Decoding, selection: Selection, header: LinkHeader, tags: VlanTags) -> None:
    """Store the link columns whole, then empty them again where the link header was cut."""
    values: dict[str, Array] = {
        "ethertype": header.ethertype,
        "src_mac": header.src_mac,
        "dst_mac": header.dst_mac,
        "vlan_outer": tags.outer,
        "vlan_inner": tags.inner,
        "vlan_count": tags.count,
        "l3_offset": work.starts[selection] + header.network,
    }
    work.l3[selection] = header.network
    if isinstance(selection, slice):
        work.adopt(values)
    else:
        for name, value in values.items():
            work.claim(name)[selection] = value
    problem = header.problem
    if not problem.any():
        return
    cut = _positions(selection, np.flatnonzero(problem == LayerStatus.TRUNCATED_LINK))
    for name in values:
        getattr(work.out, name)[cut] = COLUMNS[name].empty
    work.out.l3_offset[_positions(selection, np.flatnonzero(problem == LayerStatus.TOO_MANY_VLAN_TAGS))] = -1
    problems = np.zeros(len(work.alive), dtype=np.uint8)
    problems[selection] = problem
    for code in np.unique(problem[problem != 0]):
        work.fail(problems == code, LayerStatus(int(code)))


def _positions(selection: Selection, local: Int64) -> Int64:
    """The batch rows of rows `local` of a link type's selection."""
    return local if isinstance(selection, slice) else selection[local]
