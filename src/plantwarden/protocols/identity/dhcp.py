"""DHCP (RFC 2131, options RFC 2132; BOOTP RFC 951; option overload RFC 2131 section 4.1;
long options RFC 3396; client FQDN RFC 4702; message types 9-18 RFC 3203, 4388, 6926, 7724).

Exact: `decode_dhcp(payload)`, one UDP payload (ports 67/68). Fast: `extract_dhcp(buffer, starts,
lengths)`: the fixed BOOTP header (op, htype, hlen, xid, flags, addresses, chaddr) and the magic
cookie with numpy for all rows at once, header findings included; the options of each row are
then walked in Python by the same code the exact decoder uses (`_finish`).

Options decoded: 53 message type, 12 host name, 50 requested address, 54 server id, 51 lease
time, 1 subnet mask, 3 routers, 6 DNS servers, 60 vendor class id, 61 client id, 55 parameter
request list, 81 client FQDN, 43 vendor specific (its length only), 52 overload (the file and
sname fields are then read as options). Every other option is kept by code only. Options that
occur more than once are concatenated (RFC 3396) before their length is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, ProtocolModule, Summary, Support
from plantwarden.protocols.identity.fields import Identity, big_endian_at, bytes_at, text
from plantwarden.protocols.identity.findings import IdentityFinding

MODULE = ProtocolModule(
    name="dhcp",
    support=Support.PARTIAL,
    references=(
        "RFC 2131: Dynamic Host Configuration Protocol",
        "RFC 2132: DHCP Options and BOOTP Vendor Extensions",
        "RFC 951: Bootstrap Protocol (BOOTP)",
        "RFC 3396: Encoding Long Options in DHCPv4",
        "RFC 4702: The DHCP Client Fully Qualified Domain Name (FQDN) Option",
        "RFC 4388: DHCP Leasequery (message types 10-13)",
    ),
    udp_ports=(67, 68),
)
HEADER = 236
COOKIE = 0x63825363
OPTIONS_START = HEADER + 4
SNAME = slice(44, 108)
FILE = slice(108, 236)
MESSAGE_TYPES = {
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
    9: "forcerenew",
    10: "leasequery",
    11: "leaseunassigned",
    12: "leaseunknown",
    13: "leaseactive",
    14: "bulkleasequery",
    15: "leasequerydone",
    16: "activeleasequery",
    17: "leasequerystatus",
    18: "tls",
}
EXACT_LENGTH = {53: 1, 52: 1, 50: 4, 54: 4, 51: 4, 1: 4}
MIN_LENGTH = {12: 1, 60: 1, 55: 1, 61: 2, 81: 3, 3: 4, 6: 4}
ADDRESS_LISTS = (3, 6)


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """One BOOTP/DHCP message; "none" is -1 for numbers, "" or () otherwise."""

    op: int = -1
    htype: int = -1
    hlen: int = -1
    hops: int = -1
    xid: int = -1
    secs: int = -1
    flags: int = -1
    ciaddr: int = -1
    yiaddr: int = -1
    siaddr: int = -1
    giaddr: int = -1
    chaddr: bytes = b""
    """The 16-byte client hardware address field as it stands."""
    has_cookie: bool = False
    message_type: int = -1
    host_name: str = ""
    requested_ip: int = -1
    server_id: int = -1
    lease_time: int = -1
    subnet_mask: int = -1
    routers: tuple[int, ...] = ()
    dns_servers: tuple[int, ...] = ()
    vendor_class: str = ""
    client_id: bytes = b""
    parameter_requests: tuple[int, ...] = ()
    client_fqdn: str = ""
    vendor_specific_length: int = -1
    overload: int = -1
    option_codes: tuple[int, ...] = field(default=())
    """Every option's code in the order met (main area, then file, then sname); pad and end not."""
    status: ParseStatus = ParseStatus.OK
    finding: IdentityFinding = IdentityFinding.OK

    @property
    def client_mac(self) -> int:
        """chaddr as a 48-bit MAC address when htype is Ethernet (1) and hlen 6, else -1."""
        if self.htype == 1 and self.hlen == 6 and len(self.chaddr) >= 6:
            return int.from_bytes(self.chaddr[:6], "big")
        return -1

    @property
    def broadcast(self) -> bool:
        return self.flags >= 0 and bool(self.flags & 0x8000)

    def summary(self) -> Summary:
        if 1 <= self.message_type <= max(MESSAGE_TYPES):
            code, name = self.message_type, MESSAGE_TYPES[self.message_type]
        else:
            code, name = -1, {1: "bootrequest", 2: "bootreply"}.get(self.op, "")
        return Summary(
            code,
            name,
            Operation.OTHER if name else Operation.MALFORMED,
            self.op == 2,
            quantity=len(self.option_codes),
            result={5: 0, 6: 1}.get(self.message_type, -1),
            status=self.status,
            finding=self.finding,
        )

    def identity(self) -> Identity:
        ip = next((a for a in (self.yiaddr, self.ciaddr, self.requested_ip) if a > 0), -1)
        return Identity(
            mac=self.client_mac, ip=ip, name=self.host_name, vendor_text=self.vendor_class, xid=self.xid
        )


