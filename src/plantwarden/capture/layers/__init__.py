"""The layers below the industrial protocols: link (Ethernet, VLAN tags, Linux cooked, raw IP,
loopback), IPv4/IPv6 and TCP/UDP, decoded for a whole `PacketBatch` at once with numpy
(`decode_layers`), and packet by packet in plain Python (`decode_packet`, the second opinion the
tests hold the vectorised decoder to)."""

from plantwarden.capture.layers.columns import COLUMNS, Layers, LayerStatus, PacketLayers
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.layers.exact import decode_packet

__all__ = ["COLUMNS", "LayerStatus", "Layers", "PacketLayers", "decode_layers", "decode_packet"]
