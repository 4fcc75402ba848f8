"""The vectorised layer decoder: a whole `PacketBatch` at once, link to transport."""

from __future__ import annotations

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.capture.layers.link import decode_link
from plantwarden.capture.layers.network import decode_network
from plantwarden.capture.layers.state import Decoding
from plantwarden.capture.layers.transport import decode_transport


def decode_layers(batch: PacketBatch) -> Layers:
    """The link, IP and TCP/UDP layers of every packet of `batch`, one row per packet.

    Never raises on packet contents: every problem is a `LayerStatus` in the row (see
    `plantwarden.capture.layers.columns` for what each column holds when).
    """
    work = Decoding.start(batch)
    decode_link(work)
    if work.alive.any():
        decode_network(work)
    if work.alive.any():
        decode_transport(work)
    return work.finish()
