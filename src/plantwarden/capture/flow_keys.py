"""The canonical keys of a batch's flows: per packet, what groups it with its conversation.

A flow's canonical 5-tuple puts the lower endpoint (address, then port) first. Per packet the
flow table needs only a hash of it, a way to compare two packets' keys, and whether the packet
was sent by the higher endpoint; the full key (`Key`) is built for one packet per group. When
every packet of a batch is IPv4 (the common case; addresses are stored as ::ffff:a.b.c.d), an
endpoint fits one 64-bit word (address << 16 | port) and the key two words; otherwise the key
is five words (each address as two). Both give the same order of endpoints, hence the same
`swapped` and `Key`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
Key = tuple[int, int, int, int, int]
"""A canonical 5-tuple as integers: the lower address (two 64-bit words), the higher one, and
`low_port << 24 | high_port << 8 | transport`."""

MIX = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
    np.uint64(0xFF51AFD7ED558CCD),
)
MAPPED_WORD = 0x0000FFFF
"""Bytes 8 to 11 of ::ffff:a.b.c.d as a big-endian number."""


class CanonicalKeys:
    """The canonical keys of packets `rows` of a batch (given its address, port and transport
    columns): `swapped` (sent by the higher endpoint) and the key as `columns` of words."""

    def __init__(
        self,
        src: npt.NDArray[np.bytes_],
        dst: npt.NDArray[np.bytes_],
        src_port: npt.NDArray[np.uint16],
        dst_port: npt.NDArray[np.uint16],
        transport: npt.NDArray[np.uint8],
        rows: npt.NDArray[np.int64],
    ) -> None:
        self._batch = (src, dst, src_port, dst_port, transport)
        self.rows = rows
        words = _ipv4_words(src, dst, rows)
        if words is None:
            self.swapped, self.columns = self._full_key(rows)
        else:
            self.swapped, self.columns = _ipv4_key(words, src_port[rows], dst_port[rows], transport[rows])

    def __len__(self) -> int:
        return len(self.rows)

    def hashes(self) -> Words:
        """A 64-bit hash of each packet's key (equal keys, equal hashes)."""
        with np.errstate(over="ignore"):
            mixed = self.columns[0] * MIX[0]
            for column, factor in zip(self.columns[1:], MIX[1:], strict=False):
                mixed ^= column * factor
            mixed ^= mixed >> np.uint64(31)
        return mixed

    def equal_rows(self, other: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each packet's key equals that of packet `other[i]` (the collision check)."""
        equal: npt.NDArray[np.bool_] = self.columns[0] == self.columns[0][other]
        for column in self.columns[1:]:
            equal &= column == column[other]
        return equal

    def keys(self, packets: npt.NDArray[np.int64]) -> list[Key]:
        """The canonical 5-tuples of `packets` (indexes into the rows)."""
        _, columns = self._full_key(self.rows[packets])
        return list(zip(*(column.tolist() for column in columns), strict=True))

    def _full_key(self, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], tuple[Words, ...]]:
        src, dst, src_port, dst_port, transport = self._batch
        return _full_key(src[rows], dst[rows], src_port[rows], dst_port[rows], transport[rows])

    def addresses(self, packets: npt.NDArray[np.int64]) -> tuple[bytes, bytes]:
        """The lower and the higher addresses of `packets`, 16 bytes each, one after the other."""
        src, dst = self._batch[0][self.rows[packets]], self._batch[1][self.rows[packets]]
        swapped = self.swapped[packets]
        low = np.where(swapped, dst, src).astype("S16")
        high = np.where(swapped, src, dst).astype("S16")
        return _padded(low), _padded(high)


def _padded(addresses: npt.NDArray[np.bytes_]) -> bytes:
    """The addresses one after the other, 16 bytes each (numpy keeps an S16's trailing zeros in
    its buffer but not in its items)."""
    return np.ascontiguousarray(addresses).tobytes()


def _ipv4_words(
    src: npt.NDArray[np.bytes_], dst: npt.NDArray[np.bytes_], rows: npt.NDArray[np.int64]
) -> tuple[Words, Words] | None:
    """The IPv4 addresses of packets `rows` as numbers, or None unless all are ::ffff:a.b.c.d
    (packets that are not IP have addresses of zeros, which the first test passes)."""
    out = []
    for column in (src, dst):
        column = np.ascontiguousarray(column)
        if column.view(np.uint64).reshape(-1, 2)[:, 0].any():
            return None
        words = column.view(">u4").reshape(-1, 4)
        if (words[rows, 2] != MAPPED_WORD).any():
            return None
        out.append(words[rows, 3].astype(np.uint64))
    return out[0], out[1]


def _ipv4_key(
    words: tuple[Words, Words],
    src_port: npt.NDArray[np.uint16],
    dst_port: npt.NDArray[np.uint16],
    transport: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.bool_], tuple[Words, ...]]:
    """Endpoints as `address << 16 | port`: the key is the lower one with the transport above it,
    and the higher one."""
    source = words[0] << np.uint64(16)
    source |= src_port
    destination = words[1] << np.uint64(16)
    destination |= dst_port
    swapped = source > destination
    low = np.minimum(source, destination)
    low |= transport.astype(np.uint64) << np.uint64(48)
    return swapped, (low, np.maximum(source, destination))


def _full_key(
    src: npt.NDArray[np.bytes_],
    dst: npt.NDArray[np.bytes_],
    src_port: npt.NDArray[np.uint16],
    dst_port: npt.NDArray[np.uint16],
    transport: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.bool_], tuple[Words, ...]]:
    """`swapped` and the five columns of `Key` (each address as two big-endian 64-bit words)."""
    src_words = np.ascontiguousarray(src).view(">u8").reshape(-1, 2).astype(np.uint64)
    dst_words = np.ascontiguousarray(dst).view(">u8").reshape(-1, 2).astype(np.uint64)
    src_key = (src_words[:, 0], src_words[:, 1], src_port.astype(np.uint64))
    dst_key = (dst_words[:, 0], dst_words[:, 1], dst_port.astype(np.uint64))
    swapped = _greater(src_key, dst_key)
    low = [np.where(swapped, d, s) for s, d in zip(src_key, dst_key, strict=True)]
    high = [np.where(swapped, s, d) for s, d in zip(src_key, dst_key, strict=True)]
    ports = low[2] << np.uint64(24)
    ports |= high[2] << np.uint64(8)
    ports |= transport.astype(np.uint64)
    return swapped, (low[0], low[1], high[0], high[1], ports)


def _greater(
    left: tuple[Words, Words, Words],
    right: tuple[Words, Words, Words],
) -> npt.NDArray[np.bool_]:
    """Element-wise lexicographic `left > right` over three columns."""
    greater: npt.NDArray[np.bool_] = left[2] > right[2]
    for a, b in ((left[1], right[1]), (left[0], right[0])):
        greater = (a > b) | ((a == b) & greater)
    return greater
