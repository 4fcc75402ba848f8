"""The exact path's record: one `S7Message` per PDU (a TPKT, or COTP data TPDUs up to the one that
ends the TSDU), with its variable-size parts, and its `Summary`."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.findings import S7Finding


@dataclass(frozen=True, slots=True)
class S7Item:
    """One variable of a read or write var request (S7ANY when `syntax_id` is 0x10)."""

    syntax_id: int
    transport_size: int = -1
    length: int = -1
    db: int = -1
    area: int = -1
    address: int = -1
    """The 24-bit address: byte << 3 | bit, or the timer / counter number."""
    areas: tuple[tuple[int, int, int], ...] = ()
    """DBREAD (syntax 0xB0): each area's bytes to read, DB number and start byte."""
    raw: bytes = b""
    """The address specification of an item of another syntax."""

    @property
    def byte_address(self) -> int:
        """The byte address (or timer / counter number); DBREAD: the first area's start byte;
        -1 for another syntax."""
        if self.syntax_id == c.SYNTAX_DBREAD:
            return self.areas[0][2] if self.areas else -1
        if self.syntax_id != c.SYNTAX_S7ANY:
            return -1
        return self.address if self.area in c.NUMBERED_AREAS else self.address >> 3

    def texts(self) -> tuple[str, ...]:
        """The item's targets: one, or a DBREAD's areas ("P#DB68.DBX358.0 BYTE 1" each)."""
        if self.syntax_id == c.SYNTAX_DBREAD:
            return tuple(f"P#DB{db}.DBX{start}.0 BYTE {size}" for size, db, start in self.areas)
        return (self.text(),)

    def text(self) -> str:
        """The item as Step 7 writes it: "DB1.DBX0.0", "MW10", "P#DB1.DBX0.0 BYTE 10", "T5"."""
        if self.syntax_id != c.SYNTAX_S7ANY:
            return f"syntax 0x{self.syntax_id:02x}"
        if self.area in c.NUMBERED_AREAS:
            number = f"{c.NUMBERED_AREAS[self.area]}{self.address}"
            return number if self.length == 1 else f"{number}[{self.length}]"
        byte, bit = self.address >> 3, self.address & 7
        if self.area in (c.AREA_DB, c.AREA_DI):
            letter = "DB" if self.area == c.AREA_DB else "DI"
            prefix = f"{letter}{self.db}."
        elif self.area in c.AREA_LETTERS:
            prefix, letter = "", c.AREA_LETTERS[self.area]
        else:
            prefix, letter = f"area0x{self.area:02x}.", ""
        width = c.TYPE_WIDTHS.get(self.transport_size)
        if self.length == 1 and self.transport_size == c.TS_BIT:
            return f"{prefix}{letter}X{byte}.{bit}" if prefix else f"{letter}{byte}.{bit}"
        if self.length == 1 and width is not None and bit == 0:
            return f"{prefix}{letter}{c.WIDTH_LETTERS[width]}{byte}"
        kind = c.TRANSPORT_SIZES.get(self.transport_size, f"0x{self.transport_size:02x}")
        start = f"{prefix}{letter}X{byte}.{bit}" if prefix else f"{letter}{byte}.{bit}"
        return f"P#{start} {kind} {self.length}"


