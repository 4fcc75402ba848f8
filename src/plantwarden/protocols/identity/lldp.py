"""LLDP (IEEE 802.1AB-2016, section 8; PROFINET TLVs IEC 61158-6-10, organizationally specific
OUI 00-0E-CF).

Exact: `decode_lldp(data)`, one LLDPDU from its first TLV on (Ethernet padding after the End TLV
is ignored). Fast: `extract_lldp(buffer, starts, lengths)`: the three mandatory TLV headers
(Chassis ID, Port ID, Time To Live: types, lengths, subtypes, the TTL value) and their findings
with numpy for all rows at once; the TLVs after them are walked per row in Python by the same
code the exact decoder uses (`_finish`).

Decoded: chassis and port id (every subtype; MAC and network addresses as such, the others as
text), TTL, port description, system name and description, system capabilities (supported and
enabled), management addresses (IPv4, IPv6 or other, with interface numbering), organizationally
specific TLVs by OUI and subtype (PROFINET subtypes named), End. Reserved TLV types are kept by
type only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, ProtocolModule, Summary, Support
from plantwarden.protocols.identity.fields import Identity, big_endian_at, mac_text, text
from plantwarden.protocols.identity.findings import IdentityFinding

ETHERTYPE_LLDP = 0x88CC
MODULE = ProtocolModule(
    name="lldp",
    support=Support.PARTIAL,
    references=(
        "IEEE Std 802.1AB-2016: Station and Media Access Control Connectivity Discovery, clause 8",
        "IEC 61158-6-10: PROFINET IO application layer protocol, LLDP extensions (OUI 00-0E-CF)",
    ),
    ethertypes=(ETHERTYPE_LLDP,),
)
END, CHASSIS, PORT, TTL = 0, 1, 2, 3
PORT_DESCRIPTION, SYSTEM_NAME, SYSTEM_DESCRIPTION, CAPABILITIES, MANAGEMENT = 4, 5, 6, 7, 8
ORGANIZATION = 127
PROFINET_OUI = 0x000ECF
PROFINET_SUBTYPES = {
    1: "delay",
    2: "port_status",
    3: "alias",
    4: "mrp_port_status",
    5: "chassis_mac",
    6: "ptcp_status",
    7: "mau_type_extension",
    8: "mrp_interconnection_port_status",
}
CHASSIS_MAC, CHASSIS_NETWORK = 4, 5
PORT_MAC, PORT_NETWORK = 3, 4


@dataclass(frozen=True, slots=True)
class LldpMessage:
    """One LLDPDU; "none" is -1 for numbers, "" or () otherwise."""

    chassis_subtype: int = -1
    chassis_id: str = ""
    """MAC as aa:bb:cc:dd:ee:ff, a network address as text, other subtypes as UTF-8 text."""
    chassis_raw: bytes = b""
    port_subtype: int = -1
    port_id: str = ""
    port_raw: bytes = b""
    ttl: int = -1
    port_description: str = ""
    system_name: str = ""
    system_description: str = ""
    capabilities: int = -1
    enabled_capabilities: int = -1
    management_addresses: tuple[str, ...] = ()
    management_interfaces: tuple[tuple[int, int], ...] = ()
    """(interface numbering subtype, interface number) of each management address."""
    organization_tlvs: tuple[tuple[int, int], ...] = ()
    """(OUI, subtype) of each organizationally specific TLV."""
    profinet: tuple[str, ...] = ()
    """The names of the PROFINET (00-0E-CF) TLVs, in order."""
    tlv_types: tuple[int, ...] = ()
    """Every TLV's type in order (End included when present)."""
    status: ParseStatus = ParseStatus.OK
    finding: IdentityFinding = IdentityFinding.OK

    @property
    def chassis_mac(self) -> int:
        if self.chassis_subtype == CHASSIS_MAC and len(self.chassis_raw) == 6:
            return int.from_bytes(self.chassis_raw, "big")
        return -1

    @property
    def chassis_ipv4(self) -> int:
        raw = self.chassis_raw
        if self.chassis_subtype == CHASSIS_NETWORK and len(raw) == 5 and raw[0] == 1:
            return int.from_bytes(raw[1:], "big")
        return -1

    def summary(self) -> Summary:
        if self.ttl < 0:
            return Summary(-1, "", Operation.MALFORMED, False, status=self.status, finding=self.finding)
        code, name = (2, "shutdown") if self.ttl == 0 else (1, "advertise")
        return Summary(
            code,
            name,
            Operation.IDENTIFY,
            False,
            quantity=sum(1 for kind in self.tlv_types if kind != END),
            status=self.status,
            finding=self.finding,
        )

    def identity(self) -> Identity:
        ipv4 = [ipaddress.IPv4Address(a) for a in self.management_addresses if _is_ipv4(a)]
        ip = int(ipv4[0]) if ipv4 else self.chassis_ipv4
        return Identity(
            mac=self.chassis_mac, ip=ip, name=self.system_name, vendor_text=self.system_description
        )


