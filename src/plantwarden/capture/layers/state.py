"""The working state of the vectorised decoder: the columns being filled, and who is still alive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers, LayerStatus

Mask = npt.NDArray[np.bool_]
Int64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Decoding:
    """The columns of a batch being filled, layer after layer.

    `alive` marks the packets whose decoding goes on; `capture_end` and `wire_end` are absolute
    (the end of the captured bytes, cut to the buffer; the end of the frame as it was on the wire);
    `ip_end` is the end of the IP packet once known.
    """

    batch: PacketBatch
    out: Layers
    alive: Mask
    starts: Int64
    capture_end: Int64
    wire_end: Int64
    ip_end: Int64

    @classmethod
    def start(cls, batch: PacketBatch) -> Decoding:
        """Every packet alive, every column empty."""
        starts = batch.offsets.astype(np.int64)
        captured = np.clip(batch.lengths.astype(np.int64), 0, None)
        capture_end = np.clip(starts + captured, None, len(batch.buffer))
        wire = np.maximum(batch.wire_lengths.astype(np.int64), captured)
        return cls(
            batch=batch,
            out=Layers.empty(len(batch)),
            alive=np.ones(len(batch), dtype=np.bool_),
            starts=starts,
            capture_end=capture_end,
            wire_end=starts + wire,
            ip_end=np.zeros(len(batch), dtype=np.int64),
        )

    def fail(self, problem: Mask, status: LayerStatus) -> None:
        """The alive packets with `problem` stop here; the first problem of each is its status."""
        hit = self.alive & problem
        if hit.any():
            self.out.status[hit & (self.out.status == LayerStatus.OK)] = status
            self.alive &= ~hit

    def flag(self, finding: Mask, status: LayerStatus) -> None:
        """Give the alive packets with `finding` this status if they have none yet; they go on."""
        hit = self.alive & finding & (self.out.status == LayerStatus.OK)
        self.out.status[hit] = status
