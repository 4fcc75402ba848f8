"""The exact path: one PDU (or one payload) at a time, into `S7Message`s.

It is the reference the column extractor is held to. No input makes it raise: an internal error
gives a message with the finding `UNEXPECTED` (the tests show it never happens).

Decoded requests (jobs, userdata requests, COTP connection requests) are kept, keyed on their
exact bytes, side and offset, up to `REQUEST_CACHE_LIMIT` of them: a plant polls with the same
requests, and an `S7Message` is immutable. Answers, whose data changes, are never kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.findings import S7Finding
from plantwarden.protocols.s7comm.framing import split_pdus, tpkt_is_sound
from plantwarden.protocols.s7comm.messages import S7Item, S7Message

Fields = dict[str, Any]
PARTIAL_USERDATA = frozenset(
    {c.GROUP_MODE, c.GROUP_PROGRAMMER, c.GROUP_CYCLIC, c.GROUP_BLOCK, c.GROUP_PBC, c.GROUP_NC}
)
"""Userdata groups whose data the decoder does not take apart (status PARTIAL); so are CPU
functions other than read SZL (alarms, messages, diagnostics)."""


class Malformed(Exception):
    """A decoding step met a problem: its finding (the fields read so far stay)."""

    def __init__(self, finding: S7Finding) -> None:
        super().__init__(finding.name)
        self.finding = finding


def word(data: bytes, at: int) -> int:
    return data[at] << 8 | data[at + 1]


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[S7Message], bytes]:
    """The messages of one direction's payload (starting at a TPKT) and the bytes of an
    incomplete last PDU, to go before the next segment of the same direction."""
    frames = split_pdus(payload)
    messages = [
        decode_pdu(payload[offset : offset + size], from_server, offset=offset)
        for offset, size, _ in frames.pdus
    ]
    return messages, payload[len(payload) - frames.leftover :] if frames.leftover else b""


REQUEST_CACHE_LIMIT = 4096
"""Decoded requests kept by `decode_pdu`; the cache is emptied when it holds this many."""
_requests: dict[tuple[bytes, bool, int], S7Message] = {}


def decode_pdu(pdu: bytes, from_server: bool, offset: int = 0) -> S7Message:
    """The message of one PDU: its TPKTs up to the one that ends the COTP TSDU. A PDU cut short
    gives `TPKT_BEYOND_DATA` (call this on a stream's leftover bytes when no more will come)."""
    key = (bytes(pdu), bool(from_server), offset)
    message = _requests.get(key)
    if message is None:
        fields: Fields = {"offset": offset, "size": len(pdu), "is_response": key[1]}
        message = complete(fields, lambda: _pdu(fields, key[0]))
        if is_request(message):
            if len(_requests) >= REQUEST_CACHE_LIMIT:
                _requests.clear()
            _requests[key] = message
    return message


def is_request(message: S7Message) -> bool:
    """Whether `message` asks for an answer: a job, a userdata request, a connection request."""
    if message.protocol_id == c.S7COMM_ID:
        return message.rosctr == c.JOB or (message.rosctr == c.USERDATA and message.ud_type == c.TYPE_REQUEST)
    return message.cotp_type == c.COTP_CR and message.protocol_id == -1


def complete(fields: Fields, step: Callable[[], None]) -> S7Message:
    """The message of `fields` once `step` has filled them: a `Malformed` step gives its finding,
    any other exception `UNEXPECTED`."""
    try:
        step()
    except Malformed as problem:
        fields["finding"] = problem.finding
        fields.setdefault("status", ParseStatus.MALFORMED)
        if fields["status"] == ParseStatus.PARTIAL:
            fields["status"] = ParseStatus.MALFORMED
    except Exception:  # no input may crash the sensor; the tests show it never happens
        fields["finding"] = S7Finding.UNEXPECTED
        fields["status"] = ParseStatus.MALFORMED
    return S7Message(**fields)


def _pdu(fields: Fields, pdu: bytes) -> None:
    user_data = _cotp(fields, pdu)
    if user_data is not None:
        decode_user_data(fields, user_data)


def _cotp(fields: Fields, pdu: bytes) -> bytes | None:
    """Walk the TPKTs; return the COTP user data (the data TPDUs' joined), or None for another
    TPDU (whose fields are filled)."""
    at, count, parts = 0, 0, []
    while True:
        if len(pdu) - at < c.TPKT_HEADER:
            fields["fragments"] = max(count, 1)
            raise Malformed(S7Finding.TPKT_BEYOND_DATA)
        count += 1
        fields["fragments"] = count
        if not tpkt_is_sound(pdu, at):
            raise Malformed(S7Finding.BAD_TPKT_HEADER)
        length = word(pdu, at + 2)
        if len(pdu) - at < length:
            raise Malformed(S7Finding.TPKT_BEYOND_DATA)
        li, code = pdu[at + 4], pdu[at + 5] & 0xF0
        fields["cotp_type"] = code
        if code not in c.COTP_NAMES:
            raise Malformed(S7Finding.UNKNOWN_COTP_TYPE)
        if li < c.COTP_MIN_LI.get(code, 1) or 5 + li > length:
            raise Malformed(S7Finding.BAD_COTP_LENGTH)
        last = at + length >= len(pdu)
        if code != c.COTP_DT:
            if count > 1:
                raise Malformed(S7Finding.FRAGMENTS_NOT_ENDED)
            if code in (c.COTP_CR, c.COTP_CC):
                _tsaps(fields, pdu[at + 11 : at + 5 + li])
            if not last:
                raise Malformed(S7Finding.FRAGMENTS_NOT_ENDED)
            return None
        parts.append(pdu[at + 5 + li : at + length])
        if pdu[at + 6] & 0x80:
            if not last:
                raise Malformed(S7Finding.FRAGMENTS_NOT_ENDED)
            return b"".join(parts)
        if last:
            raise Malformed(S7Finding.FRAGMENTS_NOT_ENDED)
        at += length


def _tsaps(fields: Fields, parameters: bytes) -> None:
    """The TSAPs among a connection request's or confirm's parameters."""
    at = 0
    while at < len(parameters):
        if at + 2 > len(parameters) or at + 2 + parameters[at + 1] > len(parameters):
            raise Malformed(S7Finding.BAD_COTP_LENGTH)
        code, size = parameters[at], parameters[at + 1]
        value = parameters[at + 2 : at + 2 + size]
        if code in (c.TSAP_SOURCE, c.TSAP_DESTINATION) and size <= 4:
            fields["src_tsap" if code == c.TSAP_SOURCE else "dst_tsap"] = int.from_bytes(value, "big")
        at += 2 + size


def decode_user_data(fields: Fields, data: bytes) -> None:
    """Fill `fields` from the COTP user data (S7comm, S7comm-plus or another protocol's)."""
    if not data:
        return
    fields["protocol_id"] = data[0]
    if data[0] == c.S7COMM_PLUS_ID:
        _plus(fields, data)
    elif data[0] != c.S7COMM_ID:
        fields["status"] = ParseStatus.PARTIAL
        fields["finding"] = S7Finding.UNKNOWN_PROTOCOL_ID
    else:
        s7_header(fields, data)
        decode_s7_body(fields, data)


def _plus(fields: Fields, data: bytes) -> None:
    """S7comm-plus, detect-only: version, opcode and (requests, responses) function."""
    fields["status"] = ParseStatus.PARTIAL
    if len(data) < 2:
        raise Malformed(S7Finding.TRUNCATED_S7COMM_PLUS)
    fields["plus_version"] = version = data[1]
    at = 4
    if version != 1 and len(data) > at and data[at] == c.PLUS_DIGEST_LENGTH:
        at += 1 + c.PLUS_DIGEST_LENGTH
    if len(data) <= at:
        raise Malformed(S7Finding.TRUNCATED_S7COMM_PLUS)
    opcode = data[at]
    if opcode not in c.PLUS_OPCODES:
        return  # a later fragment of a PDU split over several TSDUs: no opcode of its own
    fields["plus_opcode"] = opcode
    if opcode in (0x31, 0x32, 0x02):
        if len(data) < at + 5:
            raise Malformed(S7Finding.TRUNCATED_S7COMM_PLUS)
        fields["plus_function"] = word(data, at + 3)


def s7_header(header: Fields, data: bytes) -> None:
    """Fill `header` with the S7 header's fields (protocol id 0x32 at 0); raises `Malformed`
    after filling what there is when the 10 bytes common to every ROSCTR are not there."""
    if len(data) < 10:
        raise Malformed(S7Finding.TRUNCATED_HEADER)
    header["rosctr"] = rosctr = data[1]
    header["pdu_ref"] = word(data, 4)
    header["param_length"] = word(data, 6)
    header["data_length"] = word(data, 8)
    if rosctr in (c.ACK, c.ACK_DATA) and len(data) >= 12:
        header["error_class"], header["error_code"] = data[10], data[11]


def header_size(rosctr: int) -> int:
    return 12 if rosctr in (c.ACK, c.ACK_DATA) else 10


def decode_s7_body(fields: Fields, data: bytes) -> None:
    """Fill `fields` from an S7comm PDU whose header `s7_header` read into `fields`."""
    rosctr = fields["rosctr"]
    if rosctr not in c.ROSCTR_NAMES:
        raise Malformed(S7Finding.UNKNOWN_ROSCTR)
    size = header_size(rosctr)
    if len(data) < size:
        raise Malformed(S7Finding.TRUNCATED_HEADER)
    param_end = size + fields["param_length"]
    data_end = param_end + fields["data_length"]
    parameter, body = data[size:param_end], data[param_end:data_end]
    length_ok = data_end == len(data)
    if rosctr == c.USERDATA:
        _userdata(fields, parameter, body)
    elif parameter:
        fields["parameter_function"] = parameter[0]
        _function(fields, rosctr, parameter, body)
    if not length_ok:
        raise Malformed(S7Finding.LENGTH_MISMATCH)


def _function(fields: Fields, rosctr: int, parameter: bytes, body: bytes) -> None:
    code = parameter[0]
    job = rosctr == c.JOB
    if code == c.SETUP_COMMUNICATION:
        if len(parameter) != 8:
            raise Malformed(S7Finding.BAD_PARAMETER)
        fields["max_amq_calling"] = word(parameter, 2)
        fields["max_amq_called"] = word(parameter, 4)
        fields["pdu_length"] = word(parameter, 6)
    elif code in (c.READ_VAR, c.WRITE_VAR):
        _variables(fields, job, code, parameter, body)
    elif code in c.BLOCK_FUNCTIONS:
        _block_function(fields, job, code, parameter, body)
    elif code in (c.PI_SERVICE, c.PLC_STOP):
        if job:
            _pi_service(fields, code, parameter)
    elif code != c.CPU_SERVICES:
        raise Malformed(S7Finding.UNKNOWN_FUNCTION)


def _variables(fields: Fields, job: bool, code: int, parameter: bytes, body: bytes) -> None:
    if len(parameter) < 2:
        raise Malformed(S7Finding.BAD_PARAMETER)
    fields["item_count"] = count = parameter[1]
    if job:
        fields["items"] = items = _items(parameter[2:])
        if len(items) != count:
            raise Malformed(S7Finding.ITEM_COUNT_MISMATCH)
        if any(item.syntax_id not in (c.SYNTAX_S7ANY, c.SYNTAX_DBREAD) for item in items):
            fields["status"] = ParseStatus.PARTIAL  # an item of a syntax not decoded
        if code == c.WRITE_VAR:
            fields["data_items"] = _data_items(body, count)
    else:
        if len(parameter) != 2:
            raise Malformed(S7Finding.BAD_PARAMETER)
        if not body and (fields.get("error_class", 0) or fields.get("error_code", 0)):
            return  # the header's error stands for the items
        if code == c.READ_VAR:
            fields["data_items"] = values = _data_items(body, count)
            fields["item_results"] = tuple(result for result, _, _ in values)
        elif body:
            fields["item_results"] = tuple(body[:count])
            if len(body) != count:
                raise Malformed(S7Finding.ITEM_COUNT_MISMATCH)


def _items(part: bytes) -> tuple[S7Item, ...]:
    """The request items of a read or write var parameter (after the item count)."""
    items, at = [], 0
    while at < len(part):
        if at + 2 > len(part) or part[at] != c.VARIABLE_SPECIFICATION:
            raise Malformed(S7Finding.BAD_ITEM)
        size = part[at + 1]
        spec = part[at + 2 : at + 2 + size]
        if len(spec) < max(size, 1):
            raise Malformed(S7Finding.BAD_ITEM)
        if spec[0] == c.SYNTAX_S7ANY:
            if size != c.S7ANY_LENGTH:
                raise Malformed(S7Finding.BAD_ITEM)
            address = spec[7] << 16 | spec[8] << 8 | spec[9]
            items.append(S7Item(spec[0], spec[1], word(spec, 2), word(spec, 4), spec[6], address))
        elif spec[0] == c.SYNTAX_DBREAD:
            items.append(_dbread(spec))
        else:
            items.append(S7Item(spec[0], raw=bytes(spec)))
        at += 2 + size
    return tuple(items)


def _dbread(spec: bytes) -> S7Item:
    """DBREAD (S7-400 multi-area DB read): area count, then per area the bytes to read (1), the
    DB number (2) and the start byte (2)."""
    if len(spec) < 2 or len(spec) != 2 + 5 * spec[1]:
        raise Malformed(S7Finding.BAD_ITEM)
    areas = tuple((spec[at], word(spec, at + 1), word(spec, at + 3)) for at in range(2, len(spec), 5))
    return S7Item(spec[0], areas=areas)


def _data_items(body: bytes, count: int) -> tuple[tuple[int, int, bytes], ...]:
    """The data items (return code, transport size, value) of a read var response or a write
    var request."""
    values, at = [], 0
    while at < len(body):
        if at + 4 > len(body):
            raise Malformed(S7Finding.BAD_DATA)
        result, size, length = body[at], body[at + 1], word(body, at + 2)
        octets = (length + 7) >> 3 if size in c.DATA_BIT_LENGTHS else length
        if result not in (0x00, c.ITEM_OK):
            octets = 0  # an item that failed carries no value, whatever its length says
        value = body[at + 4 : at + 4 + octets]
        if len(value) < octets:
            raise Malformed(S7Finding.BAD_DATA)
        values.append((result, size, bytes(value)))
        at += 4 + octets
        if octets % 2 and at < len(body):
            at += 1  # fill byte after an odd-length item that is not the last
    if len(values) != count:
        raise Malformed(S7Finding.ITEM_COUNT_MISMATCH)
    return tuple(values)


def _block(fields: Fields, name: bytes) -> None:
    """A block file name: "_" (complete module), type (2 hex digits), number (5 digits), file
    system (P, A or B), e.g. "_0A00001P" for DB1."""
    fields["filename"] = text = name.decode("latin-1")
    kind, number = text[1:3], text[3:8]
    if len(text) == 9 and kind in c.BLOCK_TYPES and number.isascii() and number.isdigit():
        fields["block_number"] = int(number)
        fields["blocks"] = (f"{c.BLOCK_TYPES[kind]}{int(number)}",)


def _block_function(fields: Fields, job: bool, code: int, parameter: bytes, body: bytes) -> None:
    """Request download, download block, download ended, start upload, upload, end upload."""
    named = job and code not in (c.UPLOAD, c.END_UPLOAD)
    if len(parameter) < (9 if named else 1):
        raise Malformed(S7Finding.BAD_PARAMETER)
    if len(parameter) >= 8 and code in (c.START_UPLOAD, c.UPLOAD, c.END_UPLOAD):
        fields["upload_id"] = int.from_bytes(parameter[4:8], "big")
    if named:
        size = parameter[8]
        end = 9 + size
        if len(parameter) < end:
            raise Malformed(S7Finding.BAD_PARAMETER)
        _block(fields, parameter[9:end])
        if code == c.REQUEST_DOWNLOAD and len(parameter) > end:
            end += 1 + parameter[end]
        if len(parameter) != end:
            raise Malformed(S7Finding.BAD_PARAMETER)
    if not job and code in (c.DOWNLOAD_BLOCK, c.UPLOAD) and body:
        if len(body) < 4 or len(body) != 4 + word(body, 0):
            raise Malformed(S7Finding.BAD_DATA)
        fields["data"] = bytes(body[4:])


def _pi_service(fields: Fields, code: int, parameter: bytes) -> None:
    """PI service (0x28): 7 unknown bytes, parameter block, service name; PLC stop (0x29): 5
    unknown bytes, service name."""
    if code == c.PLC_STOP:
        at = 6
    else:
        if len(parameter) < 10:
            raise Malformed(S7Finding.BAD_PARAMETER)
        block_length = word(parameter, 8)
        block = parameter[10 : 10 + block_length]
        at = 10 + block_length
        if len(block) >= 2 and len(block) == 2 + 8 * block[0]:
            names = [block[2 + 8 * i : 10 + 8 * i] for i in range(block[0])]
            blocks = [b"_" + name for name in names]
            found: list[str] = []
            for name in blocks:
                one: Fields = {}
                _block(one, name)
                found.extend(one.get("blocks", ()))
                fields.setdefault("block_number", one.get("block_number", -1))
            fields["blocks"] = tuple(found)
    if len(parameter) < at + 1 or len(parameter) != at + 1 + parameter[at]:
        raise Malformed(S7Finding.BAD_PARAMETER)
    fields["pi_service"] = parameter[at + 1 :].decode("latin-1")


def _userdata(fields: Fields, parameter: bytes, body: bytes) -> None:
    if len(parameter) < 8 or parameter[:3] != c.USERDATA_HEAD or parameter[3] not in (4, 8):
        raise Malformed(S7Finding.BAD_USERDATA_HEADER)
    if len(parameter) != 4 + parameter[3]:
        raise Malformed(S7Finding.BAD_USERDATA_HEADER)
    fields["ud_method"] = parameter[4]
    fields["ud_type"] = kind = parameter[5] >> 4
    fields["ud_group"] = group = parameter[5] & 0x0F
    fields["ud_subfunction"] = sub = parameter[6]
    fields["ud_sequence"] = parameter[7]
    if parameter[3] == 8:
        fields["ud_unit_ref"], fields["ud_last_unit"] = parameter[8], parameter[9]
        fields["ud_error"] = word(parameter, 10)
    if parameter[4] not in (c.METHOD_REQUEST, c.METHOD_RESPONSE) or kind not in (
        c.TYPE_PUSH,
        c.TYPE_REQUEST,
        c.TYPE_RESPONSE,
    ):
        raise Malformed(S7Finding.BAD_USERDATA_HEADER)
    if not body:
        return
    if len(body) < 4 or 4 + word(body, 2) > len(body):
        raise Malformed(S7Finding.BAD_DATA)
    fields["ud_return_code"] = body[0]
    value = bytes(body[4 : 4 + word(body, 2)])
    if group != c.GROUP_SECURITY:  # a password, even obfuscated, is not kept in a record
        fields["data"] = value
    if (group, sub) == (c.GROUP_CPU, c.READ_SZL):
        whole = fields.get("ud_unit_ref", 0) == 0
        if len(value) >= 4 and (kind == c.TYPE_REQUEST or whole):
            fields["szl_id"], fields["szl_index"] = word(value, 0), word(value, 2)
        elif kind != c.TYPE_REQUEST and not whole:
            fields["status"] = ParseStatus.PARTIAL  # a fragment of a longer answer
    elif group == c.GROUP_TIME and len(value) == CLOCK_SIZE:
        fields["clock"] = clock_text(value)
    elif group in PARTIAL_USERDATA or group == c.GROUP_CPU:
        fields["status"] = ParseStatus.PARTIAL


CLOCK_SIZE = 10


def clock_text(value: bytes) -> str:
    """An S7 clock (BCD: reserved, a byte STEP 7 fills with 19, the year's last two digits, month,
    day, hour, minute, second, three digits of milliseconds and the weekday) as ISO 8601 text;
    the year is 1990-2089, as in DATE_AND_TIME; empty when not BCD."""
    digits = value.hex()
    if not digits.isdigit():
        return ""
    year = int(digits[4:6])
    year += 1900 if year >= 90 else 2000
    month, day, hour, minute, second = (digits[i : i + 2] for i in range(6, 16, 2))
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{digits[16:19]}"