@dataclass(frozen=True, slots=True)
class S7Message:
    """One PDU as the exact decoder reads it; "none" is -1 for numbers, empty for texts."""

    offset: int
    """Byte offset of the PDU's first TPKT within the payload."""
    size: int
    """Bytes of the PDU: every TPKT of it."""
    is_response: bool
    """Sent by the server (TCP port 102)."""
    fragments: int = 1
    """TPKTs of the PDU: COTP data TPDUs without end of TSDU, then the last one."""
    cotp_type: int = -1
    """COTP TPDU type of the last TPKT (0xE0 CR, 0xD0 CC, 0xF0 DT ...)."""
    src_tsap: int = -1
    """Connection request or confirm: the source TSAP (when at most 4 bytes)."""
    dst_tsap: int = -1
    """Connection request or confirm: the destination TSAP (rack and slot for an S7 CPU)."""
    protocol_id: int = -1
    """0x32 S7comm, 0x72 S7comm-plus, or the first byte of other COTP user data."""
    rosctr: int = -1
    pdu_ref: int = -1
    param_length: int = -1
    data_length: int = -1
    error_class: int = -1
    error_code: int = -1
    parameter_function: int = -1
    """Job and ack_data: the parameter's function code."""
    item_count: int = -1
    items: tuple[S7Item, ...] = ()
    item_results: tuple[int, ...] = ()
    """Read var and write var responses: each item's return code (0xFF success)."""
    data_items: tuple[tuple[int, int, bytes], ...] = ()
    """Read var responses and write var requests: each data item's return code, transport size
    (of the data: 0x03 bit, 0x04 byte/word/dword, 0x05 integer, 0x07 real, 0x09 octet string)
    and value."""
    ud_method: int = -1
    ud_type: int = -1
    """Userdata: 0 push, 4 request, 8 response."""
    ud_group: int = -1
    ud_subfunction: int = -1
    ud_sequence: int = -1
    ud_unit_ref: int = -1
    ud_last_unit: int = -1
    ud_error: int = -1
    ud_return_code: int = -1
    """Userdata: the data item's return code."""
    szl_id: int = -1
    szl_index: int = -1
    clock: str = ""
    """Clock set requests and clock read answers: the PLC's time, ISO 8601 (no time zone)."""
    max_amq_calling: int = -1
    max_amq_called: int = -1
    pdu_length: int = -1
    filename: str = ""
    """Block functions and PI services: the block's file name (e.g. "_0A00001P")."""
    blocks: tuple[str, ...] = ()
    """Blocks named by a block function or PI service, e.g. ("DB1",)."""
    block_number: int = -1
    pi_service: str = ""
    """PI service (0x28) or PLC stop (0x29) service name: _INSE, _DELE, _MODU, P_PROGRAM ..."""
    upload_id: int = -1
    plus_version: int = -1
    plus_opcode: int = -1
    plus_function: int = -1
    data: bytes = b""
    """Userdata payloads (clock, SZL records; never a password), block contents."""
    status: ParseStatus = ParseStatus.OK
    finding: S7Finding = S7Finding.OK
    _summary: Summary | None = field(default=None, init=False, repr=False, compare=False)
    """`summary()`, once computed: the message is immutable, and a request kept by the exact
    decoder's cache is summarised again each time it is seen."""

    def summary(self) -> Summary:
        """The PDU in every protocol's terms (computed once per message)."""
        summary = self._summary
        if summary is None:
            summary = self._summarise()
            object.__setattr__(self, "_summary", summary)
        return summary

    def _summarise(self) -> Summary:
        code, name, operation = self._function()
        if self.finding == S7Finding.UNEXPECTED or (code == -1 and self.status == ParseStatus.MALFORMED):
            operation = Operation.MALFORMED
        targets = self._targets()
        return Summary(
            function_code=code,
            function=name,
            operation=operation,
            is_response=self.is_response,
            unit=-1,
            address=self._address(),
            quantity=len(targets),
            targets=targets[:MAX_TARGETS],
            result=self._result(),
            status=self.status,
            finding=int(self.finding),
        )

    def _function(self) -> tuple[int, str, Operation]:
        if self.protocol_id == c.S7COMM_PLUS_ID and self.plus_opcode >= 0:
            function = max(self.plus_function, 0)
            code = c.PLUS_BASE | self.plus_opcode << 16 | function
            name = c.PLUS_FUNCTIONS.get(function, c.PLUS_OPCODES.get(self.plus_opcode, "unknown"))
            return code, f"s7comm_plus_{name}", c.PLUS_FUNCTION_OPERATIONS.get(function, Operation.OTHER)
        if self.protocol_id == c.S7COMM_PLUS_ID and self.finding == S7Finding.OK:
            return c.PLUS_BASE, "s7comm_plus_fragment", Operation.OTHER
        if self.protocol_id == c.S7COMM_PLUS_ID:
            return -1, "s7comm_plus", Operation.MALFORMED  # too short for its opcode
        if self.rosctr == c.USERDATA and self.ud_group >= 0:
            key = (self.ud_group, self.ud_subfunction)
            code = c.USERDATA_BASE | self.ud_group << 8 | self.ud_subfunction
            name = c.SUBFUNCTION_NAMES.get(key, c.GROUP_NAMES.get(self.ud_group, "userdata"))
            return code, name, self._userdata_operation(key)
        if self.rosctr in (c.JOB, c.ACK_DATA) and self.parameter_function >= 0:
            code = self.parameter_function
            name = c.FUNCTION_NAMES.get(code, "unknown")
            operation = c.FUNCTION_OPERATIONS.get(code, Operation.OTHER)
            if code == c.PI_SERVICE and self.pi_service in c.PROGRAM_PI_SERVICES:
                operation = Operation.PROGRAM
            return code, name, operation
        if self.rosctr in c.ROSCTR_NAMES:
            return -1, c.ROSCTR_NAMES[self.rosctr], Operation.OTHER
        if self.cotp_type >= 0 and self.protocol_id != c.S7COMM_ID:
            return (
                c.COTP_BASE | self.cotp_type,
                c.COTP_NAMES.get(self.cotp_type, "cotp_unknown"),
                Operation.OTHER,
            )
        return -1, "", Operation.MALFORMED

    def _userdata_operation(self, key: tuple[int, int]) -> Operation:
        if key == (c.GROUP_CPU, c.READ_SZL):
            if self.szl_id >= 0 and self.szl_id & 0xFF in c.IDENTIFY_SZL_LISTS:
                return Operation.IDENTIFY
            return Operation.DIAGNOSTIC
        if key in c.SUBFUNCTION_OPERATIONS:
            return c.SUBFUNCTION_OPERATIONS[key]
        return c.GROUP_OPERATIONS.get(self.ud_group, Operation.OTHER)

    def _targets(self) -> tuple[str, ...]:
        if self.items:
            return tuple(text for item in self.items for text in item.texts())
        if self.item_results:
            return ()
        if self.szl_id >= 0:
            return (f"SZL 0x{self.szl_id:04x} index 0x{max(self.szl_index, 0):04x}",)
        if self.pi_service:
            return (self.pi_service, *self.blocks)
        if self.clock:
            return (self.clock,)
        return self.blocks

    def _address(self) -> int:
        if self.items:
            return self.items[0].byte_address
        if self.szl_id >= 0:
            return self.szl_id
        return self.block_number

    def _result(self) -> int:
        """An answer's (ack, ack_data, userdata response) result, whichever side sends it (in a
        download the PLC asks, with jobs, and the programming device answers)."""
        answer = self.rosctr in (c.ACK, c.ACK_DATA) or (
            self.rosctr == c.USERDATA and self.ud_type == c.TYPE_RESPONSE
        )
        if not answer:
            return -1
        if self.error_class > 0 or self.error_code > 0:
            return self.error_class << 8 | self.error_code
        if self.ud_error > 0:
            return self.ud_error
        failed = [code for code in self.item_results if code != c.ITEM_OK]
        if failed:
            return failed[0]
        if self.ud_return_code not in (-1, 0, c.ITEM_OK):
            return self.ud_return_code
        return 0
