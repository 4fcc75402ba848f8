"""ARP (RFC 826; RARP RFC 903; InARP RFC 2390; probes and announcements RFC 5227).

Exact: `decode_arp(data)` from the ARP header on (after Ethernet and VLAN tags; Ethernet padding
after the addresses is ignored). Fast: `extract_arp(buffer, starts, lengths)`, entirely with
numpy, the same rows as the exact decoder's.

Ethernet (hardware type 1, or 6 for IEEE 802) with IPv4 (0x0800), address sizes 6 and 4, is
decoded whole; other address formats are recorded by operation with status PARTIAL and no
addresses. Gratuitous ARP and probes are message fields, not findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import (
    Operation,
    ParseStatus,
    ProtocolModule,
    Summary,
    SummaryColumns,
    Support,
)
from plantwarden.protocols.identity.fields import Identity, big_endian_at, bytes_at, ipv4_text
from plantwarden.protocols.identity.findings import IdentityFinding

ETHERTYPE_ARP = 0x0806
ETHERTYPE_RARP = 0x8035
MODULE = ProtocolModule(
    name="arp",
    support=Support.COMPLETE,
    references=(
        "RFC 826: An Ethernet Address Resolution Protocol",
        "RFC 903: A Reverse Address Resolution Protocol",
        "RFC 2390: Inverse Address Resolution Protocol",
        "RFC 5227: IPv4 Address Conflict Detection (probes, announcements)",
        "IANA ARP parameters (operation codes, hardware types)",
    ),
    ethertypes=(ETHERTYPE_ARP, ETHERTYPE_RARP),
)
OPCODES = {
    1: "request",
    2: "reply",
    3: "rarp_request",
    4: "rarp_reply",
    5: "drarp_request",
    6: "drarp_reply",
    7: "drarp_error",
    8: "inarp_request",
    9: "inarp_reply",
    10: "arp_nak",
}
RESPONSES = frozenset({2, 4, 6, 7, 9, 10})
MAX_OPCODE = 25
HEADER = 8


def opcode_name(opcode: int) -> str:
    return OPCODES.get(opcode, f"opcode_{opcode}")


@dataclass(frozen=True, slots=True)
class ArpMessage:
    """One ARP packet; addresses -1 when not decoded (short, or not Ethernet/IPv4)."""

    htype: int = -1
    ptype: int = -1
    hlen: int = -1
    plen: int = -1
    opcode: int = -1
    sender_mac: int = -1
    sender_ip: int = -1
    target_mac: int = -1
    target_ip: int = -1
    gratuitous: bool = False
    probe: bool = False
    status: ParseStatus = ParseStatus.OK
    finding: IdentityFinding = IdentityFinding.OK

    def summary(self) -> Summary:
        if self.opcode < 0:
            return Summary(-1, "", Operation.MALFORMED, False, status=self.status, finding=self.finding)
        is_response = self.opcode in RESPONSES
        address = self.sender_ip if is_response else self.target_ip
        return Summary(
            self.opcode,
            opcode_name(self.opcode),
            Operation.OTHER,
            is_response,
            address=address,
            quantity=1 if address >= 0 else 0,
            targets=(ipv4_text(address),) if address >= 0 else (),
            status=self.status,
            finding=self.finding,
        )

    def identity(self) -> Identity:
        return Identity(
            mac=self.sender_mac,
            ip=self.sender_ip if self.sender_ip > 0 else -1,
            gratuitous=self.gratuitous,
            probe=self.probe,
        )


def decode_arp(data: bytes) -> ArpMessage:
    """One ARP packet; never raises (an internal error gives finding UNEXPECTED)."""
    try:
        return _decode(data)
    except Exception:
        return ArpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED)


def _decode(data: bytes) -> ArpMessage:
    if len(data) < HEADER:
        return ArpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED)
    htype, ptype = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    hlen, plen, opcode = data[4], data[5], int.from_bytes(data[6:8], "big")
    header: dict[str, Any] = {"htype": htype, "ptype": ptype, "hlen": hlen, "plen": plen, "opcode": opcode}
    if len(data) < HEADER + 2 * (hlen + plen):
        return ArpMessage(**header, status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED)
    if not (htype in (1, 6) and ptype == 0x0800 and hlen == 6 and plen == 4):
        if not 1 <= opcode <= MAX_OPCODE:
            return ArpMessage(**header, status=ParseStatus.MALFORMED, finding=IdentityFinding.BAD_ARP_OPCODE)
        return ArpMessage(**header, status=ParseStatus.PARTIAL)
    sender_mac = int.from_bytes(data[8:14], "big")
    sender_ip = int.from_bytes(data[14:18], "big")
    target_mac = int.from_bytes(data[18:24], "big")
    target_ip = int.from_bytes(data[24:28], "big")
    bad = not 1 <= opcode <= MAX_OPCODE
    return ArpMessage(
        **header,
        sender_mac=sender_mac,
        sender_ip=sender_ip,
        target_mac=target_mac,
        target_ip=target_ip,
        gratuitous=opcode in (1, 2) and sender_ip == target_ip and sender_ip != 0,
        probe=opcode == 1 and sender_ip == 0,
        status=ParseStatus.MALFORMED if bad else ParseStatus.OK,
        finding=IdentityFinding.BAD_ARP_OPCODE if bad else IdentityFinding.OK,
    )


Array = npt.NDArray[Any]
_NAMES = np.array([opcode_name(code) for code in range(65536)], dtype=object)


def extract_arp(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[SummaryColumns, dict[str, Array]]:
    """Every frame's summary and identity columns, all with numpy (see the module docstring)."""
    rows = len(starts)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    has_header = lengths >= HEADER
    at = np.where(has_header, starts, 0)
    htype, ptype = big_endian_at(buffer, at, 2), big_endian_at(buffer, at + 2, 2)
    hlen, plen = bytes_at(buffer, at + 4), bytes_at(buffer, at + 5)
    opcode = np.where(has_header, big_endian_at(buffer, at + 6, 2), -1)
    complete = has_header & (lengths >= HEADER + 2 * (hlen + plen))
    ethernet_ipv4 = complete & np.isin(htype, (1, 6)) & (ptype == 0x0800) & (hlen == 6) & (plen == 4)
    good_opcode = (opcode >= 1) & (opcode <= MAX_OPCODE)

    def address(offset: int, size: int) -> npt.NDArray[np.int64]:
        return np.where(ethernet_ipv4, big_endian_at(buffer, at + offset, size), -1)

    sender_mac, sender_ip = address(8, 6), address(14, 4)
    target_ip = address(24, 4)
    finding = np.select(
        [~complete, ~good_opcode],
        [IdentityFinding.TRUNCATED, IdentityFinding.BAD_ARP_OPCODE],
        IdentityFinding.OK,
    ).astype(np.uint8)
    status = np.select(
        [finding != 0, ~ethernet_ipv4], [ParseStatus.MALFORMED, ParseStatus.PARTIAL], ParseStatus.OK
    ).astype(np.uint8)
    is_response = np.isin(opcode, tuple(RESPONSES))
    summary_address = np.where(is_response, sender_ip, target_ip)
    summary_address = np.where(has_header, summary_address, -1)
    function = np.where(opcode >= 0, _NAMES[np.clip(opcode, 0, 65535)], "")
    targets = np.empty(rows, dtype=object)
    targets[:] = [(ipv4_text(a),) if a >= 0 else () for a in summary_address.tolist()]
    summary = SummaryColumns(
        function_code=opcode.astype(np.int32),
        function=function.astype(object),
        operation=np.where(has_header, Operation.OTHER, Operation.MALFORMED).astype(np.uint8),
        is_response=is_response & has_header,
        unit=np.full(rows, -1, dtype=np.int32),
        address=summary_address.astype(np.int64),
        quantity=(summary_address >= 0).astype(np.int32),
        targets=targets,
        result=np.full(rows, -1, dtype=np.int32),
        status=status,
        finding=finding,
    )
    identity = {
        "mac": sender_mac,
        "ip": np.where(sender_ip > 0, sender_ip, -1),
        "gratuitous": np.isin(opcode, (1, 2)) & (sender_ip == target_ip) & (sender_ip > 0),
        "probe": (opcode == 1) & (sender_ip == 0),
    }
    return summary, identity
