"""Exact decoders of response PDUs (server to client); echoes reuse the request decoders.

Same contract as `requests`: fill the message from the PDU's data, return the first finding.
"""

from __future__ import annotations

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus import requests
from plantwarden.protocols.modbus.findings import ModbusFinding
from plantwarden.protocols.modbus.layout import bits, first, size_finding, trailing, word, words
from plantwarden.protocols.modbus.messages import FileRecord, ModbusMessage
from plantwarden.protocols.modbus.requests import Decoder

MAX_READ_BYTES = 250
"""The largest byte count of a read response: 2000 bits or 125 registers."""
DEVICE_ID_HEADER = 6
"""43/14 response after the function code: MEI type, read code, conformity level, more follows,
next object id, number of objects."""


def read_bits(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read coils or discrete inputs (1, 2) response: byte count, packed bits (first in `value`)."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    payload = data[1 : 1 + message.byte_count]
    message.values = bits(payload)
    message.value = first(message.values)
    if not 1 <= message.byte_count <= MAX_READ_BYTES or len(payload) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 1 + message.byte_count)


def read_registers(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read registers (3, 4, 23) response: byte count, registers (`quantity` is byte count / 2)."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    message.quantity = message.byte_count // 2
    payload = data[1 : 1 + message.byte_count]
    message.values = words(payload)
    message.value = first(message.values)
    count = message.byte_count
    if count % 2 or not 2 <= count <= MAX_READ_BYTES or len(payload) < count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 1 + count)


def exception_status(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read exception status (7) response: the status byte (`value`)."""
    if data:
        message.value = data[0]
    return size_finding(data, 1)


def comm_event_counter(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Get comm event counter (11) response: status word, event count (`value`)."""
    if len(data) < 4:
        return ModbusFinding.PDU_TOO_SHORT
    message.values = (word(data, 0), word(data, 2))
    message.value = message.values[1]
    return trailing(data, 4)


def comm_event_log(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Get comm event log (12) response: byte count, status, event count, message count, events."""
    if len(data) < 7:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    events = data[7 : 1 + message.byte_count]
    message.values = (word(data, 1), word(data, 3), word(data, 5), *events)
    message.value, message.quantity = word(data, 3), len(events)
    if message.byte_count < 6 or len(data) - 1 < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 1 + message.byte_count)


def write_multiple_echo(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Write multiple coils or registers (15, 16) response: address, quantity (a read's layout)."""
    return requests.read(message, data)


def report_server_id(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Report server id (17) response: byte count, then server id, run indicator (in `data`)."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    message.data = data[1 : 1 + message.byte_count]
    if message.byte_count < 1 or len(message.data) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 1 + message.byte_count)


def read_file_record(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read file record (20) response: byte count, sub-responses (length, reference type, data)."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count = data[0]
    body = data[1 : 1 + message.byte_count]
    records, complete = _read_records(body)
    message.file_records, message.quantity = records, len(records)
    message.value = first(words(records[0].data)) if records else -1
    if not complete or len(body) < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    bad = any(record.reference_type != fc.FILE_REFERENCE_TYPE for record in records)
    return ModbusFinding.BAD_REFERENCE_TYPE if bad else trailing(data, 1 + message.byte_count)


def _read_records(body: bytes) -> tuple[tuple[FileRecord, ...], bool]:
    records, at, complete = [], 0, bool(body)
    while at < len(body):
        length = body[at]
        data = body[at + 2 : at + 1 + length]
        complete = complete and length >= 1 and (length - 1) % 2 == 0 and at + 1 + length <= len(body)
        records.append(
            FileRecord(body[at + 1] if at + 1 < len(body) else -1, record_length=len(data) // 2, data=data)
        )
        at += 1 + max(length, 1)
    return tuple(records), complete


def read_fifo_queue(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Read FIFO queue (24) response: byte count (2 bytes), FIFO count, values."""
    if len(data) < 4:
        return ModbusFinding.PDU_TOO_SHORT
    message.byte_count, message.quantity = word(data, 0), word(data, 2)
    message.values = words(data[4 : 4 + 2 * message.quantity])
    message.value = first(message.values)
    if message.quantity > fc.MAX_FIFO_COUNT:
        return ModbusFinding.QUANTITY_OUT_OF_RANGE
    if message.byte_count != 2 + 2 * message.quantity or len(data) - 2 < message.byte_count:
        return ModbusFinding.BAD_BYTE_COUNT
    return trailing(data, 2 + message.byte_count)


def encapsulated_interface(message: ModbusMessage, data: bytes) -> ModbusFinding:
    """Encapsulated interface (43) response; for 14 the header fields and the objects."""
    if len(data) < 1:
        return ModbusFinding.PDU_TOO_SHORT
    message.sub_function = data[0]
    if message.sub_function != fc.READ_DEVICE_IDENTIFICATION:
        return requests.mark_other_mei(message, data)
    if len(data) < DEVICE_ID_HEADER:
        return ModbusFinding.PDU_TOO_SHORT
    message.read_code, message.conformity_level, message.more_follows = data[1], data[2], data[3]
    message.object_id, message.quantity = data[4], data[5]
    message.objects, end = _objects(data, message.quantity)
    if not 1 <= message.read_code <= 4:
        return ModbusFinding.BAD_READ_CODE
    return ModbusFinding.OK if end == len(data) else ModbusFinding.BAD_OBJECT_LIST


def _objects(data: bytes, count: int) -> tuple[tuple[tuple[int, bytes], ...], int]:
    objects: list[tuple[int, bytes]] = []
    at = DEVICE_ID_HEADER
    for _ in range(count):
        if at + 2 > len(data) or at + 2 + data[at + 1] > len(data):
            return tuple(objects), -1
        objects.append((data[at], data[at + 2 : at + 2 + data[at + 1]]))
        at += 2 + data[at + 1]
    return tuple(objects), at


RESPONSE_DECODERS: dict[int, Decoder] = {
    **dict.fromkeys((1, 2), read_bits),
    **dict.fromkeys((3, 4, 23), read_registers),
    fc.WRITE_SINGLE_COIL: requests.write_single_coil,
    fc.WRITE_SINGLE_REGISTER: requests.write_single_register,
    fc.READ_EXCEPTION_STATUS: exception_status,
    fc.DIAGNOSTICS: requests.diagnostics,
    fc.GET_COMM_EVENT_COUNTER: comm_event_counter,
    fc.GET_COMM_EVENT_LOG: comm_event_log,
    **dict.fromkeys((15, 16), write_multiple_echo),
    fc.REPORT_SERVER_ID: report_server_id,
    fc.READ_FILE_RECORD: read_file_record,
    fc.WRITE_FILE_RECORD: requests.write_file_record,
    fc.MASK_WRITE_REGISTER: requests.mask_write_register,
    fc.READ_FIFO_QUEUE: read_fifo_queue,
    fc.ENCAPSULATED_INTERFACE: encapsulated_interface,
}
"""The decoder of each public function's normal response (exceptions are decoded before)."""