def _is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def decode_lldp(data: bytes) -> LldpMessage:
    """One LLDPDU; never raises (an internal error gives finding UNEXPECTED)."""
    try:
        return _decode(data)
    except Exception:
        return LldpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED)


def _header(data: bytes, position: int) -> tuple[int, int]:
    word = int.from_bytes(data[position : position + 2], "big")
    return word >> 9, word & 0x1FF


def _decode(data: bytes) -> LldpMessage:
    if len(data) < 2:
        return _failed(IdentityFinding.TRUNCATED)
    position, found = 0, []
    for expected in (CHASSIS, PORT, TTL):
        if position + 2 > len(data):
            return _failed(IdentityFinding.MISSING_MANDATORY_TLV)
        kind, length = _header(data, position)
        if kind != expected:
            return _failed(IdentityFinding.MISSING_MANDATORY_TLV)
        if position + 2 + length > len(data):
            return _failed(IdentityFinding.LENGTH_OVERRUN)
        found.append((position, length))
        position += 2 + length
    (chassis_at, chassis_length), (port_at, port_length), (ttl_at, ttl_length) = found
    finding = IdentityFinding.OK
    if not (2 <= chassis_length <= 256 and 2 <= port_length <= 256 and ttl_length == 2):
        finding = IdentityFinding.BAD_FIELD_LENGTH
    ttl = int.from_bytes(data[ttl_at + 2 : ttl_at + 4], "big") if ttl_length >= 2 else -1
    return _finish(data, position, chassis_at, chassis_length, port_at, port_length, ttl, finding)


def _failed(finding: IdentityFinding) -> LldpMessage:
    return LldpMessage(status=ParseStatus.MALFORMED, finding=finding)


def _identifier(subtype: int, raw: bytes, mac: int, network: int) -> str:
    if subtype == mac and len(raw) == 6:
        return mac_text(int.from_bytes(raw, "big"))
    if subtype == network and raw:
        return _address(raw[0], raw[1:])
    return text(raw)


def _address(family: int, raw: bytes) -> str:
    if family == 1 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if family == 2 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if family == 6 and len(raw) == 6:
        return mac_text(int.from_bytes(raw, "big"))
    return raw.hex()