def decode_dhcp(payload: bytes) -> DhcpMessage:
    """One BOOTP/DHCP message; never raises (an internal error gives finding UNEXPECTED)."""
    try:
        return _decode(payload)
    except Exception:
        return DhcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED)


def _decode(data: bytes) -> DhcpMessage:
    if len(data) < HEADER:
        return DhcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED)
    header: dict[str, Any] = {
        "op": data[0],
        "htype": data[1],
        "hlen": data[2],
        "hops": data[3],
        "xid": int.from_bytes(data[4:8], "big"),
        "secs": int.from_bytes(data[8:10], "big"),
        "flags": int.from_bytes(data[10:12], "big"),
        "ciaddr": int.from_bytes(data[12:16], "big"),
        "yiaddr": int.from_bytes(data[16:20], "big"),
        "siaddr": int.from_bytes(data[20:24], "big"),
        "giaddr": int.from_bytes(data[24:28], "big"),
        "chaddr": bytes(data[28:44]),
        "has_cookie": len(data) >= OPTIONS_START and int.from_bytes(data[236:240], "big") == COOKIE,
    }
    finding = IdentityFinding.OK
    if header["op"] not in (1, 2):
        finding = IdentityFinding.BAD_DHCP_OP
    elif len(data) > HEADER and not header["has_cookie"]:
        finding = IdentityFinding.BAD_MAGIC_COOKIE
    return _finish(data, header, finding)


def _walk(area: bytes) -> tuple[list[tuple[int, bytes]], IdentityFinding, bool]:
    """The options of one area: (code, value) pairs, a finding, and whether End (255) was met."""
    options: list[tuple[int, bytes]] = []
    position = 0
    while position < len(area):
        code = area[position]
        if code == 0:
            position += 1
            continue
        if code == 255:
            return options, IdentityFinding.OK, True
        if position + 2 > len(area) or position + 2 + area[position + 1] > len(area):
            return options, IdentityFinding.LENGTH_OVERRUN, False
        length = area[position + 1]
        options.append((code, bytes(area[position + 2 : position + 2 + length])))
        position += 2 + length
    return options, IdentityFinding.OK, False


def _fqdn(value: bytes) -> str:
    flags, name = value[0], value[3:]
    if not flags & 0x04:
        return text(name)
    labels, position = [], 0
    while position < len(name) and name[position] != 0:
        size = name[position]
        labels.append(name[position + 1 : position + 1 + size].decode("utf-8", "replace"))
        position += 1 + size
    return ".".join(labels)


def _addresses(value: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value) - 3, 4))


