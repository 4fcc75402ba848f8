"""Modbus/TCP messages as bytes: the requests the sim's clients send and the answers a PLC gives.

This is the sending side only (the sensor's decoder, held to tshark, is `protocols.modbus`). It
builds MBAP headers and PDUs for the function codes the plant uses (Modbus Application Protocol
Specification V1.1b3): reads 1-4, writes 5, 6, 15 and 16, diagnostics 8 and the encapsulated
interface 43/14 (read device identification). `response_pdu` answers a request from a register
image the way a PLC would, with exception 2 for an address it does not hold, so the traffic
generator and the live plant give the same bytes for the same exchange.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from plantwarden.core.errors import InvalidInput

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING_REGISTERS = 3
READ_INPUT_REGISTERS = 4
WRITE_SINGLE_COIL = 5
WRITE_SINGLE_REGISTER = 6
DIAGNOSTICS = 8
WRITE_MULTIPLE_COILS = 15
WRITE_MULTIPLE_REGISTERS = 16
ENCAPSULATED_INTERFACE = 43

READ_DEVICE_IDENTIFICATION = 0x0E
"""The MEI type of function 43 that reads device identification."""
RETURN_QUERY_DATA = 0x0000
RESTART_COMMUNICATIONS = 0x0001
FORCE_LISTEN_ONLY_MODE = 0x0004
"""Diagnostics sub-functions (function 8) the plant's traffic uses."""

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3

FUNCTION_NAMES = {
    READ_COILS: "read_coils",
    READ_DISCRETE_INPUTS: "read_discrete_inputs",
    READ_HOLDING_REGISTERS: "read_holding_registers",
    READ_INPUT_REGISTERS: "read_input_registers",
    WRITE_SINGLE_COIL: "write_single_coil",
    WRITE_SINGLE_REGISTER: "write_single_register",
    DIAGNOSTICS: "diagnostics",
    WRITE_MULTIPLE_COILS: "write_multiple_coils",
    WRITE_MULTIPLE_REGISTERS: "write_multiple_registers",
    ENCAPSULATED_INTERFACE: "encapsulated_interface",
}
BIT_READS = (READ_COILS, READ_DISCRETE_INPUTS)
WORD_READS = (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS)
WRITES = (WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS)
TABLE_OF_FUNCTION = {
    READ_COILS: "coil",
    READ_DISCRETE_INPUTS: "discrete",
    READ_HOLDING_REGISTERS: "holding",
    READ_INPUT_REGISTERS: "input",
    WRITE_SINGLE_COIL: "coil",
    WRITE_SINGLE_REGISTER: "holding",
    WRITE_MULTIPLE_COILS: "coil",
    WRITE_MULTIPLE_REGISTERS: "holding",
}
"""The register table (a `Register.kind`) each read or write function addresses."""
MAX_READ = {
    READ_COILS: 2000,
    READ_DISCRETE_INPUTS: 2000,
    READ_HOLDING_REGISTERS: 125,
    READ_INPUT_REGISTERS: 125,
}
MAX_WRITE = {WRITE_MULTIPLE_COILS: 1968, WRITE_MULTIPLE_REGISTERS: 123}
MBAP = struct.Struct(">HHHB")


@dataclass(frozen=True, slots=True)
class Request:
    """One Modbus request: a function code and its fields (those that do not apply stay empty).

    `values` are the words (6, 16) or bits (5, 15) written; `sub_function` is the diagnostics
    sub-function (8) or the read device id code (43/14); `data` is the diagnostics data field.
    """

    function_code: int
    address: int = 0
    count: int = 0
    values: tuple[int, ...] = ()
    sub_function: int = 0
    data: bytes = b""

    @property
    def name(self) -> str:
        """The function's name in the specification's words (snake case)."""
        return FUNCTION_NAMES.get(self.function_code, f"function_{self.function_code}")

    @property
    def is_write(self) -> bool:
        """Whether the request changes the PLC's registers."""
        return self.function_code in WRITES


def read(function_code: int, address: int, count: int) -> Request:
    """A read request (functions 1-4) of `count` items from `address`."""
    if function_code not in MAX_READ:
        raise InvalidInput(f"function {function_code} is not a read")
    _check_span(address, count, MAX_READ[function_code])
    return Request(function_code, address, count)


