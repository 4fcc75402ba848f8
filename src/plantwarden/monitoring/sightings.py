"""What the sensor decodes, as the asset book's `Sighting`s: one batch in, its sightings out.

Call `sightings(batch, layers, identity, site, segment)` after `Sensor.process(batch)`, with the
batch's layers and `sensor.last_identity`. Each source gives what its decoded columns carry, no
more:

source, the frames it takes -> the addresses, binding, attributes, confidence:

- `arp`, requests and replies -> the sender's IP and MAC (probes from 0.0.0.0 skipped),
  AUTHORITATIVE; no attributes; 0.9.
- `dhcp`, an ACK to the client's segment -> yiaddr (else ciaddr) and chaddr, AUTHORITATIVE;
  `hostname`, `vendor_class` where the ACK carries them; 0.9.
- `dhcp`, client messages (from port 68) with a host name or vendor class -> chaddr only, NONE;
  `hostname`, `vendor_class`; 0.9.
- `lldp`, every LLDPDU -> the Ethernet source and the first IPv4 management address (else an
  IPv4 chassis id, else the first IPv6 management address), AUTHORITATIVE with an IP, else NONE;
  `chassis_id`, `port_id`, `port_description`, `system_name`, `system_description`; 0.9.
- `pn_dcp`, responses (identify, get) and Hello that carry an IP or a name -> the Ethernet
  source and the IP block, AUTHORITATIVE with an IP, else NONE; `station_name`, `vendor_id`
  and `device_id` (as 0x%04x, tshark's form), `device_vendor` (DeviceVendorValue, the type of
  station); 0.9.
- `pn_dcp`, Set requests of the IP or NameOfStation -> the Ethernet destination and the IP set,
  AUTHORITATIVE with an IP, else NONE; `station_name` when set; 0.7.
- `flow`, every IP packet -> the Ethernet source and IP source, one sighting per distinct pair
  per batch at the pair's first packet, OBSERVED; no attributes; 0.5.

Why these confidences: a device stating its own addresses or names is believed at 0.9 (it may
be misconfigured or lie, so not 1); a DCP Set is a tool assigning a name or address the device
may still refuse (0.7); an Ethernet source with an IP source is forwarded traffic as often as a
host's own (0.5), which is why the book counts it towards router MACs rather than bindings.

Choices worth knowing:
- A DHCP ACK sent to port 67 goes to a relay agent: its client sits in another segment, so it
  gives no sighting here (the book would otherwise bind the client's address in this segment).
  An ACK from the relay to the client (port 68) is in the client's segment and counts.
- DHCP clients name themselves in DISCOVER and REQUEST, rarely does the server echo the name in
  the ACK; so client messages with a host name or vendor class give a MAC-only sighting, which
  the book joins to the asset the ACK binds that MAC to.
- DCP identify requests carry the name or alias being searched for, not the sender's: skipped.
- The LLDP rows are decoded again by the exact decoder (`decode_lldp`, a few frames a minute):
  the identity columns hold the chassis id only when it is a MAC, and no port id.
- Addresses that name no single station (0.0.0.0, multicast, broadcast, group or all-zero MACs)
  are left out, and a sighting left with neither address is dropped: no frame makes this raise.

The sightings come out in packet order (a packet's identity sighting before its flow sighting),
which the book needs: which DHCP lease came last is a matter of order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.core.records.grouping import Grouping
from plantwarden.inventory import Binding, InvalidSighting, Sighting
from plantwarden.inventory.sightings import canonical_ip
from plantwarden.monitoring.identity_frames import IdentityBatch
from plantwarden.protocols.identity import Kind, decode_lldp
from plantwarden.protocols.identity.fields import ipv4_text, mac_text
from plantwarden.protocols.identity.pn_dcp import HELLO, SET

STATED = 0.9
"""A device states its own addresses or names (ARP, DHCP, LLDP, DCP responses and Hello)."""
ASSIGNED = 0.7
"""A DCP Set request: a tool assigns the name or address; the device may refuse it."""
OBSERVED = 0.5
"""An Ethernet source carried an IP source: the host's own, or forwarded by a router."""

ARP_REQUEST, ARP_REPLY = 1, 2
DHCP_ACK = 5
DHCP_CLIENT_PORT, DHCP_SERVER_PORT = 68, 67
_GROUP_BIT = 1 << 40


class _Found(NamedTuple):
    """A sighting and where it came from (packet index, then identity before flow)."""

    packet: int
    rank: int
    sighting: Sighting


