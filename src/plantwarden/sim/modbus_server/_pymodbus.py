"""The pymodbus 3.16.1 names the Modbus servers use, imported in this one place.

pymodbus warns on import (deprecations of its v4 changes), so the imports run inside
`warnings.catch_warnings()`; and its logger stays at WARNING unless someone set its level first.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.constants import DeviceInformation, ExcCodes
    from pymodbus.datastore import ModbusServerContext
    from pymodbus.exceptions import ModbusException, ModbusIOException
    from pymodbus.pdu import ExceptionResponse, ModbusPDU
    from pymodbus.pdu.diag_message import (
        DiagnosticBase,
        ForceListenOnlyModeRequest,
        RestartCommunicationsOptionRequest,
    )
    from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse
    from pymodbus.server import ModbusTcpServer
    from pymodbus.server.requesthandler import ServerRequestHandler
    from pymodbus.transaction import TransactionManager

__all__ = [
    "AsyncModbusTcpClient",
    "DeviceInformation",
    "DiagnosticBase",
    "ExcCodes",
    "ExceptionResponse",
    "ForceListenOnlyModeRequest",
    "ModbusException",
    "ModbusIOException",
    "ModbusPDU",
    "ModbusServerContext",
    "ModbusTcpServer",
    "ReadDeviceInformationRequest",
    "ReadDeviceInformationResponse",
    "RestartCommunicationsOptionRequest",
    "ServerRequestHandler",
    "TransactionManager",
    "untyped",
]

if logging.getLogger("pymodbus").level == logging.NOTSET:
    logging.getLogger("pymodbus").setLevel(logging.WARNING)


def untyped(value: object) -> Any:
    """`value`, to call what pymodbus leaves unannotated (mypy's no-untyped-call)."""
    return value