def write_single(function_code: int, address: int, value: int) -> Request:
    """A single write (5: a coil, 6: a register) of one raw `value`."""
    if function_code not in (WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER):
        raise InvalidInput(f"function {function_code} is not a single write")
    high = 1 if function_code == WRITE_SINGLE_COIL else 0xFFFF
    _check_span(address, 1, 1)
    if not 0 <= value <= high:
        raise InvalidInput(f"value {value} does not fit function {function_code} (0-{high})")
    return Request(function_code, address, 1, (value,))


def write_multiple(function_code: int, address: int, values: Sequence[int]) -> Request:
    """A multiple write (15: coils, 16: registers) of raw `values` from `address`."""
    if function_code not in MAX_WRITE:
        raise InvalidInput(f"function {function_code} is not a multiple write")
    _check_span(address, len(values), MAX_WRITE[function_code])
    high = 1 if function_code == WRITE_MULTIPLE_COILS else 0xFFFF
    if any(not 0 <= value <= high for value in values):
        raise InvalidInput(f"values {list(values)} do not fit function {function_code} (0-{high})")
    return Request(function_code, address, len(values), tuple(values))


def diagnostics(sub_function: int, data: bytes = b"\x00\x00") -> Request:
    """A diagnostics request (function 8) with its sub-function and data field."""
    if not 0 <= sub_function <= 0xFFFF:
        raise InvalidInput(f"diagnostics sub-function {sub_function} is not 0-65535")
    return Request(DIAGNOSTICS, sub_function=sub_function, data=bytes(data))


def read_device_identification(read_code: int = 1, object_id: int = 0) -> Request:
    """A read device identification request (43/14): basic (1), regular (2) or extended (3)."""
    if read_code not in (1, 2, 3, 4):
        raise InvalidInput(f"read device id code {read_code} is not 1-4")
    return Request(ENCAPSULATED_INTERFACE, address=object_id, sub_function=read_code)


def _check_span(address: int, count: int, most: int) -> None:
    if not 1 <= count <= most:
        raise InvalidInput(f"a quantity of {count} is outside 1-{most}")
    if not 0 <= address <= 0x10000 - count:
        raise InvalidInput(f"address {address} with quantity {count} runs past 65535")


# Encoding --------------------------------------------------------------------------------------


