"""Modbus/TCP (Modbus Application Protocol V1.1b3, Messaging on TCP/IP Implementation Guide V1.0b).

Two paths, identical records:

- fast: `extract(buffer, starts, lengths, from_server)` frames and decodes many payload segments
  at once into `ModbusColumns` (one row per PDU), plus per segment the leftover bytes of a
  partial last ADU;
- exact: `decode(adu, from_server)` gives one `ModbusMessage` (with the variable-size parts),
  `decode_payload` one segment's, `decode_segments` the same columns as `extract`.

`split_adus` is the framer; `Pairing` matches requests with responses by transaction id.
"""

from plantwarden.protocols.modbus.columns import SCHEMA, ModbusColumns
from plantwarden.protocols.modbus.exact import Extracted, decode, decode_payload, decode_segments
from plantwarden.protocols.modbus.extract import extract
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.framing import Frames, split_adus
from plantwarden.protocols.modbus.messages import FileRecord, ModbusMessage

__all__ = [
    "SCHEMA",
    "Extracted",
    "FileRecord",
    "Frames",
    "ModbusColumns",
    "ModbusFinding",
    "ModbusMessage",
    "Operation",
    "decode",
    "decode_payload",
    "decode_segments",
    "extract",
    "split_adus",
]
