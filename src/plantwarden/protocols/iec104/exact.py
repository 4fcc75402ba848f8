"""The exact path: one payload (one direction's TCP bytes) at a time, APDU by APDU.

An APDU (IEC 60870-5-104 sec. 5) is the start byte 0x68, the APDU length (the bytes after it,
4-253), a 4-byte control field and, in an I frame, an ASDU (IEC 60870-5-101 sec. 7 with the
104 sizes: cause of transmission 2 bytes, common address 2, information object address 3).

It is the reference the column extractor is held to. No input makes it raise: the per-APDU
decoding is wrapped, and a bug would show as the finding `UNEXPECTED`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary
from plantwarden.protocols.iec104 import types
from plantwarden.protocols.iec104.findings import Iec104Finding

START = 0x68
MIN_LENGTH, MAX_LENGTH = 4, 253
APCI_SIZE = 6
"""Start byte, length and the 4-byte control field."""
DUI_SIZE = 6
"""Data unit identifier: type, variable structure qualifier, cause (2 bytes), common address (2)."""
IOA_SIZE = 3
FORMAT_I, FORMAT_S, FORMAT_U = 0, 1, 3
"""The frame formats as the control field's low bits tell them (tshark's `iec60870_104.type`)."""
SQ_BIT, NUMBER_MASK = 0x80, 0x7F
TEST_BIT, NEGATIVE_BIT, CAUSE_MASK = 0x80, 0x40, 0x3F
MALFORMING = frozenset(Iec104Finding) - {Iec104Finding.OK, Iec104Finding.RESERVED_TYPE}


@dataclass(frozen=True, slots=True)
class Iec104Message:
    """One APDU; -1 for a field that is absent or was not read."""

    is_response: bool
    """Sent by the server (the controlled station, TCP port 2404)."""
    pdu_index: int
    offset: int
    """Byte offset of the APDU within the payload decoded."""
    length: int = -1
    """The APDU length byte (the bytes after it)."""
    frame_format: int = -1
    """0 I, 1 S, 3 U."""
    control: int = -1
    """The control field's first octet (a U frame's function)."""
    send_seq: int = -1
    """N(S), I frames."""
    recv_seq: int = -1
    """N(R), I and S frames."""
    type_id: int = -1
    sq: int = -1
    """Variable structure qualifier: 1 when the objects follow one address (a sequence)."""
    num_objects: int = -1
    cause: int = -1
    """Cause of transmission, 6 bits."""
    negative: int = -1
    """The P/N bit: 1 negative confirmation."""
    test: int = -1
    originator: int = -1
    common_address: int = -1
    select: int = -1
    """A command's S/E bit (first object): 1 select, 0 execute; -1 for other types."""
    ioas: tuple[int, ...] = ()
    """The information object addresses read (a sequence's from its first)."""
    status: ParseStatus = ParseStatus.OK
    finding: Iec104Finding = Iec104Finding.OK

    @property
    def function_code(self) -> int:
        """The type id (I), 257 (S), 256 plus the control octet (U), -1 when none was read."""
        if self.frame_format == FORMAT_I:
            return self.type_id
        if self.frame_format == FORMAT_S:
            return types.FORMAT_CODE_BASE + 1
        if self.frame_format == FORMAT_U:
            return types.FORMAT_CODE_BASE + self.control
        return -1

    def summary(self) -> Summary:
        code = self.function_code
        if self.frame_format == FORMAT_I and code >= 0:
            function, operation = types.type_name(code), types.operation_of(code)
        elif self.frame_format == FORMAT_S:
            function, operation = types.S_FUNCTION, Operation.OTHER
        elif self.frame_format == FORMAT_U:
            function, operation = types.U_FUNCTIONS.get(self.control, (types.U_UNKNOWN, Operation.OTHER))
        else:
            function, operation = "", Operation.MALFORMED
        return Summary(
            function_code=code,
            function=function,
            operation=operation,
            is_response=self.is_response,
            unit=self.common_address,
            address=self.ioas[0] if self.ioas else -1,
            quantity=max(self.num_objects, 0),
            targets=tuple(str(ioa) for ioa in self.ioas[:MAX_TARGETS]),
            result=types.result_of(self.cause, self.negative == 1) if self.cause >= 0 else -1,
            status=self.status,
            finding=int(self.finding),
        )


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[Iec104Message], bytes]:
    """Every complete APDU of `payload` (which starts at an APDU), and the bytes of an incomplete
    last one. A wrong start byte ends the framing: the rest is one `BAD_START` record."""
    messages: list[Iec104Message] = []
    position, end = 0, len(payload)
    while position < end:
        if payload[position] != START:
            messages.append(
                Iec104Message(
                    from_server,
                    len(messages),
                    position,
                    status=ParseStatus.MALFORMED,
                    finding=Iec104Finding.BAD_START,
                )
            )
            return messages, b""
        if end - position < 2 or end - position < payload[position + 1] + 2:
            return messages, payload[position:]
        size = payload[position + 1] + 2
        messages.append(
            decode_apdu(payload[position : position + size], from_server, len(messages), position)
        )
        position += size
    return messages, b""


