"""What devices say of themselves in the industrial protocols, as the asset book's `Sighting`s.

Make one `ProtocolSightings(site, segment)` per sensor and call its `process(batch, layers,
modbus, protocols)` after each `Sensor.process(batch)`, with the batch's layers
(`sensor.last_layers`), the `ModbusBatch` that `process` returned and `sensor.last_protocols`.
The sensor's rows say which packets carry an identity answer (a few a minute at most); each such
packet's TCP or UDP payload is decoded again by the protocol's exact decoder, which keeps what
the columns do not (objects, records, names). It keeps one piece of state: the CIP requests of
the Identity object waiting for their replies (a reply does not name its class).

source, the answers it takes -> attributes (all 0.9: the device states its own identity):

- `cip_identity`, EtherNet/IP ListIdentity replies (one sighting per identity item), and
  successful Get_Attributes_All replies whose request (same connection, same request key as the
  sensor pairs them) asked the Identity object (class 0x01) -> `vendor` (ODVA name where known),
  `vendor_id` ("0x0001"), `device_type` (decimal), `product_code`, `firmware` (the revision,
  "major.minor" with two minor digits: "4.03"), `serial` ("0x00524d8e"), `model` and
  `product_name` (the product name).
- `modbus_43_14`, Read Device Identification responses -> `vendor` (VendorName), `product_code`,
  `firmware` (MajorMinorRevision), `vendor_url`, `product_name`, `model` (ModelName),
  `application_name` (UserApplicationName).
- `s7_szl`, Read SZL answers: SZL-ID xy11 -> `model` (the module's order number), `firmware`
  ("V3.2.6", from the basic firmware record), `module_type` (BGTyp, 0x%04x); xy1C -> `serial`,
  `product_name` (module type name), `plc_name`, `module_name`, `plant_tag`, `location`,
  `memory_card_serial`, `vendor_id` (0x%04x) and `vendor` ("Siemens" for 0x002a); xy24 ->
  `plc_mode` (the requested mode: "RUN", "STOP (internal)" ...).
- `bacnet_i_am`, I-Am -> `device_instance`, `vendor_id` (decimal).
- `bacnet_property`, ReadProperty ACKs of a device object's vendor-name (121), model-name (70),
  firmware-revision (44) or application-software-version (12) -> `vendor`, `model`, `firmware`,
  `application_version`, and `device_instance`.

The address is the answering device's IP: the source of the packet that carries the answer; for
a BACnet message forwarded by a BBMD the original source in its BVLC header. No MAC: the Ethernet
source of a routed answer is the router's, so the binding is always NONE. A BACnet message that
came through a BACnet router from another network (a source network in its NPDU) gives nothing:
its IP is the router's. Texts are cut at a NUL and stripped of trailing spaces, as Wireshark
shows them; empty values are left out.

Known limits: an answer split over several TCP segments is decoded only when its last segment
carries the whole PDU (the S7 answers with SZL records fit one segment in practice); CIP
Get_Attribute_Single replies and Identity requests inside a Multiple Service Packet are not
read, nor are S7 SZL answers sent in several data units, nor the S7 module list (SZL xy91/xyA0);
BACnet vendor ids are not named (the vendor list is not shipped), nor are ReadPropertyMultiple
ACKs read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import PROTO_TCP, Layers
from plantwarden.inventory import Binding, InvalidSighting, Sighting
from plantwarden.inventory.sightings import canonical_ip
from plantwarden.monitoring.modbus_streams import ModbusBatch
from plantwarden.monitoring.protocol_streams import ProtocolBatch
from plantwarden.protocols import bacnet, enip, s7comm
from plantwarden.protocols.enip.exact import decode_datagram
from plantwarden.protocols.enip.identity import (
    IDENTITY_CLASS,
    IdentityObjectError,
    identity_object,
    identity_text,
)
from plantwarden.protocols.enip.messages import Identity
from plantwarden.protocols.modbus import decode_payload as decode_modbus
from plantwarden.protocols.modbus.identity import device_identity
from plantwarden.protocols.s7comm import szl
from plantwarden.protocols.s7comm.constants import TYPE_RESPONSE

STATED = 0.9
"""A device states its own identity (as `monitoring.sightings` believes ARP, DHCP, LLDP, DCP)."""
ENCAPSULATED_INTERFACE = 43
DEVICE_OBJECT = 8
BACNET_PROPERTIES = {121: "vendor", 70: "model", 44: "firmware", 12: "application_version"}
"""Device object properties read here: vendor-name, model-name, firmware-revision,
application-software-version."""
SIEMENS = "Siemens"
GET_ATTRIBUTES_ALL = "get_attributes_all"
MAX_PENDING = 4096
"""CIP Identity requests kept waiting for their replies; beyond it the oldest are dropped."""

Attributes = dict[str, str]
Found = tuple[int, str, Attributes, str]
"""(packet, source, attributes, the device's IP if not the packet's source): one answer."""


class ProtocolSightings:
    """Turns each batch's identity answers into sightings; keeps the CIP requests of the
    Identity object waiting for their replies from one batch to the next."""

    def __init__(self, site: str, segment: str, max_pending: int = MAX_PENDING) -> None:
        self.site = site
        self.segment = segment
        self.max_pending = max_pending
        self._identity_requests: dict[tuple[bytes, int, bytes, int, int], None] = {}
        """Get_Attributes_All requests to the Identity object: (client address, port, server
        address, port, request key), oldest first."""

    def process(
        self,
        batch: PacketBatch,
        layers: Layers,
        modbus: ModbusBatch | None,
        protocols: Mapping[str, ProtocolBatch],
    ) -> list[Sighting]:
        """The batch's identity answers as sightings, in packet order (see the module docstring)."""
        found: list[Found] = []
        if modbus is not None:
            columns = modbus.columns
            rows = modbus.from_server & (columns.function_code == ENCAPSULATED_INTERFACE)
            found += _each(batch, layers, modbus.packet[rows], _modbus)
        for name, reader in _READERS.items():
            rows_of = protocols.get(name)
            if rows_of is not None:
                wanted = np.isin(rows_of.summary.function, _FUNCTIONS[name]) & rows_of.summary.is_response
                found += _each(batch, layers, rows_of.packet[wanted], reader)
        if "enip" in protocols:
            found += _each(batch, layers, self._identity_replies(layers, protocols["enip"]), _cip_object)
        found.sort(key=lambda item: item[0])
        return [
            sighting
            for packet, source, attributes, address in found
            if (sighting := self._sighting(batch, layers, packet, source, attributes, address)) is not None
        ]

    def _sighting(
        self, batch: PacketBatch, layers: Layers, packet: int, source: str, attributes: Attributes, ip: str
    ) -> Sighting | None:
        """The sighting of one answer; None when its device has no host address or it says nothing."""
        ip = ip or _source_ip(layers, packet)
        kept = {name: value for name, value in attributes.items() if value.strip()}
        if not ip or not kept:
            return None
        return Sighting(
            ts_ns=int(batch.ts_ns[packet]),
            site=self.site,
            segment=self.segment,
            source=source,
            confidence=STATED,
            ip=ip,
            binding=Binding.NONE,
            attributes=kept,
        )

    def _identity_replies(self, layers: Layers, rows: ProtocolBatch) -> list[int]:
        """The packets of Get_Attributes_All replies whose request asked the Identity object."""
        summary = rows.summary
        wanted = np.flatnonzero(summary.function == GET_ATTRIBUTES_ALL)
        pending, replies = self._identity_requests, []
        for row in wanted.tolist():
            packet, key = int(rows.packet[row]), int(rows.key[row])
            source = (layers.src_addr[packet].tobytes(), int(layers.src_port[packet]))
            destination = (layers.dst_addr[packet].tobytes(), int(layers.dst_port[packet]))
            if not summary.is_response[row]:
                if int(summary.address[row]) == IDENTITY_CLASS:
                    pending[(*source, *destination, key)] = None
                    while len(pending) > self.max_pending:
                        del pending[next(iter(pending))]
            elif pending.pop((*destination, *source, key), False) is None:
                replies.append(packet)
        return replies


