"""Exact decoders of request PDUs (client to server), and those whose response echoes them.

Each decoder takes the message to fill and the PDU's data (the bytes after the function code),
sets the fields it reads and returns the row's finding: the first problem met, else `OK`.
"""

from __future__ import annotations

from collections.abc import Callable

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.layout import bits, first, size_finding, trailing, word, words
from plantwarden.protocols.modbus.messages import FileRecord, ModbusMessage

Decoder = Callable[[ModbusMessage, bytes], ModbusFinding]
COIL_ON, COIL_OFF = 0xFF00, 0x0000


def read(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read coils, discrete inputs, holding or input registers (1-4): address, quantity."""
    if len(data) < 4:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, message.quantity = word(data, 0), word(data, 2)
    if not 1 <= message.quantity <= fc.MAX_QUANTITY[message.function_code]:
        return ModbusFinding.QUANTITY_OUT_OF_RANGE
    return trailing(data, 4)


def write_single_coil(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Write single coil (5), request or echo: address, value 0xFF00 (1) or 0x0000 (0)."""
    if len(data) < 4:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, raw, message.quantity = word(data, 0), word(data, 2), 1
    message.value = {COIL_OFF: 0, COIL_ON: 1}.get(raw, raw)
    if raw not in (COIL_OFF, COIL_ON):
        return ModbusFinding.BAD_COIL_VALUE
    message.values = (message.value,)
    return trailing(data, 4)


def write_single_register(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Write single register (6), request or echo: address, value."""
    if len(data) < 4:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, message.value, message.quantity = word(data, 0), word(data, 2), 1
    message.values = (message.value,)
    return trailing(data, 4)


def no_fields(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Requests made of the function code alone (7, 11, 12, 17)."""
    return trailing(data, 0)


def diagnostics(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Diagnostics (8), request or response: sub-function and data (first word in `value`)."""
    if len(data) < 2:
        return ModbusFinding.PDU_TOO_SHORT
    message.sub_function, message.data = word(data, 0), data[2:]
    message.value = word(data, 2) if len(data) >= 4 else -1
    if message.sub_function in fc.CONTROL_SUB_FUNCTIONS:
        message.operation = Operation.CONTROL
    if message.sub_function not in fc.DIAGNOSTIC_SUB_FUNCTIONS:
        return ModbusFinding.UNKNOWN_SUB_FUNCTION
    if message.sub_function in fc.FREE_DATA_SUB_FUNCTIONS:
        return ModbusFinding.OK
    return size_finding(data, 4)


def write_multiple(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Write multiple coils (15) or registers (16): address, quantity, byte count, values."""
    if len(data) < 5:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, message.quantity, message.byte_count = word(data, 0), word(data, 2), data[4]
    coils = message.function_code == fc.WRITE_MULTIPLE_COILS
    payload = data[5 : 5 + message.byte_count]
    message.values = (bits(payload) if coils else words(payload))[: message.quantity]
    message.value = first(message.values)
    if not 1 <= message.quantity <= fc.MAX_QUANTITY[message.function_code]:
        return ModbusFinding.QUANTITY_OUT_OF_RANGE
    expected = (message.quantity + 7) // 8 if coils else 2 * message.quantity
    if message.byte_count != expected or len(payload) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 5 + message.byte_count)


def read_file_record(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read file record (20) request: byte count, 7-byte sub-requests."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    body = data[1 : 1 + message.byte_count]
    records = tuple(
        FileRecord(body[at], word(body, at + 1), word(body, at + 3), word(body, at + 5))
        for at in range(0, len(body) - 6, 7)
    )
    _set_file_records(message, records)
    if not 7 <= message.byte_count <= 245 or message.byte_count % 7 or len(body) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return _reference_finding(records) or trailing(data, 1 + message.byte_count)


def write_file_record(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Write file record (21), request or echo: byte count, sub-requests with their data."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    body = data[1 : 1 + message.byte_count]
    records, complete = _write_records(body)
    _set_file_records(message, records)
    message.value = first(words(records[0].data)) if records else -1
    if not complete or len(body) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return _reference_finding(records) or trailing(data, 1 + message.byte_count)


def _write_records(body: bytes) -> tuple[tuple[FileRecord, ...], bool]:
    records, at = [], 0
    while at + 7 <= len(body):
        length = word(body, at + 5)
        end = at + 7 + 2 * length
        records.append(
            FileRecord(body[at], word(body, at + 1), word(body, at + 3), length, body[at + 7 : end])
        )
        at = end
    return tuple(records), bool(records) and at == len(body)


def _set_file_records(message: ModbusMessage, records: tuple[FileRecord, ...]) -> None:
    message.file_records, message.quantity = records, len(records)
    if records:
        message.file_number, message.address = records[0].file_number, records[0].record_number


def _reference_finding(records: tuple[FileRecord, ...]) -> ModbusFinding:
    bad = any(record.reference_type != fc.FILE_REFERENCE_TYPE for record in records)
    return ModbusFinding.BAD_REFERENCE_TYPE if bad else ModbusFinding.OK


def mask_write_register(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Mask write register (22), request or echo: address, AND mask (`value`), OR mask."""
    if len(data) < 6:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, message.quantity = word(data, 0), 1
    message.values = (word(data, 2), word(data, 4))
    message.value = message.values[0]
    return trailing(data, 6)


def read_write_multiple(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read/write multiple registers (23): read address/quantity, write address/quantity/values."""
    if len(data) < 9:
        return ModbusFinding.PDU_TOO_SHORT
    message.address, message.quantity = word(data, 0), word(data, 2)
    message.write_address, message.write_quantity, message.byte_count = word(data, 4), word(data, 6), data[8]
    payload = data[9 : 9 + message.byte_count]
    message.values = words(payload)[: message.write_quantity]
    message.value = first(message.values)
    if not 1 <= message.quantity <= fc.MAX_READ_WRITE_READ:
        return ModbusFinding.QUANTITY_OUT_OF_RANGE
    if not 1 <= message.write_quantity <= fc.MAX_READ_WRITE_WRITE:
        return ModbusFinding.QUANTITY_OUT_OF_RANGE
    if message.byte_count != 2 * message.write_quantity or len(payload) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 9 + message.byte_count)


def read_fifo_queue(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read FIFO queue (24) request: the FIFO pointer address."""
    if len(data) < 2:
        return ModbusFinding.PDU_TOO_SHORT
    message.address = word(data, 0)
    return trailing(data, 2)


def encapsulated_interface(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Encapsulated interface (43) request: MEI type; for 14 the read code and object id."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.sub_function = data[0]
    if message.sub_function != fc.READ_DEVICE_IDENTIFICATION:
        return mark_other_mei(message, data)
    if len(data) < 3:
        return ModbusFinding.PDU_TOO_SHORT
    message.read_code, message.object_id = data[1], data[2]
    if not 1 <= message.read_code <= 4:
        return ModbusFinding.BAD_READ_CODE
    return trailing(data, 3)


def mark_other_mei(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """43 with an MEI type other than 14: CANopen (13) is only marked, the rest are reserved."""
    message.operation, message.data = Operation.OTHER, data[1:]
    if message.sub_function == fc.CANOPEN_GENERAL_REFERENCE:
        return ModbusFinding.OK
    return ModbusFinding.UNKNOWN_SUB_FUNCTION


REQUEST_DECODERS: dict[int, Decoder] = {
    **dict.fromkeys((1, 2, 3, 4), read),
    fc.WRITE_SINGLE_COIL: write_single_coil,
    fc.WRITE_SINGLE_REGISTER: write_single_register,
    **dict.fromkeys((7, 11, 12, 17), no_fields),
    fc.DIAGNOSTICS: diagnostics,
    **dict.fromkeys((15, 16), write_multiple),
    fc.READ_FILE_RECORD: read_file_record,
    fc.WRITE_FILE_RECORD: write_file_record,
    fc.MASK_WRITE_REGISTER: mask_write_register,
    fc.READ_WRITE_MULTIPLE_REGISTERS: read_write_multiple,
    fc.READ_FIFO_QUEUE: read_fifo_queue,
    fc.ENCAPSULATED_INTERFACE: encapsulated_interface,
}
"""The decoder of each public function's request."""