def decode_apdu(apdu: bytes, from_server: bool, pdu_index: int = 0, offset: int = 0) -> Iec104Message:
    """One APDU (start byte first, as long as its length byte says: `decode_payload` frames them).

    Called on a stream's leftover bytes when no more will come, it gives `TRUNCATED_APDU`; bytes
    after the APDU's length are `TRAILING_BYTES` (unless the APDU has a finding of its own)."""
    apdu = bytes(apdu)
    try:
        if not apdu or apdu[0] != START:
            return Iec104Message(
                from_server, pdu_index, offset, status=ParseStatus.MALFORMED, finding=Iec104Finding.BAD_START
            )
        if len(apdu) < 2 or len(apdu) < apdu[1] + 2:
            return Iec104Message(
                from_server,
                pdu_index,
                offset,
                length=apdu[1] if len(apdu) > 1 else -1,
                status=ParseStatus.MALFORMED,
                finding=Iec104Finding.TRUNCATED_APDU,
            )
        message = _decode(apdu[: apdu[1] + 2], from_server, pdu_index, offset)
        if len(apdu) > apdu[1] + 2 and message.finding == Iec104Finding.OK:
            message = replace(message, status=ParseStatus.MALFORMED, finding=Iec104Finding.TRAILING_BYTES)
        return message
    except Exception:  # no input may crash the sensor; the tests show it never happens
        return Iec104Message(
            from_server, pdu_index, offset, status=ParseStatus.MALFORMED, finding=Iec104Finding.UNEXPECTED
        )


def _decode(apdu: bytes, from_server: bool, pdu_index: int, offset: int) -> Iec104Message:
    fields: dict[str, Any] = {"length": apdu[1]}
    found: list[Iec104Finding] = []
    partial = False
    length = apdu[1]
    if length < MIN_LENGTH:
        found.append(Iec104Finding.SHORT_APDU)
    else:
        if length > MAX_LENGTH:
            found.append(Iec104Finding.LONG_APDU)
        partial = _control(apdu, fields, found)
    finding = found[0] if found else Iec104Finding.OK
    if finding in MALFORMING:
        status = ParseStatus.MALFORMED
    else:
        status = ParseStatus.PARTIAL if partial else ParseStatus.OK
    return Iec104Message(from_server, pdu_index, offset, status=status, finding=finding, **fields)


