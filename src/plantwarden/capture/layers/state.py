"""The working state of the vectorised decoder: the columns being filled, and who is still alive."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import COLUMNS, Layers, LayerStatus
from plantwarden.capture.layers.gather import U32, Bytes, header_words, packet_windows, window_words

Mask = npt.NDArray[np.bool_]
Int32 = npt.NDArray[np.int32]
Int64 = npt.NDArray[np.int64]
Array = npt.NDArray[Any]

WINDOW = 58
"""Bytes of every packet gathered at the start (`Decoding.window`): an Ethernet header with two
VLAN tags (22), an IPv4 header (20) and the 16 bytes of TCP the decoder reads."""


class Rows:
    """The rows of a batch that a layer fills, held the cheaper way round for `write`.

    Most layers fill most rows of a batch (IPv4 and TCP in a plant capture), so that the rows
    left out are few: `write` then writes every row in one plain pass and sets the few apart
    afterwards, cheaper than a masked copy. When the rows filled are the few (UDP, IPv6), it
    writes those alone, by index.
    """

    __slots__ = ("index", "mask", "most")

    def __init__(self, mask: Mask) -> None:
        self.mask = mask
        self.most = 2 * int(np.count_nonzero(mask)) >= len(mask)
        self.index: Int64 = np.flatnonzero(~mask if self.most else mask)
        """The rows left out when `most`, else the rows filled."""


def write(column: Array, where: Rows, values: npt.ArrayLike, empty: Any, *, first: bool) -> None:
    """`column[where] = values[where]` (values known to fit the column's dtype).

    The `first` write of a column writes every row: `empty` in the rows left out, whatever the
    column held. A later one leaves them as they are. `values` is a scalar or an array of the
    column's length.
    """
    if where.most:
        kept = None if first else column[where.index]
        np.copyto(column, values, casting="unsafe")
        column[where.index] = empty if kept is None else kept
        return
    if first:
        column.fill(empty)
    if len(where.index):
        column[where.index] = np.asarray(values)[where.index] if np.ndim(values) else values


@dataclass(slots=True)
class Decoding:
    """The columns of a batch being filled, layer after layer.

    `alive` marks the packets whose decoding goes on. Positions inside a packet are counted from
    its first byte (`starts` holds where each packet starts in the buffer), in 32 bits: half the
    memory traffic of absolute 64-bit offsets for the many comparisons the layers make. They are
    `captured` (the bytes of the packet inside the buffer), `wire` (the frame's length on the
    wire), and, as the layers find them, `l3` and `l4` (where IP and the transport start) and
    `ip_end` (where the IP packet ends); each is anything for the packets not (or no longer)
    alive. The offset columns are `starts` plus these. `starts` may be the batch's own offsets:
    never write into it. `window` holds the first `WINDOW` bytes of every packet, where most
    packets have all the headers the decoder reads.

    The columns start uninitialised (but `status`): each is written whole by its first `fill`
    (or `claim`, `own`, `adopt`), and `finish` empties those that no layer reached. Read a column
    only once its layer has filled it.
    """

    batch: PacketBatch
    out: Layers
    alive: Mask
    starts: Int64
    captured: Int32
    wire: Int32
    window: Bytes
    l3: Int32
    l4: Int32
    ip_end: Int32
    ahead: tuple[Int32, U32] | None = None
    """Words read ahead by `words_at`: where they start in each packet, and the words."""
    written: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, batch: PacketBatch) -> Decoding:
        """Every packet alive, every column to be written."""
        count = len(batch)
        starts = np.asarray(batch.offsets, dtype=np.int64)
        lengths = np.maximum(np.asarray(batch.lengths, dtype=np.int32), 0)
        window = packet_windows(batch.buffer, starts, WINDOW)
        return cls(
            batch=batch,
            out=Layers.unwritten(count),
            alive=np.ones(count, dtype=np.bool_),
            starts=starts,
            captured=_inside(lengths, starts, len(batch.buffer)),
            wire=np.maximum(np.asarray(batch.wire_lengths, dtype=np.int32), lengths),
            window=window,
            l3=np.empty(count, dtype=np.int32),  # set by the link layer
            l4=np.empty(count, dtype=np.int32),  # set whole by the IPv4 reader
            ip_end=np.empty(count, dtype=np.int32),  # likewise
        )

    def words_at(self, at: Int32, count: int, needed: Mask, ahead: int = 0) -> U32:
        """The first `count` 32-bit words of the header at `at` (from each packet's start) of the
        `needed` packets, as `header_words` gives them (anything for the other packets, and past
        a packet's capture).

        A layer starts at the same offset into most packets of a batch (Ethernet with one VLAN
        tag: IP at 18, TCP at 38): the words at that offset come out of the window for every
        packet at once; the few packets whose header starts elsewhere are read from the buffer.
        `ahead` more words are read in the same pass and kept for the next call, where the next
        layer's header usually lies (TCP right after an IP header without options): a pass over
        the window costs more than the few more words it carries.
        """
        kept, self.ahead = self.ahead, None
        if kept is not None and len(kept[1]) >= count + ahead:
            position, words = kept
            elsewhere = np.flatnonzero(needed & (at != position))
        else:
            usual = _usual(at, needed)
            if usual is None or not 0 <= usual <= self.window.shape[1] - 4 * (count + ahead):
                words = np.empty((count + ahead, len(at)), dtype=np.uint32)
                elsewhere = np.flatnonzero(needed)
            else:
                words = window_words(self.window, usual, count + ahead)
                elsewhere = np.flatnonzero(needed & (at != usual))
        if len(elsewhere):
            where = at[elsewhere]
            start, available = self.starts[elsewhere] + where, self.captured[elsewhere] - where
            words[:, elsewhere] = header_words(self.batch.buffer, start, available, len(words))
        if ahead:
            self.ahead = (at + 4 * count, words[count : count + ahead])
        return words[:count]

    def drop_window(self) -> None:
        """Let the window go once no layer reads it any more (a smaller peak of memory: fresh
        memory costs a page fault per 4 KiB on first touch)."""
        self.window = np.empty((len(self.window), 0), dtype=np.uint8)

    def fill(self, name: str, where: Rows, values: npt.ArrayLike) -> None:
        """Column `name` takes `values` in the rows `where` (see `write`)."""
        first = name not in self.written
        self.written.add(name)
        write(getattr(self.out, name), where, values, COLUMNS[name].empty, first=first)

    def fill_at(self, name: str, packets: Int64, values: npt.ArrayLike) -> None:
        """Column `name` takes `values` (one per packet, or a scalar) at the rows `packets`."""
        self.claim(name)[packets] = values

    def claim(self, name: str) -> Array:
        """Column `name`, emptied if no layer has written it yet."""
        column: Array = getattr(self.out, name)
        if name not in self.written:
            self.written.add(name)
            column.fill(COLUMNS[name].empty)
        return column

    def adopt(self, columns: dict[str, Array]) -> None:
        """Make these whole columns the batch's own, without a copy where an array can be taken
        as it is (owning its data, of the column's dtype, and given once)."""
        taken: dict[str, Array] = {}
        for name, values in columns.items():
            if _takeable(values, COLUMNS[name].dtype) and all(values is not v for v in taken.values()):
                taken[name] = values
            else:
                self.own(name)[:] = values
        self.written.update(taken)
        self.out = dataclasses.replace(self.out, **taken)

    def own(self, name: str) -> Array:
        """Column `name`, for a caller that writes every row of it now."""
        self.written.add(name)
        column: Array = getattr(self.out, name)
        return column

    def finish(self) -> Layers:
        """The columns, those that no layer reached emptied."""
        for name in COLUMNS.keys() - self.written - {"status"}:
            self.claim(name)
        return self.out

    def fail(self, problem: Mask, status: LayerStatus) -> None:
        """The alive packets with `problem` stop here; the first problem of each is its status."""
        hit = self.alive & problem
        if hit.any():
            self.out.status[hit & (self.out.status == LayerStatus.OK)] = status
            self.alive &= ~hit

    def flag(self, finding: Mask, status: LayerStatus) -> None:
        """Give the alive packets with `finding` this status if they have none yet; they go on."""
        hit = self.alive & finding
        if hit.any():
            self.out.status[hit & (self.out.status == LayerStatus.OK)] = status

    def fail_at(self, packets: Int64, status: LayerStatus) -> None:
        """`fail` for the packets of index `packets` (a layer that works on a few packets)."""
        hit = packets[self.alive[packets]]
        if len(hit):
            self.out.status[hit[self.out.status[hit] == LayerStatus.OK]] = status
            self.alive[hit] = False

    def flag_at(self, packets: Int64, status: LayerStatus) -> None:
        """`flag` for the packets of index `packets`."""
        hit = packets[self.alive[packets]]
        self.out.status[hit[self.out.status[hit] == LayerStatus.OK]] = status


def _takeable(values: Array, dtype: str) -> bool:
    """Whether `values` can become a column as it is: its own writable data, of the dtype."""
    return bool(values.flags.owndata and values.flags.writeable and values.dtype == np.dtype(dtype))


def _inside(lengths: Int32, starts: Int64, size: int) -> Int32:
    """The captured lengths cut to a buffer of `size` bytes (-1 for a start past its end)."""
    ends = starts + lengths
    if len(ends) == 0 or (ends.max() <= size and starts.min() >= 0):
        return lengths
    inside = np.minimum(lengths, size - starts)
    return np.maximum(inside, -1).astype(np.int32)


def _usual(values: Int32, among: Mask, samples: int = 64) -> int | None:
    """The most common of `values` (offsets into the window) where `among`, estimated on a few
    evenly spread rows; None when none of them is among."""
    step = max(1, len(values) // samples)
    sample = values[::step][among[::step]]
    if len(sample) == 0:
        return None
    counts = np.bincount(np.maximum(sample, 0))  # positions in a packet (never negative)
    return int(np.argmax(counts))
