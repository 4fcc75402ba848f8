"""An independent S7comm encoder for the tests, written from the layouts the Wireshark s7comm
dissector documents (packet-s7comm.c) and the Snap7 reference manual, RFC 1006 (TPKT) and
ISO 8073 (COTP): no scapy layer exists for S7comm. It shares no code with the decoder."""

from __future__ import annotations

import struct

AREAS = {"P": 0x80, "I": 0x81, "Q": 0x82, "M": 0x83, "DB": 0x84, "DI": 0x85, "L": 0x86, "V": 0x87}
AREAS |= {"C": 0x1C, "T": 0x1D}


def tpkt(payload: bytes) -> bytes:
    """RFC 1006: version 3, reserved 0, length of the whole TPKT."""
    return struct.pack(">BBH", 3, 0, 4 + len(payload)) + payload


def dt(data: bytes, eot: bool = True, number: int = 0) -> bytes:
    """A COTP data TPDU (class 0): LI 2, code 0xF0, EOT bit and TPDU number, then user data."""
    return tpkt(bytes([2, 0xF0, (0x80 if eot else 0) | number]) + data)


def connect(code: int, src_tsap: bytes, dst_tsap: bytes, src_ref: int = 1, dst_ref: int = 0) -> bytes:
    """A COTP connection request (0xE0) or confirm (0xD0) with TSAP and TPDU size parameters."""
    params = b"\xc1" + bytes([len(src_tsap)]) + src_tsap + b"\xc2" + bytes([len(dst_tsap)]) + dst_tsap
    params += b"\xc0\x01\x0a"
    fixed = struct.pack(">BHHB", code, dst_ref, src_ref, 0)
    return tpkt(bytes([len(fixed) + len(params)]) + fixed + params)


def disconnect_request(src_ref: int = 1, dst_ref: int = 2) -> bytes:
    fixed = struct.pack(">BHHB", 0x80, dst_ref, src_ref, 0)
    return tpkt(bytes([len(fixed)]) + fixed)


def s7(rosctr: int, ref: int, param: bytes, data: bytes = b"", error: tuple[int, int] | None = None) -> bytes:
    """S7 header: protocol 0x32, ROSCTR, redundancy id, PDU reference, parameter and data
    lengths, and for ack (2) and ack_data (3) the error class and code."""
    head = struct.pack(">BBHHHH", 0x32, rosctr, 0, ref, len(param), len(data))
    if rosctr in (2, 3):
        head += bytes(error or (0, 0))
    return head + param + data


def any_item(transport: int, length: int, area: str, db: int = 0, byte: int = 0, bit: int = 0) -> bytes:
    """An S7ANY item: 0x12, length 10, syntax 0x10, transport size, length, DB, area, address."""
    address = byte if area in ("C", "T") else byte << 3 | bit
    return struct.pack(">BBBBHHB", 0x12, 10, 0x10, transport, length, db, AREAS[area]) + address.to_bytes(
        3, "big"
    )


def read_var_job(items: list[bytes], ref: int = 1) -> bytes:
    return s7(1, ref, bytes([0x04, len(items)]) + b"".join(items))


def data_item(code: int, transport: int, value: bytes, bits: bool = False, last: bool = True) -> bytes:
    """A data item: return code, transport size, length (in bits for sizes 3, 4, 5), value and a
    fill byte when odd and not last."""
    length = len(value) * 8 if bits else len(value)
    item = struct.pack(">BBH", code, transport, length) + value
    return item + (b"\x00" if len(value) % 2 and not last else b"")


def read_var_ack(values: list[bytes], ref: int = 1) -> bytes:
    return s7(3, ref, bytes([0x04, len(values)]), b"".join(values))


def write_var_job(items: list[bytes], values: list[bytes], ref: int = 2) -> bytes:
    return s7(1, ref, bytes([0x05, len(items)]) + b"".join(items), b"".join(values))


def write_var_ack(codes: list[int], ref: int = 2) -> bytes:
    return s7(3, ref, bytes([0x05, len(codes)]), bytes(codes))