def _control(apdu: bytes, fields: dict[str, Any], found: list[Iec104Finding]) -> bool:
    """Fill the control field's values and (I frames) the ASDU's; True when decoded partially."""
    o1, o2, o3, o4 = apdu[2], apdu[3], apdu[4], apdu[5]
    fields["control"] = o1
    if not o1 & 1:
        fields["frame_format"] = FORMAT_I
        fields["send_seq"] = (o1 | o2 << 8) >> 1
        fields["recv_seq"] = (o3 | o4 << 8) >> 1
        if o3 & 1:
            found.append(Iec104Finding.RESERVED_BITS)
        return _asdu(apdu[APCI_SIZE:], fields, found)
    if apdu[1] != MIN_LENGTH:
        found.append(Iec104Finding.S_U_LENGTH)
    if o1 & 3 == 1:
        fields["frame_format"] = FORMAT_S
        fields["recv_seq"] = (o3 | o4 << 8) >> 1
        if o1 & 0xFC or o2 or o3 & 1:
            found.append(Iec104Finding.RESERVED_BITS)
        return False
    fields["frame_format"] = FORMAT_U
    if o1 not in types.U_FUNCTIONS:
        found.append(Iec104Finding.BAD_U_FUNCTION)
    if o2 or o3 or o4:
        found.append(Iec104Finding.RESERVED_BITS)
    return False


def _asdu(asdu: bytes, fields: dict[str, Any], found: list[Iec104Finding]) -> bool:
    """Fill the ASDU's values; True when its objects could not be walked (a type of unknown size)."""
    size = len(asdu)
    if size >= 1:
        fields["type_id"] = asdu[0]
    if size >= 2:
        fields["sq"], fields["num_objects"] = asdu[1] >> 7, asdu[1] & NUMBER_MASK
    if size >= 3:
        fields["cause"] = asdu[2] & CAUSE_MASK
        fields["negative"], fields["test"] = (asdu[2] & NEGATIVE_BIT) >> 6, asdu[2] >> 7
    if size >= 4:
        fields["originator"] = asdu[3]
    if size >= DUI_SIZE:
        fields["common_address"] = asdu[4] | asdu[5] << 8
    if size < DUI_SIZE:
        found.append(Iec104Finding.SHORT_ASDU)
        return False
    number, sequence = asdu[1] & NUMBER_MASK, asdu[1] >> 7
    if number == 0:
        found.append(Iec104Finding.NO_OBJECTS)
    if asdu[2] & CAUSE_MASK in types.UNASSIGNED_CAUSES:
        found.append(Iec104Finding.UNASSIGNED_CAUSE)
    if size < DUI_SIZE + IOA_SIZE:
        found.append(Iec104Finding.SHORT_ASDU)
        return False
    first = _ioa(asdu, DUI_SIZE)
    element = types.element_size(asdu[0])
    qualifier = DUI_SIZE + IOA_SIZE + types.SELECT_OFFSETS.get(asdu[0], size)
    if qualifier < size:
        fields["select"] = asdu[qualifier] >> 7
    if sequence:
        fields["ioas"] = tuple(first + index for index in range(number))
    if element == types.UNKNOWN:
        if not sequence:
            fields["ioas"] = (first,)
        if types.is_reserved(asdu[0]):
            found.append(Iec104Finding.RESERVED_TYPE)
        return True
    at, ioas = DUI_SIZE + IOA_SIZE if sequence else DUI_SIZE, []
    for _ in range(number):
        if not sequence:
            if at + IOA_SIZE > size:
                at = size + 1
                break
            ioas.append(_ioa(asdu, at))
            at += IOA_SIZE
        if element == types.VARIABLE:
            at = at + types.SEGMENT_HEADER + asdu[at + 3] if at + types.SEGMENT_HEADER <= size else size + 1
        else:
            at += element
        if at > size:
            break
    if not sequence:
        fields["ioas"] = tuple(ioas)
    if at > size:
        found.append(Iec104Finding.OBJECTS_TRUNCATED)
    elif at < size:
        found.append(Iec104Finding.TRAILING_BYTES)
    return False


def _ioa(data: bytes, at: int) -> int:
    return data[at] | data[at + 1] << 8 | data[at + 2] << 16