Reader = Callable[[bytes, bool], Iterator[tuple[str, Attributes, str]]]
"""(payload, over TCP) -> (source, attributes, the device's IP if not the packet's source)."""


def _each(
    batch: PacketBatch, layers: Layers, packets: npt.NDArray[np.int64] | list[int], reader: Reader
) -> list[Found]:
    """The answers in the payloads of `packets` (each packet read once)."""
    found: list[Found] = []
    for packet in np.unique(packets).tolist():
        start, size = int(layers.payload_offset[packet]), int(layers.payload_length[packet])
        payload = batch.buffer[start : start + size].tobytes()
        tcp = int(layers.ip_proto[packet]) == PROTO_TCP
        found += [(packet, *answer) for answer in reader(payload, tcp)]
    return found


def _modbus(payload: bytes, tcp: bool) -> Iterator[tuple[str, Attributes, str]]:
    messages, _ = decode_modbus(payload, True)
    for message in messages:
        if message.function_code != ENCAPSULATED_INTERFACE or not message.objects:
            continue
        identity = device_identity(message.objects)
        yield (
            "modbus_43_14",
            {
                "vendor": identity.vendor_name,
                "product_code": identity.product_code,
                "firmware": identity.major_minor_revision,
                "vendor_url": identity.vendor_url,
                "product_name": identity.product_name,
                "model": identity.model_name,
                "application_name": identity.user_application_name,
            },
            "",
        )


def _enip(payload: bytes, tcp: bool) -> Iterator[tuple[str, Attributes, str]]:
    messages = enip.decode_payload(payload, True)[0] if tcp else decode_datagram(payload, True)[0]
    for message in messages:
        for identity in message.identities:
            yield "cip_identity", _cip_attributes(identity), ""


