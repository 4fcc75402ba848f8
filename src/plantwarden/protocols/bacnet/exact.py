"""The exact path: one BACnet/IP datagram at a time, into a `BacnetMessage`.

Layers: BVLC (Annex J.2), NPDU (clause 6.2), then a network layer message (clause 6.4) or an
APDU (clause 20.1) and its service parameters (clauses 15-17 and 21, tagged as clause 20.2).
Every datagram is one message (BACnet/IP has no stream framing); no input makes the decoder
raise: a bug would show as `UNEXPECTED`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from plantwarden.protocols.bacnet import services as sv
from plantwarden.protocols.bacnet import tags
from plantwarden.protocols.bacnet.findings import BacnetFinding
from plantwarden.protocols.bacnet.messages import DEFAULTS, BacnetMessage
from plantwarden.protocols.bacnet.names import object_type_name, property_name
from plantwarden.protocols.bacnet.tags import Malformed, Reader
from plantwarden.protocols.common import Operation, ParseStatus

Draft = dict[str, Any]
"""A message's fields while it is decoded (`BacnetMessage`'s names)."""
Handler = Callable[[Draft, Reader], bool]
"""Decodes a service's parameters into the draft; True when every parameter was interpreted
(else the rest was only walked, tag by tag: `ParseStatus.PARTIAL`)."""

HEADER_SIZES = (4, 2, 3, 3, 4, 3, 3, 3)
"""APDU fixed header size by PDU type (confirmed requests and complex ACKs: 2 more if segmented),
up to the service choice, reason or window size included."""


def decode(datagram: bytes, *, segment: int = 0) -> BacnetMessage:
    """The message of one UDP datagram's payload. `segment` only labels it."""
    draft: Draft = {**DEFAULTS, "segment": segment, "targets": []}
    try:
        finding, complete = _bvlc(draft, bytes(datagram))
    except Exception:  # no input may crash the sensor; the tests show it never happens
        draft = {**DEFAULTS, "segment": segment, "targets": []}
        finding, complete = BacnetFinding.UNEXPECTED, False
    draft["finding"] = finding
    if finding != BacnetFinding.OK:
        draft["status"] = ParseStatus.MALFORMED
    else:
        draft["status"] = ParseStatus.OK if complete else ParseStatus.PARTIAL
    if draft.get("function", "") == "":
        draft["operation"] = Operation.MALFORMED
    draft["targets"] = tuple(draft["targets"])
    return BacnetMessage(**draft)


def decode_payload(payload: bytes, from_server: bool) -> tuple[list[BacnetMessage], bytes]:
    """The one message of a datagram (`from_server` is not used: BACnet peers share port 47808,
    and `is_response` follows from the PDU), and no leftover bytes."""
    return [decode(payload)], b""


def _bvlc(d: Draft, data: bytes) -> tuple[BacnetFinding, bool]:
    if len(data) < sv.BVLC_HEADER:
        return BacnetFinding.TRUNCATED, False
    function = data[1]
    d["bvlc_type"], d["bvlc_function"] = data[0], function
    d["bvlc_length"] = length = int.from_bytes(data[2:4], "big")
    if data[0] != sv.BVLC_TYPE_IP:
        return BacnetFinding.BAD_BVLC_TYPE, False
    finding, complete = _bvlc_message(d, data, function)
    if finding == BacnetFinding.OK and length != len(data):
        return BacnetFinding.BAD_BVLC_LENGTH, complete
    return finding, complete


def _bvlc_message(d: Draft, data: bytes, function: int) -> tuple[BacnetFinding, bool]:
    """The message after the BVLC header: the whole datagram is decoded, whatever the BVLC
    length says (as Wireshark does); a length that disagrees is reported if nothing else is."""
    if function in sv.NPDU_FUNCTIONS:
        at = sv.BVLC_HEADER
        if function == sv.FORWARDED_NPDU:
            if len(data) < at + sv.ADDRESS:
                _function(d, function, sv.BVLC_FUNCTIONS[function], Operation.OTHER)
                return BacnetFinding.BAD_BVLC_BODY, False
            d["origin"] = int.from_bytes(data[at : at + sv.ADDRESS], "big")
            at += sv.ADDRESS
        return _npdu(d, data, at)
    if function not in sv.BVLC_FUNCTIONS:
        _function(d, function, f"bvlc_function_{function}", Operation.OTHER)
        return BacnetFinding.UNKNOWN_BVLC_FUNCTION, False
    _function(d, function, sv.BVLC_FUNCTIONS[function], sv.BVLC_OPERATIONS.get(function, Operation.OTHER))
    d["is_response"] = function in sv.BVLC_RESPONSES
    return _bvlc_body(d, function, data[sv.BVLC_HEADER :])