def _finish(
    data: bytes,
    position: int,
    chassis_at: int,
    chassis_length: int,
    port_at: int,
    port_length: int,
    ttl: int,
    finding: IdentityFinding,
) -> LldpMessage:
    """The TLVs after the mandatory three (read by `_decode`, or by the fast path's numpy), and
    the message; `finding` is the mandatory TLVs' (OK or BAD_FIELD_LENGTH)."""
    chassis = bytes(data[chassis_at + 3 : chassis_at + 2 + chassis_length]) if chassis_length else b""
    port = bytes(data[port_at + 3 : port_at + 2 + port_length]) if port_length else b""
    chassis_subtype = data[chassis_at + 2] if chassis_length else -1
    port_subtype = data[port_at + 2] if port_length else -1
    values: dict[str, Any] = {
        "chassis_subtype": chassis_subtype,
        "chassis_id": _identifier(chassis_subtype, chassis, CHASSIS_MAC, CHASSIS_NETWORK),
        "chassis_raw": chassis,
        "port_subtype": port_subtype,
        "port_id": _identifier(port_subtype, port, PORT_MAC, PORT_NETWORK),
        "port_raw": port,
        "ttl": ttl,
    }
    types = [CHASSIS, PORT, TTL]
    addresses: list[str] = []
    interfaces: list[tuple[int, int]] = []
    organizations: list[tuple[int, int]] = []
    profinet: list[str] = []
    while position < len(data):
        if position + 2 > len(data):
            finding = finding or IdentityFinding.LENGTH_OVERRUN
            break
        kind, length = _header(data, position)
        if position + 2 + length > len(data):
            finding = finding or IdentityFinding.LENGTH_OVERRUN
            break
        value = bytes(data[position + 2 : position + 2 + length])
        position += 2 + length
        types.append(kind)
        if kind == END:
            if length:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
            break
        if kind in (CHASSIS, PORT, TTL):
            finding = finding or IdentityFinding.MISSING_MANDATORY_TLV
        elif kind in (PORT_DESCRIPTION, SYSTEM_NAME, SYSTEM_DESCRIPTION):
            if length > 255:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
            name = {PORT_DESCRIPTION: "port_description", SYSTEM_NAME: "system_name"}.get(
                kind, "system_description"
            )
            values.setdefault(name, text(value))
        elif kind == CAPABILITIES:
            if length != 4:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
            elif "capabilities" not in values:
                values["capabilities"] = int.from_bytes(value[:2], "big")
                values["enabled_capabilities"] = int.from_bytes(value[2:], "big")
        elif kind == MANAGEMENT:
            size = value[0] if value else 0
            if not (9 <= length <= 167 and 2 <= size <= 32 and size + 7 <= length):
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
                continue
            oid_length = value[size + 6]
            if size + 7 + oid_length != length:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
                continue
            addresses.append(_address(value[1], value[2 : 1 + size]))
            interfaces.append((value[size + 1], int.from_bytes(value[size + 2 : size + 6], "big")))
        elif kind == ORGANIZATION:
            if length < 4:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
                continue
            oui, subtype = int.from_bytes(value[:3], "big"), value[3]
            organizations.append((oui, subtype))
            if oui == PROFINET_OUI:
                profinet.append(PROFINET_SUBTYPES.get(subtype, f"subtype_{subtype}"))
    values.update(
        management_addresses=tuple(addresses),
        management_interfaces=tuple(interfaces),
        organization_tlvs=tuple(organizations),
        profinet=tuple(profinet),
        tlv_types=tuple(types),
    )
    status = ParseStatus.OK if finding == IdentityFinding.OK else ParseStatus.MALFORMED
    return LldpMessage(**values, status=status, finding=finding)


Array = npt.NDArray[Any]


def extract_lldp(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> list[LldpMessage]:
    """Every LLDPDU's message: the mandatory TLVs and their findings with numpy, the rest per row."""
    starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
    finding = np.where(lengths < 2, IdentityFinding.TRUNCATED, IdentityFinding.OK).astype(np.int64)
    position = np.zeros(len(starts), dtype=np.int64)
    found = []
    for expected in (CHASSIS, PORT, TTL):
        alive = finding == 0
        at = np.where(alive, starts + position, 0)
        word = big_endian_at(buffer, at, 2)
        kind, length = word >> 9, word & 0x1FF
        missing = alive & ((position + 2 > lengths) | (kind != expected))
        finding[missing] = IdentityFinding.MISSING_MANDATORY_TLV
        overrun = (finding == 0) & (position + 2 + length > lengths)
        finding[overrun] = IdentityFinding.LENGTH_OVERRUN
        found.append((position.copy(), length))
        position = position + 2 + length
    (chassis_at, chassis_length), (port_at, port_length), (ttl_at, ttl_length) = found
    alive = finding == 0
    ttl_start = np.where(alive, starts + ttl_at + 2, 0)
    ttl = np.where(ttl_length >= 2, big_endian_at(buffer, ttl_start, 2), -1)
    bad = (chassis_length < 2) | (chassis_length > 256) | (port_length < 2) | (port_length > 256)
    bad |= ttl_length != 2
    finding[alive & bad] = IdentityFinding.BAD_FIELD_LENGTH
    messages = []
    columns = (starts, lengths, finding, position, chassis_at, chassis_length, port_at, port_length, ttl)
    for start, size, found_code, after, c_at, c_length, p_at, p_length, ttl_value in zip(
        *(column.tolist() for column in columns), strict=True
    ):
        if found_code not in (IdentityFinding.OK, IdentityFinding.BAD_FIELD_LENGTH):
            messages.append(_failed(IdentityFinding(found_code)))
            continue
        data = buffer[start : start + size].tobytes()
        try:
            messages.append(
                _finish(data, after, c_at, c_length, p_at, p_length, ttl_value, IdentityFinding(found_code))
            )
        except Exception:
            messages.append(_failed(IdentityFinding.UNEXPECTED))
    return messages
