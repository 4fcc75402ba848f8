"""The exact path's record: one `ModbusMessage` per PDU, with its variable-size parts.

The scalar fields are exactly the columns of `ModbusColumns` (same names, same "none" values);
the variable-size parts (written or read values, diagnostics data, identification objects, file
sub-requests) live only here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwarden.protocols.modbus.findings import ModbusFinding, Operation


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One sub-request or sub-response of read (20) or write (21) file record.

    A read response carries no file and record numbers (they stay -1).
    """

    reference_type: int
    file_number: int = -1
    record_number: int = -1
    record_length: int = 0
    data: bytes = b""


@dataclass(slots=True)
class ModbusMessage:
    """One PDU as the exact decoder reads it; "none" is -1, or 0 for counts and codes."""

    segment: int = 0
    pdu_index: int = 0
    offset: int = 0
    transaction_id: int = -1
    protocol_id: int = -1
    length: int = -1
    unit_id: int = -1
    function_code: int = -1
    is_response: bool = False
    is_exception: bool = False
    exception_code: int = 0
    address: int = -1
    quantity: int = 0
    byte_count: int = -1
    value: int = -1
    sub_function: int = -1
    read_code: int = -1
    object_id: int = -1
    conformity_level: int = -1
    more_follows: int = -1
    write_address: int = -1
    write_quantity: int = 0
    file_number: int = -1
    operation: Operation = Operation.NONE
    finding: ModbusFinding = ModbusFinding.OK
    values: tuple[int, ...] = ()
    """Registers or bits written or read, masks (22), FIFO contents (24), event log words (12)."""
    data: bytes = b""
    """Diagnostics data (8), server id (17), the PDU of user-defined and unknown functions."""
    objects: tuple[tuple[int, bytes], ...] = ()
    """Read device identification objects (43/14 responses): object id and value."""
    file_records: tuple[FileRecord, ...] = field(default=())