def sightings(
    batch: PacketBatch, layers: Layers, identity: IdentityBatch | None, site: str, segment: str
) -> list[Sighting]:
    """The batch's sightings in packet order: its identity frames' and its IP traffic's."""
    found = _identity_sightings(batch, layers, identity, site, segment)
    found += _flow_sightings(batch, layers, site, segment)
    found.sort(key=lambda item: (item.packet, item.rank))
    return [item.sighting for item in found]


def _identity_sightings(
    batch: PacketBatch, layers: Layers, identity: IdentityBatch | None, site: str, segment: str
) -> list[_Found]:
    """What the ARP, DHCP, LLDP and DCP frames say (see the module docstring's table)."""
    if identity is None:
        return []
    columns, summary = identity.columns, identity.columns.summary
    values = [
        identity.packet,
        batch.ts_ns[identity.packet],
        identity.kind,
        summary.function_code,
        summary.is_response,
        *(getattr(columns, name) for name in _Row._fields[5:]),
    ]
    where = _Where(site, segment)
    found = []
    for row in map(_Row._make, zip(*(column.tolist() for column in values), strict=True)):
        sighting = _READERS[row.kind](where, row, batch, layers)
        if sighting is not None:
            found.append(_Found(row.packet, 0, sighting))
    return found


def _flow_sightings(batch: PacketBatch, layers: Layers, site: str, segment: str) -> list[_Found]:
    """One OBSERVED sighting per distinct (Ethernet source, IP source) pair of the batch, at the
    pair's first packet."""
    station = (layers.src_mac != 0) & (layers.src_mac & _GROUP_BIT == 0)
    packets = np.flatnonzero((layers.ip_version > 0) & station)
    if not len(packets):
        return []
    first = Grouping([layers.src_mac[packets], layers.src_addr[packets]]).first  # stable: first packets
    where = _Where(site, segment)
    found = []
    for packet in sorted(packets[first].tolist()):
        raw = layers.src_addr[packet : packet + 1].tobytes()  # not .item(): it drops trailing zeros
        address = raw[12:] if int(layers.ip_version[packet]) == 4 else raw
        mac, ip = mac_text(int(layers.src_mac[packet])), _host_ip(str(ipaddress.ip_address(address)))
        if not ip:
            continue
        sighting = where.sighting(int(batch.ts_ns[packet]), "flow", OBSERVED, mac, ip, {}, Binding.OBSERVED)
        if sighting is not None:
            found.append(_Found(packet, 1, sighting))
    return found


class _Where(NamedTuple):
    """The site and segment of a batch's sightings, and how one is built."""

    site: str
    segment: str

    def sighting(
        self,
        ts_ns: int,
        source: str,
        confidence: float,
        mac: str,
        ip: str,
        attributes: Mapping[str, str],
        binding: Binding = Binding.AUTHORITATIVE,
    ) -> Sighting | None:
        """A sighting of what was found, or None when it names neither address; `binding` holds
        when both addresses are there (else NONE). Blank attributes are left out."""
        if not mac and not ip:
            return None
        binding = binding if mac and ip else Binding.NONE
        kept = {key: value for key, value in attributes.items() if value.strip()}
        return Sighting(
            ts_ns=ts_ns,
            site=self.site,
            segment=self.segment,
            source=source,
            confidence=confidence,
            ip=ip,
            mac=mac,
            binding=binding,
            attributes=kept,
        )


class _Row(NamedTuple):
    """One identity frame: its packet, time, kind, summary fields and identity columns."""

    packet: int
    ts_ns: int
    kind: int
    function: int
    response: bool
    mac: int
    ip: int
    name: str
    vendor_text: str
    vendor_id: int
    device_id: int
    sets_ip: bool
    sets_name: bool


def _arp(where: _Where, row: _Row, batch: PacketBatch, layers: Layers) -> Sighting | None:
    """A request or reply states its sender's pair (other operations have no reliable sender IP)."""
    ip = _ipv4(row.ip)
    if row.function not in (ARP_REQUEST, ARP_REPLY) or not ip:
        return None  # a probe (sender 0.0.0.0) states no address of its own
    return where.sighting(row.ts_ns, "arp", STATED, _mac(row.mac), ip, {})


