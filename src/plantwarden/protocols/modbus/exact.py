"""The exact path: one ADU (or one payload) at a time, into `ModbusMessage`s.

It is the reference the column extractor is held to: `decode_segments` gives the very columns
`extract` gives, for any input. No input makes it raise; a bug would show as `UNEXPECTED`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.columns import ModbusColumns
from plantwarden.protocols.modbus.findings import ModbusFinding
from plantwarden.protocols.modbus.framing import HEADER_SIZE, LENGTH_BASE, split_adus
from plantwarden.protocols.modbus.layout import size_finding
from plantwarden.protocols.modbus.messages import ModbusMessage
from plantwarden.protocols.modbus.requests import REQUEST_DECODERS
from plantwarden.protocols.modbus.responses import RESPONSE_DECODERS

MBAP = struct.Struct(">HHHB")


class Extracted(NamedTuple):
    """A batch's PDU rows, and per input segment the bytes of a partial last ADU left over."""

    columns: ModbusColumns
    leftover: npt.NDArray[np.int32]


def decode(
    adu: bytes, from_server: bool, *, segment: int = 0, pdu_index: int = 0, offset: int = 0
) -> ModbusMessage:
    """The one row of `adu`, a whole Modbus/TCP ADU sent by the server (`from_server`) or client.

    `segment`, `pdu_index` and `offset` only label the row. An ADU shorter than its MBAP length
    is `LENGTH_BEYOND_DATA` (call this on a stream's leftover bytes when no more will come).
    """
    message = ModbusMessage(segment, pdu_index, offset, is_response=from_server)
    try:
        message.finding = _decode_adu(message, bytes(adu))
    except Exception:  # no input may crash the sensor; the tests show it never happens
        message.finding = ModbusFinding.UNEXPECTED
    return message


def _decode_adu(message: ModbusMessage, adu: bytes) -> ModbusFinding:
    if len(adu) < HEADER_SIZE:
        return ModbusFinding.TRUNCATED_HEADER
    header = MBAP.unpack_from(adu)
    message.transaction_id, message.protocol_id, message.length, message.unit_id = header
    if message.protocol_id != 0:
        return ModbusFinding.BAD_PROTOCOL_ID
    if not fc.MIN_LENGTH <= message.length <= fc.MAX_LENGTH:
        return ModbusFinding.BAD_LENGTH
    size = LENGTH_BASE + message.length
    if len(adu) < size:
        return ModbusFinding.LENGTH_BEYOND_DATA
    finding = decode_pdu(message, adu[HEADER_SIZE:size])
    if finding == ModbusFinding.OK and len(adu) > size:
        return ModbusFinding.TRAILING_BYTES
    return finding


def decode_pdu(message: ModbusMessage, pdu: bytes) -> ModbusFinding:
    """Fill `message` from `pdu` (function code first, at least one byte) and return its finding."""
    code = pdu[0]
    message.function_code = code & fc.FUNCTION_MASK
    message.operation = fc.operation_of(message.function_code)
    if code & fc.EXCEPTION_BIT:
        return _exception(message, pdu[1:])
    decoders = RESPONSE_DECODERS if message.is_response else REQUEST_DECODERS
    decoder = decoders.get(code)
    if decoder is not None:
        return decoder(message, pdu[1:])
    message.data = pdu[1:]
    if code in fc.USER_DEFINED_FUNCTIONS:
        return ModbusFinding.OK
    return ModbusFinding.UNKNOWN_FUNCTION


def _exception(message: ModbusMessage, data: bytes) -> ModbusFinding:
    message.is_exception = True
    message.exception_code = data[0] if data else 0
    if not message.is_response:
        return ModbusFinding.EXCEPTION_IN_REQUEST
    if data and not 1 <= message.exception_code <= fc.MAX_EXCEPTION_CODE:
        return ModbusFinding.BAD_EXCEPTION_CODE
    return size_finding(data, 1)


def decode_payload(payload: bytes, from_server: bool, segment: int = 0) -> tuple[list[ModbusMessage], int]:
    """The rows of one direction's payload (starting at an ADU boundary), and its leftover bytes."""
    frames = split_adus(payload)
    messages = [
        decode(payload[offset : offset + size], from_server, segment=segment, pdu_index=index, offset=offset)
        for index, (offset, size) in enumerate(frames.adus)
    ]
    return messages, frames.leftover


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int32],
    from_server: npt.NDArray[np.bool_],
) -> Extracted:
    """`extract`'s exact twin: every segment `buffer[start:start + length]` through `decode_payload`."""
    data = buffer.tobytes()
    messages: list[ModbusMessage] = []
    leftover = np.zeros(len(starts), dtype=np.int32)
    for segment, (start, length, server) in enumerate(
        zip(starts.tolist(), lengths.tolist(), from_server.tolist(), strict=True)
    ):
        rows, leftover[segment] = decode_payload(data[start : start + length], server, segment)
        messages.extend(rows)
    return Extracted(ModbusColumns.from_messages(messages), leftover)