def setup(rosctr: int, calling: int, called: int, pdu: int, ref: int = 0) -> bytes:
    return s7(rosctr, ref, struct.pack(">BBHHH", 0xF0, 0, calling, called, pdu))


def filename(kind: str, number: int, filesystem: str = "P") -> bytes:
    """A block file name: "_", block type (2 hex digits), number (5 digits), file system."""
    return f"_{kind}{number:05d}{filesystem}".encode()


def block_job(function: int, name: bytes | None, upload_id: int = 0, part2: bytes | None = None) -> bytes:
    """Request download (0x1A), download block (0x1B), download ended (0x1C), start upload
    (0x1D): function, status, 2 unknown bytes, 4 bytes (upload id), file name length, file name
    (and for request download a length-prefixed second part); upload (0x1E) and end upload
    (0x1F) end after the upload id."""
    param = struct.pack(">BBHI", function, 0, 0x0100, upload_id)
    if name is not None:
        param += bytes([len(name)]) + name
    if part2 is not None:
        param += bytes([len(part2)]) + part2
    return s7(1, 5, param)


def pi_service(service: bytes, block_names: list[bytes]) -> bytes:
    """PI service (0x28): 7 unknown bytes, parameter block (count, unknown, 8-character block
    names without the "_"), service name."""
    block = bytes([len(block_names), 0]) + b"".join(block_names) if block_names else b""
    param = b"\x28" + b"\x00" * 6 + b"\xfd" + struct.pack(">H", len(block)) + block
    return s7(1, 6, param + bytes([len(service)]) + service)


def plc_stop() -> bytes:
    return s7(1, 7, b"\x29" + b"\x00" * 5 + b"\x09P_PROGRAM")


def userdata(
    kind: int,
    group: int,
    sub: int,
    data: bytes,
    seq: int = 0,
    ref: int = 9,
    follow: tuple[int, int, int] | None = None,
) -> bytes:
    """Userdata: parameter head 00 01 12, length 4 or 8, method (0x11 request, 0x12 response),
    type and group nibbles, subfunction, sequence number (and data unit reference, last data
    unit, error code for length 8)."""
    method = 0x11 if kind == 4 else 0x12
    param = bytes([method, kind << 4 | group, sub, seq])
    if follow is not None:
        param += struct.pack(">BBH", *follow)
    return s7(7, ref, b"\x00\x01\x12" + bytes([len(param)]) + param, data)


def ud_data(code: int, transport: int, value: bytes) -> bytes:
    return struct.pack(">BBH", code, transport, len(value)) + value


def szl_request(szl_id: int, index: int, ref: int = 9) -> bytes:
    return userdata(4, 4, 1, ud_data(0xFF, 0x09, struct.pack(">HH", szl_id, index)), ref=ref)


def dbread_item(areas: list[tuple[int, int, int]]) -> bytes:
    """A DBREAD item (syntax 0xB0): area count, then bytes to read, DB number, start byte each."""
    spec = bytes([0xB0, len(areas)]) + b"".join(struct.pack(">BHH", *area) for area in areas)
    return bytes([0x12, len(spec)]) + spec


def szl_response(szl_id: int, index: int, records: bytes, size: int) -> bytes:
    value = struct.pack(">HHHH", szl_id, index, size, len(records) // size) + records
    return userdata(8, 4, 1, ud_data(0xFF, 0x09, value), seq=1, follow=(0, 0, 0))


def plus(version: int, opcode: int, function: int, digest: bool) -> bytes:
    """S7comm-plus: 0x72, version, data length, (digest length 32 and digest), opcode, reserved,
    function, reserved, sequence number; then the trailer 0x72, version, 0."""
    body = bytes([opcode]) + struct.pack(">HHHH", 0, function, 0, 1) + b"\x00" * 6
    if digest:
        body = b"\x20" + bytes(range(32)) + body
    return struct.pack(">BBH", 0x72, version, len(body)) + body + bytes([0x72, version, 0, 0])