def _cip_object(payload: bytes, tcp: bool) -> Iterator[tuple[str, Attributes, str]]:
    """A Get_Attributes_All reply (its request asked the Identity object: see `_identity_replies`)."""
    messages = enip.decode_payload(payload, True)[0] if tcp else decode_datagram(payload, True)[0]
    for message in messages:
        reply = message.cip
        if reply is None or reply.name != GET_ATTRIBUTES_ALL or not reply.is_response:
            continue
        if reply.general_status != 0:
            continue
        try:
            yield "cip_identity", _cip_attributes(identity_object(reply.data)), ""
        except IdentityObjectError:
            continue


def _cip_attributes(identity: Identity) -> Attributes:
    text = identity_text(identity)
    return {
        "vendor": text.vendor,
        "vendor_id": text.vendor_id,
        "device_type": text.device_type,
        "product_code": text.product_code,
        "firmware": text.revision,
        "serial": text.serial_number,
        "model": text.product_name,
        "product_name": text.product_name,
    }


def _s7(payload: bytes, tcp: bool) -> Iterator[tuple[str, Attributes, str]]:
    for message in s7comm.decode_payload(payload, True)[0]:
        if message.szl_id < 0 or not message.data or message.ud_type != TYPE_RESPONSE:
            continue
        try:
            answer = szl.decode_szl(message.data)
            attributes = _SZL_READERS[answer.partial_list](answer)
        except (szl.SzlError, KeyError):
            continue  # a damaged list, or one that names nothing of the device
        yield "s7_szl", attributes, ""


def _module(answer: szl.SzlList) -> Attributes:
    records = {record.index: record for record in szl.module_identification(answer)}
    module = records.get(szl.MODULE)
    firmware = records.get(szl.BASIC_FIRMWARE)
    return {
        "model": module.order_number if module else "",
        "module_type": f"0x{module.module_type:04x}" if module else "",
        "firmware": firmware.firmware if firmware else "",
    }


def _components(answer: szl.SzlList) -> Attributes:
    found = szl.component_identification(answer)
    manufacturer = found.manufacturer_id
    return {
        "serial": found.serial_number,
        "product_name": found.module_type_name,
        "plc_name": found.plc_name,
        "module_name": found.module_name,
        "plant_tag": found.plant_tag,
        "location": found.location,
        "memory_card_serial": found.memory_card_serial,
        "vendor_id": f"0x{manufacturer:04x}" if manufacturer >= 0 else "",
        "vendor": SIEMENS if manufacturer == szl.SIEMENS else "",
    }


def _modes(answer: szl.SzlList) -> Attributes:
    transitions = szl.mode_transition(answer)
    return {"plc_mode": transitions[0].requested_name if transitions else ""}


_SZL_READERS: dict[int, Callable[[szl.SzlList], Attributes]] = {
    szl.MODULE_IDENTIFICATION: _module,
    szl.COMPONENT_IDENTIFICATION: _components,
    szl.MODES: _modes,
}


def _bacnet(payload: bytes, tcp: bool) -> Iterator[tuple[str, Attributes, str]]:
    message = bacnet.decode(payload)
    if message.snet >= 0:
        return  # routed from another BACnet network: the IP source is the router's
    address = str(ipaddress.IPv4Address(message.origin >> 16)) if message.origin >= 0 else ""
    if message.function == "i_am" and message.device_instance >= 0:
        attributes = {"device_instance": str(message.device_instance), "vendor_id": str(message.vendor_id)}
        yield "bacnet_i_am", attributes, address
    elif _device_property(message) and isinstance(message.value, str):
        value = message.value.split("\x00", 1)[0].rstrip(" ")
        attributes = {BACNET_PROPERTIES[message.property_id]: value, "device_instance": str(message.instance)}
        yield "bacnet_property", attributes, address


def _device_property(message: bacnet.BacnetMessage) -> bool:
    """A whole identity property (no array element) of a device object."""
    return (
        message.object_type == DEVICE_OBJECT
        and message.property_id in BACNET_PROPERTIES
        and message.array_index < 0
    )


_READERS: dict[str, Reader] = {"enip": _enip, "s7comm": _s7, "bacnet": _bacnet}
_FUNCTIONS: dict[str, list[str]] = {
    "enip": ["list_identity"],
    "s7comm": ["read_szl"],
    "bacnet": ["i_am", "read_property"],
}
"""The rows (by summary function name, answers only) whose packets each reader decodes."""


def _source_ip(layers: Layers, packet: int) -> str:
    """The packet's IP source as canonical text, or "" when it is not one host's address."""
    raw = layers.src_addr[packet : packet + 1].tobytes()  # not .item(): it drops trailing zeros
    address = raw[12:] if int(layers.ip_version[packet]) == 4 else raw
    try:
        return canonical_ip(str(ipaddress.ip_address(address)))
    except InvalidSighting:
        return ""