def _finish(data: bytes, header: dict[str, Any], finding: IdentityFinding) -> DhcpMessage:
    """The options after a header read (by `_decode`, or by the fast path's numpy header), and
    the message; `finding` is the header's (OK, BAD_DHCP_OP or BAD_MAGIC_COOKIE)."""

    def done(values: dict[str, Any], found: IdentityFinding) -> DhcpMessage:
        status = ParseStatus.OK if found == IdentityFinding.OK else ParseStatus.MALFORMED
        return DhcpMessage(**header, **values, status=status, finding=found)

    if finding != IdentityFinding.OK or not header["has_cookie"]:
        return done({}, finding)
    options, finding, ended = _walk(data[OPTIONS_START:])
    if finding == IdentityFinding.OK and not ended:
        finding = IdentityFinding.NO_END_OPTION
    overload = next((value[0] for code, value in options if code == 52 and len(value) == 1), -1)
    if overload >= 0:
        if overload not in (1, 2, 3):
            finding = finding or IdentityFinding.BAD_OVERLOAD
        areas = [FILE] * (overload in (1, 3)) + [SNAME] * (overload in (2, 3))
        for area in areas:
            more, found, _ = _walk(data[area])
            if any(code == 52 for code, _ in more):
                found = found or IdentityFinding.BAD_OVERLOAD
            finding = finding or found
            options += more
    joined: dict[int, bytes] = {}
    for code, value in options:
        joined[code] = joined.get(code, b"") + value
    values: dict[str, Any] = {"option_codes": tuple(code for code, _ in options)}
    if overload >= 0:
        values["overload"] = overload
    for code, value in joined.items():
        exact, least = EXACT_LENGTH.get(code), MIN_LENGTH.get(code, 0)
        if (
            (exact is not None and len(value) != exact)
            or len(value) < least
            or (code in ADDRESS_LISTS and len(value) % 4)
        ):
            finding = finding or IdentityFinding.BAD_FIELD_LENGTH
            continue
        if code == 53:
            values["message_type"] = value[0]
            if not 1 <= value[0] <= max(MESSAGE_TYPES):
                finding = finding or IdentityFinding.BAD_DHCP_MESSAGE_TYPE
        elif code == 12:
            values["host_name"] = text(value)
        elif code == 50:
            values["requested_ip"] = int.from_bytes(value, "big")
        elif code == 54:
            values["server_id"] = int.from_bytes(value, "big")
        elif code == 51:
            values["lease_time"] = int.from_bytes(value, "big")
        elif code == 1:
            values["subnet_mask"] = int.from_bytes(value, "big")
        elif code == 3:
            values["routers"] = _addresses(value)
        elif code == 6:
            values["dns_servers"] = _addresses(value)
        elif code == 60:
            values["vendor_class"] = text(value)
        elif code == 61:
            values["client_id"] = value
        elif code == 55:
            values["parameter_requests"] = tuple(value)
        elif code == 81:
            values["client_fqdn"] = _fqdn(value)
        elif code == 43:
            values["vendor_specific_length"] = len(value)
    return done(values, finding)


Array = npt.NDArray[Any]


def extract_dhcp(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> list[DhcpMessage]:
    """Every payload's message: the header and its findings with numpy, options per row."""
    starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
    has_header = lengths >= HEADER
    at = np.where(has_header, starts, 0)
    op, htype, hlen, hops = (bytes_at(buffer, at + i) for i in range(4))
    xid, secs, flags = (
        big_endian_at(buffer, at + 4, 4),
        big_endian_at(buffer, at + 8, 2),
        big_endian_at(buffer, at + 10, 2),
    )
    ciaddr, yiaddr = big_endian_at(buffer, at + 12, 4), big_endian_at(buffer, at + 16, 4)
    siaddr, giaddr = big_endian_at(buffer, at + 20, 4), big_endian_at(buffer, at + 24, 4)
    has_cookie = (lengths >= OPTIONS_START) & (big_endian_at(buffer, at + HEADER, 4) == COOKIE)
    finding = np.select(
        [~has_header, (op != 1) & (op != 2), (lengths > HEADER) & ~has_cookie],
        [IdentityFinding.TRUNCATED, IdentityFinding.BAD_DHCP_OP, IdentityFinding.BAD_MAGIC_COOKIE],
        IdentityFinding.OK,
    )
    columns = [op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr]
    names = ("op", "htype", "hlen", "hops", "xid", "secs", "flags", "ciaddr", "yiaddr", "siaddr", "giaddr")
    rows = zip(*(column.tolist() for column in columns), strict=True)
    messages = []
    for values, start, length, cookie, found in zip(
        rows, starts.tolist(), lengths.tolist(), has_cookie.tolist(), finding.tolist(), strict=True
    ):
        if found == IdentityFinding.TRUNCATED:
            messages.append(DhcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED))
            continue
        data = buffer[start : start + length].tobytes()
        header = dict(zip(names, values, strict=True))
        header["chaddr"] = data[28:44]
        header["has_cookie"] = cookie
        try:
            messages.append(_finish(data, header, IdentityFinding(found)))
        except Exception:
            messages.append(DhcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED))
    return messages