def _dhcp(where: _Where, row: _Row, batch: PacketBatch, layers: Layers) -> Sighting | None:
    """An ACK towards the client's segment binds its address; a client message names the host."""
    attributes = {"hostname": row.name, "vendor_class": row.vendor_text}
    to_client = int(layers.dst_port[row.packet]) == DHCP_CLIENT_PORT
    if row.response and row.function == DHCP_ACK and to_client:
        return where.sighting(row.ts_ns, "dhcp", STATED, _mac(row.mac), _ipv4(row.ip), attributes)
    from_client = int(layers.src_port[row.packet]) == DHCP_CLIENT_PORT
    if not row.response and from_client and (row.name.strip() or row.vendor_text.strip()):
        return where.sighting(row.ts_ns, "dhcp", STATED, _mac(row.mac), "", attributes)
    return None


def _lldp(where: _Where, row: _Row, batch: PacketBatch, layers: Layers) -> Sighting | None:
    """The sender of an LLDPDU: its port's MAC, its management address, its names."""
    start = int(layers.l3_offset[row.packet])
    end = int(batch.offsets[row.packet]) + int(batch.lengths[row.packet])
    message = decode_lldp(batch.buffer[start:end].tobytes())
    addresses = message.management_addresses
    candidates = [
        *(address for address in addresses if "." in address),
        ipv4_text(message.chassis_ipv4) if message.chassis_ipv4 > 0 else "",
        *(address for address in addresses if ":" in address),
    ]
    ip = next((_host_ip(address) for address in candidates if _host_ip(address)), "")
    attributes = {
        "chassis_id": message.chassis_id,
        "port_id": message.port_id,
        "port_description": message.port_description,
        "system_name": message.system_name,
        "system_description": message.system_description,
        "enabled_capabilities": capability_names(message.enabled_capabilities),
    }
    return where.sighting(row.ts_ns, "lldp", STATED, _mac(int(layers.src_mac[row.packet])), ip, attributes)


LLDP_CAPABILITIES = (
    "other",
    "repeater",
    "bridge",
    "wlan_access_point",
    "router",
    "telephone",
    "docsis_cable_device",
    "station_only",
    "c_vlan",
    "s_vlan",
    "tpmr",
)
"""The system capability bits of IEEE 802.1AB (bit 0 first), as the roles read them."""


def capability_names(bits: int) -> str:
    """The enabled capabilities of an LLDP system capabilities TLV as names ("bridge, router");
    "" when the TLV is absent (-1) or names none."""
    if bits <= 0:
        return ""
    return ", ".join(name for bit, name in enumerate(LLDP_CAPABILITIES) if bits >> bit & 1)


def _dcp(where: _Where, row: _Row, batch: PacketBatch, layers: Layers) -> Sighting | None:
    """A response or Hello states its sender's identity; a Set request what it assigns to its
    destination; other requests (identify filters, get lists) state nothing of a device."""
    if row.response or row.function == HELLO:
        attributes = {
            "station_name": row.name,
            "vendor_id": f"0x{row.vendor_id:04x}" if row.vendor_id >= 0 else "",
            "device_id": f"0x{row.device_id:04x}" if row.device_id >= 0 else "",
            "device_vendor": row.vendor_text,
        }
        sender, ip = _mac(int(layers.src_mac[row.packet])), _ipv4(row.ip)
        if not ip and not any(value.strip() for value in attributes.values()):
            return None  # a Set response, say: only block errors, nothing about the device
        return where.sighting(row.ts_ns, "pn_dcp", STATED, sender, ip, attributes)
    if row.function == SET and (row.sets_ip or row.sets_name):
        target = _mac(int(layers.dst_mac[row.packet]))
        ip = _ipv4(row.ip) if row.sets_ip else ""
        attributes = {"station_name": row.name if row.sets_name else ""}
        return where.sighting(row.ts_ns, "pn_dcp", ASSIGNED, target, ip, attributes)
    return None


_READERS: dict[int, Callable[[_Where, _Row, PacketBatch, Layers], Sighting | None]] = {
    Kind.ARP: _arp,
    Kind.DHCP: _dhcp,
    Kind.LLDP: _lldp,
    Kind.DCP: _dcp,
}


def _mac(value: int) -> str:
    """A 48-bit MAC as text, or "" when it names no station (absent, all zeros, a group)."""
    if value <= 0 or value >= 1 << 48 or value & _GROUP_BIT:
        return ""
    return mac_text(value)


def _ipv4(value: int) -> str:
    """An IPv4 column value as text, or "" when absent or not one host's address."""
    return _host_ip(ipv4_text(value)) if value > 0 else ""


def _host_ip(text: str) -> str:
    """`text` in canonical form, or "" when it is not one host's address (0.0.0.0, multicast,
    broadcast: the same rule as `Sighting`'s)."""
    try:
        return canonical_ip(text)
    except InvalidSighting:
        return ""
