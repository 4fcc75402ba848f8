"""PROFINET DCP, the Discovery and basic Configuration Protocol (IEC 61158-6-10, PNO "Application
Layer protocol for decentralized periphery", DCP services and blocks).

Exact: `decode_dcp(data)`, one DCP frame from its frame id on (EtherType 0x8892, after Ethernet
and VLAN tags; padding after DCPDataLength is ignored). Fast: `extract_dcp(buffer, starts,
lengths)`: frame id, service id and type, xid, response delay and data length, with their
findings, with numpy for all rows at once; the blocks of each row are walked in Python by the
same code the exact decoder uses (`_finish`).

Blocks by service: an Identify request carries filter blocks (no block info), a Get request a
list of option/suboption pairs, a Set request blocks with a block qualifier (store permanently
or temporarily; the reset mode of a factory reset), responses and Hello blocks with block info
(except Control/Response 5/4: option, suboption, block error). Decoded: IP (MAC 1/1, IP
parameter 1/2, full IP suite 1/3), device properties (vendor text 2/1, NameOfStation 2/2, device
id 2/3, role 2/4, options 2/5, alias 2/6, instance 2/7, OEM id 2/8), DHCP 3/x (by suboption),
control (start 5/1, stop 5/2, signal 5/3, response 5/4, factory reset 5/5, reset to factory
5/6), device initiative 6/1, all selector 0xFF/0xFF; manufacturer-specific options by number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import (
    MAX_TARGETS,
    Operation,
    ParseStatus,
    ProtocolModule,
    Summary,
    Support,
)
from plantwarden.protocols.identity.fields import Identity, big_endian_at, ipv4_text, mac_text, text
from plantwarden.protocols.identity.findings import IdentityFinding

ETHERTYPE_PROFINET = 0x8892
MODULE = ProtocolModule(
    name="pn_dcp",
    support=Support.PARTIAL,
    references=(
        "IEC 61158-6-10: Fieldbus specifications, Application layer protocol specification, "
        "Type 10 elements (PROFINET IO), DCP",
        "PNO: Application Layer protocol for decentralized periphery (PROFINET IO), DCP services",
    ),
    ethertypes=(ETHERTYPE_PROFINET,),
)
HELLO_FRAME, GET_SET_FRAME, IDENTIFY_REQUEST_FRAME, IDENTIFY_RESPONSE_FRAME = 0xFEFC, 0xFEFD, 0xFEFE, 0xFEFF
GET, SET, IDENTIFY, HELLO = 3, 4, 5, 6
SERVICES = {GET: "get", SET: "set", IDENTIFY: "identify", HELLO: "hello"}
REQUEST, RESPONSE_SUCCESS, RESPONSE_NOT_SUPPORTED = 0, 1, 5
HEADER = 12
NOT_SUPPORTED_RESULT = 256
"""The result of a "request not supported" response (above every BlockError)."""
BLOCKS = {
    (1, 1): "mac",
    (1, 2): "ip_parameter",
    (1, 3): "full_ip_suite",
    (2, 1): "vendor_text",
    (2, 2): "name_of_station",
    (2, 3): "device_id",
    (2, 4): "device_role",
    (2, 5): "device_options",
    (2, 6): "alias_name",
    (2, 7): "device_instance",
    (2, 8): "oem_device_id",
    (5, 1): "start_transaction",
    (5, 2): "end_transaction",
    (5, 3): "signal",
    (5, 4): "response",
    (5, 5): "reset_factory_settings",
    (5, 6): "reset_to_factory",
    (6, 1): "device_initiative",
    (0xFF, 0xFF): "all",
}
SIZES = {
    (1, 1): 6,
    (1, 2): 12,
    (1, 3): 28,
    (2, 3): 4,
    (2, 4): 2,
    (2, 7): 2,
    (2, 8): 4,
    (5, 3): 2,
    (6, 1): 2,
    (0xFF, 0xFF): 0,
}
"""The value size (after block info or qualifier) of the fixed-size blocks."""
RESETS = ((5, 5), (5, 6))
SIGNAL = (5, 3)
CONTROL_RESPONSE = (5, 4)
SETS_IP = ((1, 2), (1, 3))
NAME_OF_STATION = (2, 2)
TRANSACTION = ((5, 1), (5, 2))
"""Start and end of a transaction: they frame a Set, they say nothing about what it sets."""


def block_name(option: int, suboption: int) -> str:
    if (option, suboption) in BLOCKS:
        return BLOCKS[option, suboption]
    if option == 3:
        return f"dhcp_{suboption}"
    return f"option_{option}_{suboption}"


@dataclass(frozen=True, slots=True)
class DcpBlock:
    """One block (or one option/suboption pair of a Get request: `length` -1)."""

    option: int
    suboption: int
    length: int = -1
    info: int = -1
    """Block info (responses, Hello) or block qualifier (Set requests); -1 where there is none."""
    value: bytes = b""
    """The bytes after the block info or qualifier."""

    @property
    def name(self) -> str:
        return block_name(self.option, self.suboption)


@dataclass(frozen=True, slots=True)
class DcpMessage:
    """One DCP frame; "none" is -1 for numbers, "" or () otherwise."""

    frame_id: int = -1
    service_id: int = -1
    service_type: int = -1
    xid: int = -1
    response_delay: int = -1
    """ResponseDelayFactor of an Identify request; the reserved field of other frames."""
    data_length: int = -1
    blocks: tuple[DcpBlock, ...] = ()
    mac: int = -1
    ip: int = -1
    netmask: int = -1
    gateway: int = -1
    dns_servers: tuple[int, ...] = ()
    ip_block_info: int = -1
    vendor_text: str = ""
    name_of_station: str = ""
    vendor_id: int = -1
    device_id: int = -1
    device_role: int = -1
    device_options: tuple[tuple[int, int], ...] = ()
    alias_name: str = ""
    device_instance: int = -1
    oem_vendor_id: int = -1
    oem_device_id: int = -1
    signal_value: int = -1
    device_initiative: int = -1
    control_responses: tuple[tuple[int, int, int], ...] = ()
    """(option, suboption, block error) of each Control/Response block."""
    qualifiers: tuple[int, ...] = ()
    """The block qualifier of each block of a Set request (1: store permanently, 0: temporarily)."""
    sets_ip: bool = False
    sets_name: bool = False
    resets: bool = False
    signals: bool = False
    status: ParseStatus = ParseStatus.OK
    finding: IdentityFinding = IdentityFinding.OK

    @property
    def is_response(self) -> bool:
        return self.service_type >= 0 and bool(self.service_type & 1)

    def targets(self) -> tuple[str, ...]:
        return tuple(_target(block) for block in self.blocks[:MAX_TARGETS])

    def summary(self) -> Summary:
        if self.service_id < 0:
            return Summary(-1, "", Operation.MALFORMED, False, status=self.status, finding=self.finding)
        if self.service_type == REQUEST:
            result = -1
        elif self.service_type == RESPONSE_NOT_SUPPORTED:
            result = NOT_SUPPORTED_RESULT
        else:
            result = next((error for _, _, error in self.control_responses if error), 0)
        return Summary(
            self.service_id,
            SERVICES.get(self.service_id, f"service_{self.service_id}"),
            self._operation(),
            self.is_response,
            address=self._address(),
            quantity=len(self.blocks),
            targets=self.targets(),
            result=result,
            status=self.status,
            finding=self.finding,
        )

    def _address(self) -> int:
        """option << 8 | suboption of the block the frame is about (-1 without blocks): for a Set
        (and its response, by the blocks it answers) the first reset, else IP, else NameOfStation
        block, else the first block but the start and end of a transaction; for the other
        services the first block (Get's first option asked, Identify's first filter)."""
        pairs = [(o, s) for o, s, _ in self.control_responses]
        pairs += [(b.option, b.suboption) for b in self.blocks if (b.option, b.suboption) != CONTROL_RESPONSE]
        if not pairs:
            return -1
        if self.service_id == SET:
            ranked = [p for wanted in (RESETS, SETS_IP, (NAME_OF_STATION,)) for p in pairs if p in wanted]
            ranked += [p for p in pairs if p not in TRANSACTION] or pairs
            pairs = ranked
        option, suboption = pairs[0]
        return option << 8 | suboption

    def _operation(self) -> Operation:
        if self.service_id in (GET, IDENTIFY, HELLO):
            return Operation.IDENTIFY
        if self.service_id != SET:
            return Operation.OTHER
        touched = [(o, s) for o, s, _ in self.control_responses] if self.is_response else []
        touched += [
            (b.option, b.suboption) for b in self.blocks if (b.option, b.suboption) != CONTROL_RESPONSE
        ]
        if any(pair in (*RESETS, SIGNAL) for pair in touched) or (
            touched and all(option == 5 for option, _ in touched)
        ):
            return Operation.CONTROL
        return Operation.WRITE

    def identity(self) -> Identity:
        return Identity(
            mac=self.mac,
            ip=self.ip,
            name=self.name_of_station,
            vendor_text=self.vendor_text,
            vendor_id=self.vendor_id,
            device_id=self.device_id,
            xid=self.xid,
            sets_ip=self.sets_ip,
            sets_name=self.sets_name,
            resets=self.resets,
        )


def _target(block: DcpBlock) -> str:
    pair, value = (block.option, block.suboption), block.value
    if block.length < 0 or len(value) != SIZES.get(pair, len(value)):
        return block.name
    if pair == (1, 1):
        return f"mac={mac_text(int.from_bytes(value, 'big'))}"
    if pair in SETS_IP:
        return f"{block.name}={ipv4_text(int.from_bytes(value[:4], 'big'))}"
    if pair in ((2, 1), (2, 2), (2, 6)):
        return f"{block.name}={text(value)}"
    if pair in ((2, 3), (2, 8)):
        return f"{block.name}=0x{value[:2].hex()}/0x{value[2:].hex()}"
    if pair == CONTROL_RESPONSE and len(value) == 3:
        return f"response={block_name(value[0], value[1])}:{value[2]}"
    return block.name


def decode_dcp(data: bytes) -> DcpMessage:
    """One DCP frame; never raises (an internal error gives finding UNEXPECTED)."""
    try:
        return _decode(data)
    except Exception:
        return DcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED)


def service_fits(frame_id: int, service_id: int, service_type: int) -> bool:
    """Whether a frame id carries this service id and type."""
    if service_type not in (REQUEST, RESPONSE_SUCCESS, RESPONSE_NOT_SUPPORTED):
        return False
    if frame_id == IDENTIFY_REQUEST_FRAME:
        return service_id == IDENTIFY and service_type == REQUEST
    if frame_id == IDENTIFY_RESPONSE_FRAME:
        return service_id == IDENTIFY and service_type != REQUEST
    if frame_id == GET_SET_FRAME:
        return service_id in (GET, SET)
    return frame_id == HELLO_FRAME and service_id == HELLO and service_type == REQUEST


def _decode(data: bytes) -> DcpMessage:
    if len(data) < 2:
        return DcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED)
    frame_id = int.from_bytes(data[:2], "big")
    if not HELLO_FRAME <= frame_id <= IDENTIFY_RESPONSE_FRAME:
        return DcpMessage(
            frame_id=frame_id, status=ParseStatus.MALFORMED, finding=IdentityFinding.NOT_DCP_FRAME_ID
        )
    if len(data) < HEADER:
        return DcpMessage(frame_id=frame_id, status=ParseStatus.MALFORMED, finding=IdentityFinding.TRUNCATED)
    header = {
        "frame_id": frame_id,
        "service_id": data[2],
        "service_type": data[3],
        "xid": int.from_bytes(data[4:8], "big"),
        "response_delay": int.from_bytes(data[8:10], "big"),
        "data_length": int.from_bytes(data[10:12], "big"),
    }
    finding = IdentityFinding.OK
    if not service_fits(frame_id, data[2], data[3]):
        finding = IdentityFinding.BAD_DCP_SERVICE
    elif HEADER + header["data_length"] > len(data):
        finding = IdentityFinding.LENGTH_OVERRUN
    return _finish(data, header, finding)


def _finish(data: bytes, header: dict[str, Any], finding: IdentityFinding) -> DcpMessage:
    """The blocks after a header read (by `_decode`, or by the fast path's numpy), and the
    message; `finding` is the header's (OK, BAD_DCP_SERVICE or LENGTH_OVERRUN)."""
    if finding != IdentityFinding.OK:
        return DcpMessage(**header, status=ParseStatus.MALFORMED, finding=finding)
    body = bytes(data[HEADER : HEADER + header["data_length"]])
    service, kind = header["service_id"], header["service_type"]
    blocks: list[DcpBlock] = []
    if service == GET and kind == REQUEST:
        if len(body) % 2:
            finding = IdentityFinding.BAD_FIELD_LENGTH
        blocks = [DcpBlock(body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]
        return _message(header, blocks, finding, set())
    position, broken = 0, set[int]()
    while position < len(body):
        if position + 4 > len(body):
            finding = finding or IdentityFinding.LENGTH_OVERRUN
            break
        option, suboption = body[position], body[position + 1]
        length = int.from_bytes(body[position + 2 : position + 4], "big")
        if position + 4 + length > len(body):
            finding = finding or IdentityFinding.LENGTH_OVERRUN
            break
        value = body[position + 4 : position + 4 + length]
        position += 4 + length
        if length % 2 and position < len(body):
            position += 1  # the padding byte after an odd block
        with_info = kind != REQUEST or service in (SET, HELLO)
        if (option, suboption) == CONTROL_RESPONSE and kind != REQUEST:
            with_info = False
            if length != 3:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
        if with_info:
            if length < 2:
                finding = finding or IdentityFinding.BAD_FIELD_LENGTH
                blocks.append(DcpBlock(option, suboption, length, -1, value))
                broken.add(len(blocks) - 1)
                continue
            info, value = int.from_bytes(value[:2], "big"), value[2:]
        else:
            info = -1
        size = SIZES.get((option, suboption))
        if (size is not None and len(value) != size) or ((option, suboption) == (2, 5) and len(value) % 2):
            finding = finding or IdentityFinding.BAD_FIELD_LENGTH
        blocks.append(DcpBlock(option, suboption, length, info, value))
    return _message(header, blocks, finding, broken)


def _message(
    header: dict[str, Any], blocks: list[DcpBlock], finding: IdentityFinding, broken: set[int]
) -> DcpMessage:
    """The message of decoded blocks; the `broken` ones (no room for their block info or
    qualifier) give no values."""
    values: dict[str, Any] = {"blocks": tuple(blocks)}
    setting = header["service_id"] == SET and header["service_type"] == REQUEST
    controls: list[tuple[int, int, int]] = []
    for index, block in enumerate(blocks):
        pair, value = (block.option, block.suboption), block.value
        if index in broken or block.length < 0 or len(value) != SIZES.get(pair, len(value)):
            continue
        if pair == CONTROL_RESPONSE and block.info < 0:
            if len(value) == 3:
                controls.append((value[0], value[1], value[2]))
            continue
        first: dict[str, Any] = {}
        if pair == (1, 1):
            first["mac"] = int.from_bytes(value, "big")
        elif pair in SETS_IP:
            first.update(
                ip=int.from_bytes(value[0:4], "big"),
                netmask=int.from_bytes(value[4:8], "big"),
                gateway=int.from_bytes(value[8:12], "big"),
                dns_servers=tuple(int.from_bytes(value[i : i + 4], "big") for i in range(12, len(value), 4)),
                ip_block_info=-1 if setting else block.info,
            )
        elif pair == (2, 1):
            first["vendor_text"] = text(value)
        elif pair == NAME_OF_STATION:
            first["name_of_station"] = text(value)
        elif pair == (2, 3):
            first.update(
                vendor_id=int.from_bytes(value[:2], "big"), device_id=int.from_bytes(value[2:], "big")
            )
        elif pair == (2, 4):
            first["device_role"] = value[0]
        elif pair == (2, 5) and len(value) % 2 == 0:
            first["device_options"] = tuple((value[i], value[i + 1]) for i in range(0, len(value), 2))
        elif pair == (2, 6):
            first["alias_name"] = text(value)
        elif pair == (2, 7):
            first["device_instance"] = int.from_bytes(value, "big")
        elif pair == (2, 8):
            first.update(
                oem_vendor_id=int.from_bytes(value[:2], "big"), oem_device_id=int.from_bytes(value[2:], "big")
            )
        elif pair == SIGNAL:
            first["signal_value"] = int.from_bytes(value, "big")
        elif pair == (6, 1):
            first["device_initiative"] = int.from_bytes(value, "big")
        for name, item in first.items():
            values.setdefault(name, item)
    pairs = {(block.option, block.suboption) for block in blocks}
    if setting:
        values.update(
            qualifiers=tuple(block.info for block in blocks),
            sets_ip=bool(pairs & set(SETS_IP)),
            sets_name=NAME_OF_STATION in pairs,
            resets=bool(pairs & set(RESETS)),
            signals=SIGNAL in pairs,
        )
    values["control_responses"] = tuple(controls)
    status = ParseStatus.OK if finding == IdentityFinding.OK else ParseStatus.MALFORMED
    return DcpMessage(**header, **values, status=status, finding=finding)


Array = npt.NDArray[Any]


def extract_dcp(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> list[DcpMessage]:
    """Every frame's message: the header and its findings with numpy, the blocks per row."""
    starts, lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)

    def be(offset: int, size: int, at: Array) -> npt.NDArray[np.int64]:
        return big_endian_at(buffer, at + offset, size)

    has_frame_id = lengths >= 2
    frame_id = np.where(has_frame_id, be(0, 2, np.where(has_frame_id, starts, 0)), -1)
    dcp = (frame_id >= HELLO_FRAME) & (frame_id <= IDENTIFY_RESPONSE_FRAME)
    has_header = dcp & (lengths >= HEADER)
    at = np.where(has_header, starts, 0)
    service_id, service_type = be(2, 1, at), be(3, 1, at)
    xid, delay, data_length = be(4, 4, at), be(8, 2, at), be(10, 2, at)
    typed = np.isin(service_type, (REQUEST, RESPONSE_SUCCESS, RESPONSE_NOT_SUPPORTED))
    request = service_type == REQUEST
    fits = typed & (
        ((frame_id == IDENTIFY_REQUEST_FRAME) & (service_id == IDENTIFY) & request)
        | ((frame_id == IDENTIFY_RESPONSE_FRAME) & (service_id == IDENTIFY) & ~request)
        | ((frame_id == GET_SET_FRAME) & np.isin(service_id, (GET, SET)))
        | ((frame_id == HELLO_FRAME) & (service_id == HELLO) & request)
    )
    finding = np.select(
        [~has_frame_id, ~dcp, ~has_header, ~fits, HEADER + data_length > lengths],
        [
            IdentityFinding.TRUNCATED,
            IdentityFinding.NOT_DCP_FRAME_ID,
            IdentityFinding.TRUNCATED,
            IdentityFinding.BAD_DCP_SERVICE,
            IdentityFinding.LENGTH_OVERRUN,
        ],
        IdentityFinding.OK,
    )
    messages = []
    columns = (
        starts,
        lengths,
        finding,
        frame_id,
        has_header,
        service_id,
        service_type,
        xid,
        delay,
        data_length,
    )
    for start, size, found, frame, header_read, *fields in zip(
        *(column.tolist() for column in columns), strict=True
    ):
        if not header_read:
            messages.append(
                DcpMessage(frame_id=frame, status=ParseStatus.MALFORMED, finding=IdentityFinding(found))
            )
            continue
        header = dict(
            zip(("service_id", "service_type", "xid", "response_delay", "data_length"), fields, strict=True)
        )
        data = buffer[start : start + size].tobytes()
        try:
            messages.append(_finish(data, {"frame_id": frame, **header}, IdentityFinding(found)))
        except Exception:
            messages.append(DcpMessage(status=ParseStatus.MALFORMED, finding=IdentityFinding.UNEXPECTED))
    return messages