def _function(d: Draft, code: int, name: str, operation: Operation) -> None:
    d["function_code"], d["function"], d["operation"] = code, name, operation


def _address_text(entry: bytes) -> str:
    return f"{ipaddress.IPv4Address(entry[:4])}:{int.from_bytes(entry[4:6], 'big')}"


def _bvlc_body(d: Draft, function: int, body: bytes) -> tuple[BacnetFinding, bool]:
    """A BVLC message without an NPDU: its fixed or table-shaped body."""
    size = len(body)
    if function == sv.SECURED_BVLL:
        return BacnetFinding.OK, False
    if function in (sv.READ_BDT, sv.READ_FDT):
        return (BacnetFinding.OK if size == 0 else BacnetFinding.BAD_BVLC_BODY), True
    if function in (sv.RESULT, sv.REGISTER_FOREIGN_DEVICE):
        if size != 2:
            return BacnetFinding.BAD_BVLC_BODY, False
        if function == sv.RESULT:
            d["bvlc_result"] = d["result"] = int.from_bytes(body, "big")
        return BacnetFinding.OK, True
    if function == sv.DELETE_FDT_ENTRY:
        if size != sv.ADDRESS:
            return BacnetFinding.BAD_BVLC_BODY, False
        d["targets"].append(_address_text(body))
        return BacnetFinding.OK, True
    entry = sv.FDT_ENTRY if function == sv.READ_FDT_ACK else sv.BDT_ENTRY  # both 10 octets
    if size % entry:
        return BacnetFinding.BAD_BVLC_BODY, False
    d["targets"].extend(_address_text(body[at : at + sv.ADDRESS]) for at in range(0, size, entry))
    if function != sv.WRITE_BDT:
        d["result"] = 0
    return BacnetFinding.OK, True


def _npdu(d: Draft, data: bytes, at: int) -> tuple[BacnetFinding, bool]:
    end = len(data)
    if at + 2 > end:
        return BacnetFinding.NPDU_TOO_SHORT, False
    d["npdu_version"], d["npdu_control"] = version, control = data[at], data[at + 1]
    if version != sv.NPDU_VERSION:
        return BacnetFinding.BAD_NPDU_VERSION, False
    at += 2
    if control & sv.DESTINATION:
        if at + 3 > end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["dnet"], d["dlen"] = int.from_bytes(data[at : at + 2], "big"), data[at + 2]
        at += 3
        if at + d["dlen"] > end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["dadr"] = data[at : at + d["dlen"]]
        at += d["dlen"]
    if control & sv.SOURCE:
        if at + 3 > end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["snet"], d["slen"] = int.from_bytes(data[at : at + 2], "big"), data[at + 2]
        at += 3
        if at + d["slen"] > end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["sadr"] = data[at : at + d["slen"]]
        at += d["slen"]
        if d["slen"] == 0 or d["snet"] == 0xFFFF:
            return BacnetFinding.BAD_NPDU_ADDRESS, False
    if control & sv.DESTINATION:
        if at >= end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["hop_count"] = data[at]
        at += 1
    if control & sv.NETWORK_MESSAGE:
        if at >= end:
            return BacnetFinding.NPDU_TOO_SHORT, False
        d["network_message"] = kind = data[at]
        at += 1
        if kind >= sv.PROPRIETARY_MESSAGE:
            if at + 2 > end:
                return BacnetFinding.NPDU_TOO_SHORT, False
            d["vendor_id"] = int.from_bytes(data[at : at + 2], "big")
            at += 2
        return _network_message(d, kind, data[at:])
    return _apdu(d, data, at)


