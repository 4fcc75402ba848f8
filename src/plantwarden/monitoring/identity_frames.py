"""The frames devices say who they are in: ARP, LLDP and PROFINET DCP (by EtherType) and DHCP
(UDP 67 and 68), found in a batch with numpy and decoded together (`protocols.identity`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import PROTO_UDP, Layers
from plantwarden.protocols.identity import IdentityColumns, Kind, extract_identity

ETHERTYPES = {0x0806: Kind.ARP, 0x8035: Kind.ARP, 0x88CC: Kind.LLDP, 0x8892: Kind.DCP}
DHCP_PORTS = (67, 68)
DCP_FRAME_IDS = (0xFEFC, 0xFEFF)
"""PROFINET frame ids of DCP (hello, get/set, identify request and response); the rest of
EtherType 0x8892 is cyclic real-time data, not an identity."""
NAMES = {Kind.ARP: "arp", Kind.LLDP: "lldp", Kind.DCP: "pn_dcp", Kind.DHCP: "dhcp"}


@dataclass(frozen=True, slots=True)
class IdentityBatch:
    """A batch's identity frames: their columns (one row each) and packets."""

    columns: IdentityColumns
    packet: npt.NDArray[np.int64]
    kind: npt.NDArray[np.uint8]


def identity_frames(batch: PacketBatch, layers: Layers) -> IdentityBatch | None:
    """The batch's identity frames, decoded; None when it has none."""
    kinds = np.zeros(len(batch), dtype=np.uint8)
    for ethertype, kind in ETHERTYPES.items():
        kinds[layers.ethertype == ethertype] = kind
    starts = layers.l3_offset.astype(np.int64)
    lengths = (batch.offsets + batch.lengths - starts).astype(np.int64)
    dcp = np.flatnonzero(kinds == Kind.DCP)
    if len(dcp):
        ok = lengths[dcp] >= 2
        frame_id = np.zeros(len(dcp), dtype=np.int64)
        at = starts[dcp[ok]]
        frame_id[ok] = batch.buffer[at].astype(np.int64) << 8 | batch.buffer[at + 1]
        kinds[dcp[~ok | (frame_id < DCP_FRAME_IDS[0]) | (frame_id > DCP_FRAME_IDS[1])]] = 0
    dhcp = (layers.ip_proto == PROTO_UDP) & (layers.payload_length > 0)
    dhcp &= np.isin(layers.src_port, DHCP_PORTS) & np.isin(layers.dst_port, DHCP_PORTS)
    kinds[dhcp] = Kind.DHCP
    starts[dhcp] = layers.payload_offset[dhcp]
    lengths[dhcp] = layers.payload_length[dhcp]
    packet = np.flatnonzero((kinds != 0) & (starts >= 0))
    if not len(packet):
        return None
    columns = extract_identity(batch.buffer, starts[packet], lengths[packet], kinds[packet])
    return IdentityBatch(columns, packet, kinds[packet])