def adu(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """The Modbus/TCP frame: the MBAP header (protocol 0, length of unit id and PDU) and `pdu`."""
    return MBAP.pack(transaction_id & 0xFFFF, 0, len(pdu) + 1, unit_id) + pdu


def request_pdu(request: Request) -> bytes:
    """The PDU of `request`."""
    encoder = _REQUEST_ENCODERS.get(request.function_code)
    if encoder is None:
        raise InvalidInput(f"function {request.function_code} cannot be encoded here")
    return encoder(request)


def _read_request(request: Request) -> bytes:
    return struct.pack(">BHH", request.function_code, request.address, request.count)


def _single_write(request: Request) -> bytes:
    value = request.values[0]
    if request.function_code == WRITE_SINGLE_COIL:
        value = 0xFF00 if value else 0x0000
    return struct.pack(">BHH", request.function_code, request.address, value)


def _multiple_write(request: Request) -> bytes:
    if request.function_code == WRITE_MULTIPLE_COILS:
        payload = pack_bits(request.values)
    else:
        payload = struct.pack(f">{len(request.values)}H", *request.values)
    head = struct.pack(">BHHB", request.function_code, request.address, request.count, len(payload))
    return head + payload


def _diagnostics(request: Request) -> bytes:
    return struct.pack(">BH", DIAGNOSTICS, request.sub_function) + request.data


def _device_identification(request: Request) -> bytes:
    return struct.pack(
        ">BBBB", ENCAPSULATED_INTERFACE, READ_DEVICE_IDENTIFICATION, request.sub_function, request.address
    )


_REQUEST_ENCODERS: dict[int, Callable[[Request], bytes]] = {
    **dict.fromkeys((*BIT_READS, *WORD_READS), _read_request),
    WRITE_SINGLE_COIL: _single_write,
    WRITE_SINGLE_REGISTER: _single_write,
    WRITE_MULTIPLE_COILS: _multiple_write,
    WRITE_MULTIPLE_REGISTERS: _multiple_write,
    DIAGNOSTICS: _diagnostics,
    ENCAPSULATED_INTERFACE: _device_identification,
}


def pack_bits(bits: Sequence[int]) -> bytes:
    """Bits packed eight to a byte, the first bit in the lowest position (the Modbus order)."""
    packed = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            packed[index // 8] |= 1 << (index % 8)
    return bytes(packed)


def unpack_bits(data: bytes, count: int) -> tuple[int, ...]:
    """The first `count` bits of `data`, packed as `pack_bits` packs them."""
    return tuple((data[index // 8] >> (index % 8)) & 1 for index in range(count))


def exception_pdu(function_code: int, exception_code: int) -> bytes:
    """An exception response: the function code with its high bit set, and the exception code."""
    return bytes((function_code | 0x80, exception_code))


# Answering -------------------------------------------------------------------------------------


def response_pdu(
    request: Request,
    image: Mapping[str, Mapping[int, int]],
    identity: Sequence[tuple[int, str]] = (),
) -> bytes:
    """The PDU a PLC with the register `image` (values by table kind, then address) answers.

    Reads return the image's values, or exception 2 if any address is not held; writes echo the
    request if every address is held (they do not change `image`); diagnostics echo (Return Query
    Data, Restart Communications); 43/14 returns the `identity` objects (id, text). Anything else
    gets exception 1. Force Listen Only Mode has no response: the caller sends none.
    """
    code = request.function_code
    if code in TABLE_OF_FUNCTION:
        table = image.get(TABLE_OF_FUNCTION[code], {})
        span = range(request.address, request.address + request.count)
        if any(address not in table for address in span):
            return exception_pdu(code, ILLEGAL_DATA_ADDRESS)
        if code in WRITES:
            return _write_echo(request)
        return _read_response(code, [table[address] for address in span])
    if code == DIAGNOSTICS and request.sub_function in (RETURN_QUERY_DATA, RESTART_COMMUNICATIONS):
        return _diagnostics(request)
    if code == ENCAPSULATED_INTERFACE and identity:
        return device_identification_response(request.sub_function, identity)
    return exception_pdu(code, ILLEGAL_FUNCTION)


def _read_response(function_code: int, values: Sequence[int]) -> bytes:
    bits = function_code in BIT_READS
    payload = pack_bits(values) if bits else struct.pack(f">{len(values)}H", *values)
    return bytes((function_code, len(payload))) + payload


def _write_echo(request: Request) -> bytes:
    if request.function_code in (WRITE_SINGLE_COIL, WRITE_SINGLE_REGISTER):
        return _single_write(request)
    return struct.pack(">BHH", request.function_code, request.address, request.count)


def device_identification_response(read_code: int, objects: Sequence[tuple[int, str]]) -> bytes:
    """A 43/14 response carrying `objects` (object id, ASCII text) in one piece."""
    conformity = 0x81 if read_code == 1 else 0x82
    body = b"".join(bytes((object_id, len(text))) + text.encode("ascii") for object_id, text in objects)
    head = struct.pack(
        ">BBBBBBB",
        ENCAPSULATED_INTERFACE,
        READ_DEVICE_IDENTIFICATION,
        read_code,
        conformity,
        0,
        0,
        len(objects),
    )
    return head + body


# Decoding answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """What a client reads from an answer: the values, or the exception code."""

    function_code: int
    values: tuple[int, ...] = ()
    exception_code: int | None = None


def split_adu(frame: bytes) -> tuple[int, int, bytes]:
    """The transaction id, unit id and PDU of one whole Modbus/TCP frame; InvalidInput otherwise."""
    if len(frame) < MBAP.size + 1:
        raise InvalidInput(f"a Modbus/TCP frame of {len(frame)} bytes is shorter than its header")
    transaction_id, protocol, length, unit_id = MBAP.unpack_from(frame)
    if protocol != 0 or length != len(frame) - 6:
        raise InvalidInput(f"bad MBAP header: protocol {protocol}, length {length} for {len(frame)} bytes")
    return transaction_id, unit_id, frame[MBAP.size :]


def decode_response(request: Request, pdu: bytes) -> Response:
    """The values (reads) or exception in `pdu`, the answer to `request`; InvalidInput if it is not."""
    if not pdu:
        raise InvalidInput("an empty response PDU")
    code = pdu[0]
    if code == request.function_code | 0x80 and len(pdu) == 2:
        return Response(request.function_code, exception_code=pdu[1])
    if code != request.function_code:
        raise InvalidInput(f"a response with function {code} to a request with {request.function_code}")
    if code in BIT_READS:
        return Response(code, unpack_bits(pdu[2:], request.count))
    if code in WORD_READS:
        return Response(code, struct.unpack(f">{(len(pdu) - 2) // 2}H", pdu[2:]))
    return Response(code)