def _network_message(d: Draft, kind: int, body: bytes) -> tuple[BacnetFinding, bool]:
    """A network layer message: the networks it names as targets ("network:N")."""
    _function(d, kind, sv.network_message(kind), sv.NETWORK_OPERATIONS.get(kind, Operation.OTHER))
    d["is_response"] = kind in sv.NETWORK_RESPONSES
    size = len(body)
    networks: list[int] = []
    if kind == 0x00:  # Who-Is-Router-To-Network: an optional DNET
        if size not in (0, 2):
            return BacnetFinding.BAD_NETWORK_MESSAGE, False
        networks = [int.from_bytes(body, "big")] if size else []
    elif kind in (0x01, 0x04, 0x05):  # I-Am-Router, Router-Busy, Router-Available: DNETs
        if size % 2 or (kind == 0x01 and not size):
            return BacnetFinding.BAD_NETWORK_MESSAGE, False
        networks = [int.from_bytes(body[at : at + 2], "big") for at in range(0, size, 2)]
    elif kind in (0x02, 0x03, 0x13):  # DNET + performance; reason + DNET; number + status
        if size != 3:
            return BacnetFinding.BAD_NETWORK_MESSAGE, False
        networks = [int.from_bytes(body[1:3] if kind == 0x03 else body[0:2], "big")]
        if kind == 0x03:
            d["reason"] = body[0]
    elif kind == 0x12:  # What-Is-Network-Number
        if size:
            return BacnetFinding.BAD_NETWORK_MESSAGE, False
    elif 0x14 <= kind < sv.PROPRIETARY_MESSAGE:
        return BacnetFinding.BAD_NETWORK_MESSAGE, False
    else:
        return BacnetFinding.OK, False
    d["targets"].extend(f"network:{network}" for network in networks)
    return BacnetFinding.OK, True


def _apdu(d: Draft, data: bytes, at: int) -> tuple[BacnetFinding, bool]:
    end = len(data)
    if at >= end:
        return BacnetFinding.APDU_TOO_SHORT, False
    d["pdu_type"], d["pdu_flags"] = kind, flags = data[at] >> 4, data[at] & 0x0F
    if kind > sv.ABORT:
        return BacnetFinding.UNKNOWN_PDU_TYPE, False
    segmented = kind in (sv.CONFIRMED, sv.COMPLEX_ACK) and bool(flags & sv.SEGMENTED)
    size = HEADER_SIZES[kind] + (2 if segmented else 0)
    if at + size > end:
        return BacnetFinding.APDU_TOO_SHORT, False
    header = data[at : at + size]
    at += size
    if kind == sv.UNCONFIRMED:
        return _service(d, kind, header[1], Reader(data, at, end))
    d["invoke_id"] = header[2] if kind == sv.CONFIRMED else header[1]
    if kind == sv.SEGMENT_ACK:
        d["sequence_number"], d["window_size"] = header[2], header[3]
        d["is_response"] = bool(flags & sv.SERVER)
        _function(d, -1, "segment_ack", Operation.OTHER)
        return (BacnetFinding.OK if at == end else BacnetFinding.TRAILING_BYTES), True
    if kind in (sv.REJECT, sv.ABORT):
        d["reason"] = header[2]
        d["is_response"] = kind == sv.REJECT or bool(flags & sv.SERVER)
        d["result"] = (sv.RESULT_REJECT if kind == sv.REJECT else sv.RESULT_ABORT) | header[2]
        _function(d, -1, sv.PDU_TYPES[kind], Operation.OTHER)
        return (BacnetFinding.OK if at == end else BacnetFinding.TRAILING_BYTES), True
    if segmented:
        d["sequence_number"], d["window_size"] = header[-3], header[-2]
    return _service(d, kind, header[-1], Reader(data, at, end))


def _service(d: Draft, kind: int, choice: int, reader: Reader) -> tuple[BacnetFinding, bool]:
    """The service of a confirmed or unconfirmed request, simple or complex ACK, or error."""
    d["service_choice"] = choice
    unconfirmed = kind == sv.UNCONFIRMED
    known = sv.UNCONFIRMED_SERVICES if unconfirmed else sv.CONFIRMED_SERVICES
    name, operation = sv.unconfirmed_service(choice) if unconfirmed else sv.confirmed_service(choice)
    _function(d, choice, name, operation)
    d["is_response"] = kind in (sv.SIMPLE_ACK, sv.COMPLEX_ACK, sv.ERROR) or (
        kind == sv.UNCONFIRMED and choice in sv.ANSWERS
    )
    if kind in (sv.SIMPLE_ACK, sv.COMPLEX_ACK):
        d["result"] = 0
    if choice not in known:
        return BacnetFinding.UNKNOWN_SERVICE, False
    if kind in (sv.CONFIRMED, sv.COMPLEX_ACK) and d["pdu_flags"] & sv.SEGMENTED:
        return BacnetFinding.OK, False  # a segment: its parameters may be cut anywhere
    if kind == sv.SIMPLE_ACK:
        return (BacnetFinding.OK if reader.done() else BacnetFinding.TRAILING_BYTES), True
    handler = HANDLERS[kind].get(choice, _walk)
    try:
        complete = handler(d, reader)
    except Malformed as error:
        return error.finding, False
    if not reader.done():
        return BacnetFinding.TRAILING_BYTES, False
    return BacnetFinding.OK, complete


