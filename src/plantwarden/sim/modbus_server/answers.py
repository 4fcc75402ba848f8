"""Answers a PLC gives differently from pymodbus: its own identity (43/14) and single-write echoes."""

from __future__ import annotations

from collections.abc import Mapping

from plantwarden.sim.modbus_server._pymodbus import (
    DeviceInformation,
    ExcCodes,
    ExceptionResponse,
    ModbusPDU,
    ReadDeviceInformationRequest,
    ReadDeviceInformationResponse,
)

STREAM_OBJECTS = {
    DeviceInformation.BASIC: range(0x00, 0x03),
    DeviceInformation.REGULAR: range(0x00, 0x80),
    DeviceInformation.EXTENDED: range(0x00, 0x100),
}
"""The object ids that each streaming read code of 43/14 may return."""
CONFORMITY = 0x82
"""Regular identification, stream and individual access (as the traffic generator's PLCs say)."""


def device_information(identity: Mapping[int, str], request: ReadDeviceInformationRequest) -> ModbusPDU:
    """The 43/14 answer: one object (read code 4), or the objects of a category from `object_id`
    on (read codes 1-3; an unknown `object_id` restarts at object 0)."""
    code, first = request.read_code, request.object_id
    if code == DeviceInformation.SPECIFIC:
        if first not in identity:
            return ExceptionResponse(request.function_code, ExcCodes.ILLEGAL_ADDRESS)
        objects = [first]
    elif code in STREAM_OBJECTS:
        available = [oid for oid in STREAM_OBJECTS[DeviceInformation(code)] if oid in identity]
        objects = [oid for oid in available if oid >= (first if first in available else 0)]
    else:
        return ExceptionResponse(request.function_code, ExcCodes.ILLEGAL_VALUE)
    information = {oid: identity[oid].encode() for oid in objects}
    response = ReadDeviceInformationResponse(read_code=code, information=information)
    response.conformity = CONFORMITY
    return response


def echo_single_write(request: ModbusPDU, response: ModbusPDU) -> ModbusPDU:
    """FC5/FC6 answer with the request's echo (pymodbus reads the value back, and a write that the
    process undoes at once, like `jam_reset`, would come back different)."""
    if response.isError() or request.function_code not in (5, 6):
        return response
    return type(response)(address=request.address, bits=request.bits, registers=request.registers)
