"""The link layer, vectorised: Ethernet, Linux cooked captures, raw IP and BSD loopback, then VLAN tags.

Each link type has a reader that takes the packets of that type at once and says, per packet,
the EtherType, the addresses, where the network layer starts, and the problem if any; the VLAN
tags are then walked in the bytes the reader already holds. A batch of one link type (the usual
case) is read without any selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantwarden.capture import batch as linktypes
from plantwarden.capture.layers.columns import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    MAX_VLAN_TAGS,
    NULL_FAMILIES_IPV6,
    NULL_FAMILY_IPV4,
    VLAN_ETHERTYPES,
    LayerStatus,
)
from plantwarden.capture.layers.gather import Bytes, Int64, header_rows, u16, u32_le, u48
from plantwarden.capture.layers.state import Decoding, Mask

U16 = npt.NDArray[np.uint16]
U64 = npt.NDArray[np.uint64]
Selection = slice | Int64


@dataclass(slots=True)
class LinkHeader:
    """What a link reader found, for the packets it was given.

    `rows` holds the header bytes and, from column `tags_at` on, room for the VLAN tags (links
    that carry an EtherType); `tags_at` is None on links without one.
    """

    problem: npt.NDArray[np.uint8]
    ethertype: U16
    src_mac: U64
    dst_mac: U64
    network: Int64
    rows: Bytes | None = None
    tags_at: int | None = None


TAGS_WIDTH = 4 * MAX_VLAN_TAGS


def _no_addresses(count: int) -> U64:
    return np.zeros(count, dtype=np.uint64)


def _truncated(short: Mask) -> npt.NDArray[np.uint8]:
    return np.where(short, LayerStatus.TRUNCATED_LINK, LayerStatus.OK).astype(np.uint8)


def read_ethernet(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
    """Ethernet II / 802.3: destination, source, type (or length)."""
    rows = header_rows(buffer, starts, available, 14 + TAGS_WIDTH)
    problem = _truncated(available < 14)
    return LinkHeader(problem, u16(rows, 12), u48(rows, 6), u48(rows, 0), starts + 14, rows, 14)


def read_linux_sll(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
    """Linux cooked capture v1: 16 bytes, the sender's address at 6 (length at 4), protocol at 14."""
    rows = header_rows(buffer, starts, available, 16 + TAGS_WIDTH)
    source = np.where(u16(rows, 4) == 6, u48(rows, 6), 0).astype(np.uint64)
    none = _no_addresses(len(starts))
    return LinkHeader(_truncated(available < 16), u16(rows, 14), source, none, starts + 16, rows, 16)


def read_linux_sll2(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
    """Linux cooked capture v2: 20 bytes, protocol at 0, address length at 11, address at 12."""
    rows = header_rows(buffer, starts, available, 20 + TAGS_WIDTH)
    source = np.where(rows[:, 11] == 6, u48(rows, 12), 0).astype(np.uint64)
    none = _no_addresses(len(starts))
    return LinkHeader(_truncated(available < 20), u16(rows, 0), source, none, starts + 20, rows, 20)


def read_raw_ip(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
    """Raw IP: no header; the version nibble says IPv4 or IPv6."""
    version = header_rows(buffer, starts, available, 1)[:, 0] >> 4
    ethertype = np.select([version == 4, version == 6], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], 0)
    problem = np.select(
        [available < 1, ethertype == 0], [LayerStatus.TRUNCATED_IP, LayerStatus.BAD_IP_VERSION], 0
    )
    none = _no_addresses(len(starts))
    return LinkHeader(problem.astype(np.uint8), ethertype.astype(np.uint16), none, none, starts)


def _fixed_ethertype(ethertype: int) -> Callable[[Bytes, Int64, Int64], LinkHeader]:
    def read(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
        count = len(starts)
        problem = np.zeros(count, dtype=np.uint8)
        types = np.full(count, ethertype, dtype=np.uint16)
        return LinkHeader(problem, types, _no_addresses(count), _no_addresses(count), starts)

    return read


def read_null(buffer: Bytes, starts: Int64, available: Int64) -> LinkHeader:
    """BSD loopback: a 4-byte address family in the capturing host's byte order."""
    family = u32_le(header_rows(buffer, starts, available, 4), 0)
    family = np.where(family > 0xFFFF, family.byteswap(), family)
    ipv6 = np.isin(family, NULL_FAMILIES_IPV6)
    ethertype = np.select([family == NULL_FAMILY_IPV4, ipv6], [ETHERTYPE_IPV4, ETHERTYPE_IPV6], 0)
    none = _no_addresses(len(starts))
    return LinkHeader(_truncated(available < 4), ethertype.astype(np.uint16), none, none, starts + 4)


READERS: dict[int, Callable[[Bytes, Int64, Int64], LinkHeader]] = {
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
        starts = work.starts[selection]
        available = work.capture_end[selection] - starts
        header = reader(work.batch.buffer, starts, available)
        tags = walk_vlan_tags(header, available)
        _store_link(work, selection, header, tags)


def _is_tag(ethertype: U16) -> Mask:
    first, second, third = VLAN_ETHERTYPES
    tag: Mask = (ethertype == first) | (ethertype == second) | (ethertype == third)
    return tag


def walk_vlan_tags(header: LinkHeader, available: Int64) -> VlanTags:
    """Up to `MAX_VLAN_TAGS` tags of 4 bytes (12-bit id, next EtherType) after the link header.

    Updates the header's EtherType, network start and problem (`TRUNCATED_LINK` for a cut tag,
    `TOO_MANY_VLAN_TAGS`); the loop ends as soon as no packet has another tag.
    """
    tags = VlanTags.none(len(available))
    if header.rows is None or header.tags_at is None:
        return tags
    walking = (header.problem == LayerStatus.OK) & _is_tag(header.ethertype)
    truncated = np.zeros(len(available), dtype=np.bool_)
    for tag in range(MAX_VLAN_TAGS):
        if not walking.any():
            break
        column = header.tags_at + 4 * tag
        short = walking & (available < column + 4)
        truncated |= short
        walking &= ~short
        vlan = (u16(header.rows, column) & 0x0FFF).astype(np.int32)
        np.copyto(tags.outer if tag == 0 else tags.inner, vlan, where=walking)
        np.copyto(header.ethertype, u16(header.rows, column + 2), where=walking)
        tags.count += walking
        header.network += 4 * walking
        walking &= _is_tag(header.ethertype)
    header.problem[truncated] = LayerStatus.TRUNCATED_LINK
    header.problem[walking] = LayerStatus.TOO_MANY_VLAN_TAGS
    return tags


def _store_link(work: Decoding, selection: Selection, header: LinkHeader, tags: VlanTags) -> None:
    out = work.out
    problem = header.problem
    decoded = problem != LayerStatus.TRUNCATED_LINK
    out.ethertype[selection] = np.where(decoded, header.ethertype, 0)
    out.src_mac[selection] = np.where(decoded, header.src_mac, 0)
    out.dst_mac[selection] = np.where(decoded, header.dst_mac, 0)
    out.vlan_outer[selection] = np.where(decoded, tags.outer, -1)
    out.vlan_inner[selection] = np.where(decoded, tags.inner, -1)
    out.vlan_count[selection] = np.where(decoded, tags.count, 0)
    located = decoded & (problem != LayerStatus.TOO_MANY_VLAN_TAGS)
    out.l3_offset[selection] = np.where(located, header.network, -1)
    if problem.any():
        problems = np.zeros(len(work.alive), dtype=np.uint8)
        problems[selection] = problem
        for code in np.unique(problem[problem != 0]):
            work.fail(problems == code, LayerStatus(int(code)))
