"""`PacketBatch`: packets as columns over one buffer, the unit every stage of the sensor works on.

Readers (files, streams, live capture) fill batches; the layer decoder and the protocol column
extractors work on a whole batch with numpy; only what the fast path cannot take goes packet by
packet. The bytes of every packet lie in `buffer` (a reader's chunk, other bytes may lie between
them); packet `i` is `buffer[offsets[i] : offsets[i] + lengths[i]]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276


@dataclass(frozen=True, slots=True)
class PacketBatch:
    """A run of consecutive packets of one capture, as columns.

    `first_number` is the 1-based number of the first packet in its capture (Wireshark's frame
    number), so packet `i` of the batch is frame `first_number + i`.
    """

    buffer: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int32]
    wire_lengths: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    linktypes: npt.NDArray[np.uint16]
    interfaces: npt.NDArray[np.uint16]
    first_number: int = 1

    def __len__(self) -> int:
        return len(self.offsets)

    def packet(self, index: int) -> bytes:
        """The captured bytes of packet `index` of the batch."""
        start = int(self.offsets[index])
        return self.buffer[start : start + int(self.lengths[index])].tobytes()

    @classmethod
    def from_packets(
        cls,
        packets: list[tuple[int, bytes]],
        *,
        linktype: int = LINKTYPE_ETHERNET,
        first_number: int = 1,
    ) -> PacketBatch:
        """A batch from (time in ns, frame) pairs of one link type (tests, the tap, small inputs)."""
        lengths = np.fromiter((len(frame) for _, frame in packets), dtype=np.int32, count=len(packets))
        offsets = np.zeros(len(packets), dtype=np.int64)
        if len(packets) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        buffer = np.frombuffer(b"".join(frame for _, frame in packets), dtype=np.uint8)
        return cls(
            buffer=buffer,
            offsets=offsets,
            lengths=lengths,
            wire_lengths=lengths.copy(),
            ts_ns=np.fromiter((ts for ts, _ in packets), dtype=np.int64, count=len(packets)),
            linktypes=np.full(len(packets), linktype, dtype=np.uint16),
            interfaces=np.zeros(len(packets), dtype=np.uint16),
            first_number=first_number,
        )