def _target(d: Draft, object_type: int, instance: int, prop: int = -1, index: int = -1) -> None:
    """Add a target ("analog-value:3 present-value[2]"); the first sets the target columns."""
    text = f"{object_type_name(object_type)}:{instance}"
    if prop >= 0:
        text += f" {property_name(prop)}"
        if index >= 0:
            text += f"[{index}]"
    if not d["targets"]:
        d.update(object_type=object_type, instance=instance, property_id=prop, array_index=index)
        d["address"] = object_type << tags.INSTANCE_BITS | instance
    d["targets"].append(text)


def _first_value(d: Draft, reader: Reader, tag: tags.Tag | None) -> None:
    if tag is not None and d["value_tag"] < 0:
        d["value_tag"], d["value"] = tag.number, tags.application_value(reader.data, tag)


def _walk(d: Draft, reader: Reader) -> bool:
    """A service whose parameters are not interpreted: only their tags are checked."""
    reader.rest()
    return False


def _read_property(d: Draft, r: Reader) -> bool:
    object_type, instance = r.context_object(0)
    prop, index = r.context_unsigned(1), r.optional_unsigned(2)
    _target(d, object_type, instance, prop, index)
    return True


def _read_property_ack(d: Draft, r: Reader) -> bool:
    _read_property(d, r)
    r.opening(3)
    _first_value(d, r, r.through_closing(3))
    return True


def _write_property(d: Draft, r: Reader) -> bool:
    _read_property_ack(d, r)
    d["priority"] = r.optional_unsigned(4)
    return True


def _read_property_multiple(d: Draft, r: Reader) -> bool:
    while True:
        object_type, instance = r.context_object(0)
        r.opening(1)
        while not _closing_next(r, 1):
            prop, index = r.context_unsigned(0), r.optional_unsigned(1)
            _target(d, object_type, instance, prop, index)
        r.take()
        if r.done():
            return True


def _closing_next(r: Reader, number: int) -> bool:
    tag = r.peek()
    if tag is None:
        raise Malformed(BacnetFinding.BAD_TAG)
    return tag.closing and tag.number == number


def _read_property_multiple_ack(d: Draft, r: Reader) -> bool:
    while True:
        object_type, instance = r.context_object(0)
        r.opening(1)
        while not _closing_next(r, 1):
            prop, index = r.context_unsigned(2), r.optional_unsigned(3)
            _target(d, object_type, instance, prop, index)
            if r.is_opening(4):
                r.take()
                _first_value(d, r, r.through_closing(4))
            else:
                r.opening(5)  # property access error: class and code (the first kept)
                error_class = tags.unsigned(r.data, r.application(tags.ENUMERATED))
                error_code = tags.unsigned(r.data, r.application(tags.ENUMERATED))
                if d["error_class"] < 0:
                    d["error_class"], d["error_code"] = error_class, error_code
                if not _closing_next(r, 5):
                    raise Malformed(BacnetFinding.MISSING_PARAMETER)
                r.take()
        r.take()
        if r.done():
            return True


def _write_property_multiple(d: Draft, r: Reader) -> bool:
    while True:
        object_type, instance = r.context_object(0)
        r.opening(1)
        while not _closing_next(r, 1):
            prop, index = r.context_unsigned(0), r.optional_unsigned(1)
            _target(d, object_type, instance, prop, index)
            r.opening(2)
            _first_value(d, r, r.through_closing(2))
            priority = r.optional_unsigned(3)
            if d["priority"] < 0:
                d["priority"] = priority
        r.take()
        if r.done():
            return True


def _subscribe_cov(d: Draft, r: Reader) -> bool:
    r.context_unsigned(0)  # subscriber process identifier
    _target(d, *r.context_object(1))
    if r.is_context(2):
        r.take()  # issue confirmed notifications
    r.optional_unsigned(3)  # lifetime
    return True


def _subscribe_cov_property(d: Draft, r: Reader) -> bool:
    r.context_unsigned(0)
    object_type, instance = r.context_object(1)
    if r.is_context(2):
        r.take()
    r.optional_unsigned(3)
    r.opening(4)
    prop, index = r.context_unsigned(0), r.optional_unsigned(1)
    _target(d, object_type, instance, prop, index)
    if not _closing_next(r, 4):
        raise Malformed(BacnetFinding.MISSING_PARAMETER)
    r.take()
    if r.is_context(5):
        r.take()  # COV increment
    return True


def _file_access(d: Draft, r: Reader) -> bool:
    _target(d, *tags.object_id(r.data, r.application(tags.OBJECT_ID)))
    r.rest()  # the stream or record access: walked only
    return False


def _read_range(d: Draft, r: Reader) -> bool:
    _read_property(d, r)
    r.rest()  # the range: walked only
    return False


def _reinitialize_device(d: Draft, r: Reader) -> bool:
    d["state"] = r.context_unsigned(0)
    if r.is_context(1):
        r.take()  # password
    return True


def _device_communication_control(d: Draft, r: Reader) -> bool:
    r.optional_unsigned(0)  # time duration
    d["state"] = r.context_unsigned(1)
    if r.is_context(2):
        r.take()  # password
    return True


def _error(d: Draft, r: Reader) -> bool:
    """Error-PDU: the class and code (inside context tag 0 for the services whose error carries
    more, such as writePropertyMultiple's first failed write, which is walked only)."""
    wrapped = r.is_opening(0)
    if wrapped:
        r.take()
    d["error_class"] = tags.unsigned(r.data, r.application(tags.ENUMERATED))
    d["error_code"] = tags.unsigned(r.data, r.application(tags.ENUMERATED))
    d["result"] = sv.error_result(d["error_class"], d["error_code"])
    if not wrapped:
        return True
    if not _closing_next(r, 0):
        raise Malformed(BacnetFinding.MISSING_PARAMETER)
    r.take()
    complete = r.done()
    r.rest()
    return complete


def _i_am(d: Draft, r: Reader) -> bool:
    object_type, instance = tags.object_id(r.data, r.application(tags.OBJECT_ID))
    _target(d, object_type, instance)
    d["device_instance"] = instance
    d["max_apdu"] = tags.unsigned(r.data, r.application(tags.UNSIGNED))
    d["segmentation"] = tags.unsigned(r.data, r.application(tags.ENUMERATED))
    d["vendor_id"] = tags.unsigned(r.data, r.application(tags.UNSIGNED))
    return True


def _i_have(d: Draft, r: Reader) -> bool:
    d["device_instance"] = tags.object_id(r.data, r.application(tags.OBJECT_ID))[1]
    _target(d, *tags.object_id(r.data, r.application(tags.OBJECT_ID)))
    tags.application_value(r.data, r.application(tags.CHARACTERS))
    return True


def _range(d: Draft, r: Reader) -> None:
    if r.is_context(0):
        d["low_limit"] = r.context_unsigned(0)
        d["high_limit"] = r.context_unsigned(1)


def _who_has(d: Draft, r: Reader) -> bool:
    _range(d, r)
    if r.is_context(2):
        _target(d, *r.context_object(2))
    else:
        r.context(3)  # object name
    return True


def _who_is(d: Draft, r: Reader) -> bool:
    _range(d, r)
    return True


def _time_synchronization(d: Draft, r: Reader) -> bool:
    tags.application_value(r.data, r.application(tags.DATE))
    tags.application_value(r.data, r.application(tags.TIME))
    return True


HANDLERS: dict[int, dict[int, Handler]] = {
    sv.CONFIRMED: {
        sv.SUBSCRIBE_COV: _subscribe_cov,
        sv.ATOMIC_READ_FILE: _file_access,
        sv.ATOMIC_WRITE_FILE: _file_access,
        sv.READ_PROPERTY: _read_property,
        sv.READ_PROPERTY_MULTIPLE: _read_property_multiple,
        sv.WRITE_PROPERTY: _write_property,
        sv.WRITE_PROPERTY_MULTIPLE: _write_property_multiple,
        sv.DEVICE_COMMUNICATION_CONTROL: _device_communication_control,
        sv.REINITIALIZE_DEVICE: _reinitialize_device,
        sv.READ_RANGE: _read_range,
        sv.SUBSCRIBE_COV_PROPERTY: _subscribe_cov_property,
    },
    sv.UNCONFIRMED: {
        sv.I_AM: _i_am,
        sv.I_HAVE: _i_have,
        sv.WHO_HAS: _who_has,
        sv.WHO_IS: _who_is,
        sv.TIME_SYNCHRONIZATION: _time_synchronization,
        sv.UTC_TIME_SYNCHRONIZATION: _time_synchronization,
    },
    sv.COMPLEX_ACK: {
        sv.READ_PROPERTY: _read_property_ack,
        sv.READ_PROPERTY_MULTIPLE: _read_property_multiple_ack,
    },
    sv.ERROR: dict.fromkeys(sv.CONFIRMED_SERVICES, _error),
}
