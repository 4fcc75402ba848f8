"""The fast path: `extract` turns many BACnet/IP datagrams into `BacnetColumns` at once.

Each datagram is one row (BACnet/IP has no stream framing). Over all rows at once, with numpy,
on each datagram's first `WINDOW` bytes: the BVLC header, the Forwarded-NPDU's originating
address, the NPDU header (its optional destination and source addresses and hop count at
offsets computed per row), the APDU header (type, flags, invoke id, segment number and window,
service choice), and the whole of the common fixed-layout PDUs: simple, segment ACK, reject,
abort, segments of segmented messages (header only), Who-Is without a range, and the usual
encodings of readProperty requests and ACKs of one primitive value and of I-Am. Target texts
are then formatted per row in Python.

Every other row (BVLC messages without an NPDU, network layer messages, other services,
unusual encodings, anything malformed beyond the BVLC header) is decoded by the exact decoder,
one datagram at a time. The result is, row for row and value for value, what
`columns.exact_columns` gives: the tests hold the two to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.bacnet import services as sv
from plantwarden.protocols.bacnet import tags
from plantwarden.protocols.bacnet.columns import BacnetColumns
from plantwarden.protocols.bacnet.exact import HEADER_SIZES, decode
from plantwarden.protocols.bacnet.findings import BacnetFinding
from plantwarden.protocols.bacnet.messages import SCHEMA
from plantwarden.protocols.bacnet.names import object_type_name, property_name
from plantwarden.protocols.common import Operation, ParseStatus, SummaryColumns

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
WINDOW = 64
"""Bytes of each datagram read into the vectorised decoder (rows that need more go exact)."""
SERVICES = 256

_CONFIRMED_NAMES = np.array([sv.confirmed_service(code)[0] for code in range(SERVICES)], dtype=object)
_CONFIRMED_OPERATIONS = np.array([sv.confirmed_service(code)[1] for code in range(SERVICES)], dtype=np.uint8)
_CONFIRMED_KNOWN = np.isin(np.arange(SERVICES), list(sv.CONFIRMED_SERVICES))
_HEADER_SIZES = np.array(HEADER_SIZES, dtype=np.int64)


UNBOUNDED = 1 << 32


def _value_sizes() -> tuple[Ints, Ints]:
    """Per application tag, the content sizes `tags.application_value` takes as valid (the
    boolean's LVT is its value and it has no content; 15 announces an extended tag number,
    which the rows decoded here do not have)."""
    low, high = np.zeros(16, dtype=np.int64), np.full(16, UNBOUNDED, dtype=np.int64)
    high[[tags.NULL, tags.BOOLEAN]] = 0
    low[[tags.UNSIGNED, tags.SIGNED, tags.ENUMERATED]] = 1
    high[[tags.UNSIGNED, tags.SIGNED, tags.ENUMERATED]] = tags.MAX_INTEGER
    for number, size in (
        (tags.REAL, 4),
        (tags.DOUBLE, 8),
        (tags.DATE, 4),
        (tags.TIME, 4),
        (tags.OBJECT_ID, 4),
    ):
        low[number], high[number] = size, size
    low[tags.CHARACTERS] = 1
    low[15], high[15] = 1, 0
    return low, high


_MIN_SIZE, _MAX_SIZE = _value_sizes()


class _Bytes:
    """The rows' windows, read at per-row positions."""

    def __init__(self, buffer: npt.NDArray[np.uint8], starts: Ints, lengths: Ints) -> None:
        count = len(starts)
        span = np.arange(WINDOW, dtype=np.int64)
        inside = span[None, :] < np.minimum(lengths, WINDOW)[:, None]
        self.window = np.zeros((count, WINDOW), dtype=np.uint8)
        positions = starts[:, None] + span[None, :]
        self.window[inside] = buffer[positions[inside]]
        self.rows = np.arange(count)

    def byte(self, at: Ints | int) -> Ints:
        """The byte at `at` (positions past the window read as the last byte: callers check)."""
        position = np.clip(at, 0, WINDOW - 1)
        values: Ints = self.window[self.rows, position].astype(np.int64)
        return values

    def uint(self, at: Ints | int, size: Ints | int) -> Ints:
        """The big-endian unsigned integer of `size` (0-4) bytes at `at`."""
        value = np.zeros(len(self.rows), dtype=np.int64)
        for index in range(4):
            value = np.where(
                index < np.asarray(size), (value << 8) | self.byte(np.asarray(at) + index), value
            )
        return value


class _Out:
    """The output columns, every row "none" until set."""

    def __init__(self, count: int) -> None:
        self.ids: dict[str, npt.NDArray[Any]] = {
            c.name: np.full(count, c.none, dtype=c.dtype) for c in SCHEMA
        }
        targets = np.empty(count, dtype=object)
        targets.fill(())
        function = np.empty(count, dtype=object)
        function.fill("")
        self.summary = SummaryColumns(
            function_code=np.full(count, -1, dtype=np.int32),
            function=function,
            operation=np.full(count, Operation.MALFORMED, dtype=np.uint8),
            is_response=np.zeros(count, dtype=np.bool_),
            unit=np.full(count, -1, dtype=np.int32),
            address=np.full(count, -1, dtype=np.int64),
            quantity=np.zeros(count, dtype=np.int32),
            targets=targets,
            result=np.full(count, -1, dtype=np.int32),
            status=np.full(count, ParseStatus.OK, dtype=np.uint8),
            finding=np.zeros(count, dtype=np.uint8),
        )

    def put(self, name: str, mask: Mask, values: npt.NDArray[Any] | int | str) -> None:
        column = self.ids[name] if name in self.ids else getattr(self.summary, name)
        column[mask] = values[mask] if isinstance(values, np.ndarray) else values


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> BacnetColumns:
    """One row per datagram `buffer[start:start + length]` (`from_server` is not used:
    `is_response` follows from the PDU). No leftover: UDP."""
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    count = len(starts)
    data, out = _Bytes(np.asarray(buffer, dtype=np.uint8), starts, lengths), _Out(count)
    done = _bvlc(data, lengths, out)
    rows = np.flatnonzero(~done)
    if rows.size:
        raw = np.asarray(buffer, dtype=np.uint8).tobytes()
        exact = BacnetColumns.from_messages(
            [
                decode(raw[s : s + n])
                for s, n in zip(starts[rows].tolist(), lengths[rows].tolist(), strict=True)
            ],
            0,
        )
        for name, column in exact.ids.items():
            out.ids[name][rows] = column
        for name in ("function_code", "function", "operation", "is_response", "unit", "address"):
            getattr(out.summary, name)[rows] = getattr(exact.summary, name)
        for name in ("quantity", "targets", "result", "status", "finding"):
            getattr(out.summary, name)[rows] = getattr(exact.summary, name)
    return BacnetColumns(
        segment=np.arange(count, dtype=np.int64),
        pdu_index=np.zeros(count, dtype=np.int32),
        offset=np.zeros(count, dtype=np.int32),
        summary=out.summary,
        ids=out.ids,
        leftover=np.zeros(count, dtype=np.int32),
    )


def _bvlc(data: _Bytes, lengths: Ints, out: _Out) -> Mask:
    """Fill the rows decoded here; return them."""
    header = lengths >= sv.BVLC_HEADER
    truncated = ~header
    out.put("finding", truncated, BacnetFinding.TRUNCATED)
    out.put("status", truncated, ParseStatus.MALFORMED)
    kind, function, length = data.byte(0), data.byte(1), data.uint(2, 2)
    out.put("bvlc_type", header, kind)
    out.put("bvlc_function", header, function)
    out.put("bvlc_length", header, length)
    bad_type = header & (kind != sv.BVLC_TYPE_IP)
    out.put("finding", bad_type, BacnetFinding.BAD_BVLC_TYPE)
    out.put("status", bad_type, ParseStatus.MALFORMED)
    npdu = header & ~bad_type & np.isin(function, list(sv.NPDU_FUNCTIONS))
    forwarded = function == sv.FORWARDED_NPDU
    at = sv.BVLC_HEADER + sv.ADDRESS * forwarded
    npdu &= lengths >= at + 2
    out.put("origin", npdu & forwarded, (data.uint(4, 4) << 16) | data.uint(8, 2))
    decoded = _npdu(data, lengths, out, npdu, at)
    mismatch = decoded & (length != lengths) & (out.summary.finding == BacnetFinding.OK)
    out.put("finding", mismatch, BacnetFinding.BAD_BVLC_LENGTH)
    out.put("status", mismatch, ParseStatus.MALFORMED)
    done: Mask = truncated | bad_type | decoded
    return done


def _npdu(data: _Bytes, lengths: Ints, out: _Out, npdu: Mask, at: Ints) -> Mask:
    """The NPDU header and the APDU of the rows `npdu`; the rows decoded here."""
    version, control = data.byte(at), data.byte(at + 1)
    npdu &= (version == sv.NPDU_VERSION) & ((control & sv.NETWORK_MESSAGE) == 0)
    destination, source = (control & sv.DESTINATION) != 0, (control & sv.SOURCE) != 0
    at = at + 2
    dnet, dlen = data.uint(at, 2), data.byte(at + 2)
    at = at + destination * (3 + dlen)
    snet, slen = data.uint(at, 2), data.byte(at + 2)
    npdu &= ~source | ((slen > 0) & (snet != 0xFFFF))
    at = at + source * (3 + slen)
    hop_count = data.byte(at)
    at = at + destination
    npdu &= (at < lengths) & (at + 6 <= WINDOW)  # the APDU's first byte and header in reach
    first = data.byte(at)
    kind, flags = first >> 4, first & 0x0F
    npdu &= kind <= sv.ABORT
    segmented = ((kind == sv.CONFIRMED) | (kind == sv.COMPLEX_ACK)) & ((flags & sv.SEGMENTED) != 0)
    size = _HEADER_SIZES[np.minimum(kind, sv.ABORT)] + 2 * segmented
    npdu &= at + size <= lengths
    body = at + size
    service = data.byte(body - 1)
    known = _CONFIRMED_KNOWN[service]
    confirmed_services = (kind == sv.CONFIRMED) | (kind == sv.SIMPLE_ACK) | (kind == sv.COMPLEX_ACK)
    empty = body == lengths

    fixed = npdu & ((kind == sv.SEGMENT_ACK) | (kind == sv.REJECT) | (kind == sv.ABORT))
    simple = npdu & (kind == sv.SIMPLE_ACK) & known
    segments = npdu & segmented & known
    who_is = npdu & (kind == sv.UNCONFIRMED) & (service == sv.WHO_IS) & empty
    plain = npdu & ~segmented
    read = plain & (kind == sv.CONFIRMED) & (service == sv.READ_PROPERTY)
    read, index, _ = _read_property(data, lengths, read, body, ack=False)
    ack = plain & (kind == sv.COMPLEX_ACK) & (service == sv.READ_PROPERTY)
    ack, ack_index, value_at = _read_property(data, lengths, ack, body, ack=True)
    i_am = _i_am(data, lengths, out, plain & (kind == sv.UNCONFIRMED) & (service == sv.I_AM), body)
    decoded: Mask = fixed | simple | segments | who_is | read | ack | i_am

    out.put("npdu_version", decoded, version)
    out.put("npdu_control", decoded, control)
    out.put("dnet", decoded & destination, dnet)
    out.put("dlen", decoded & destination, dlen)
    out.put("hop_count", decoded & destination, hop_count)
    out.put("snet", decoded & source, snet)
    out.put("slen", decoded & source, slen)
    out.put("pdu_type", decoded, kind)
    out.put("pdu_flags", decoded, flags)
    has_invoke = decoded & (kind != sv.UNCONFIRMED)
    out.put("invoke_id", has_invoke, np.where(kind == sv.CONFIRMED, data.byte(at + 2), data.byte(at + 1)))
    out.put("sequence_number", segments, data.byte(body - 3))
    out.put("window_size", segments, data.byte(body - 2))
    out.put("sequence_number", fixed & (kind == sv.SEGMENT_ACK), data.byte(at + 2))
    out.put("window_size", fixed & (kind == sv.SEGMENT_ACK), data.byte(at + 3))
    with_service = simple | segments | who_is | read | ack | i_am
    out.put("service_choice", with_service, service)
    out.put("function_code", with_service, service)
    confirmed = with_service & confirmed_services
    out.put("function", confirmed, _CONFIRMED_NAMES[service])
    out.put("operation", confirmed, _CONFIRMED_OPERATIONS[service])
    out.put("function", who_is, sv.UNCONFIRMED_SERVICES[sv.WHO_IS][0])
    out.put("operation", who_is, sv.UNCONFIRMED_SERVICES[sv.WHO_IS][1])
    out.put("function", i_am, sv.UNCONFIRMED_SERVICES[sv.I_AM][0])
    out.put("operation", i_am, sv.UNCONFIRMED_SERVICES[sv.I_AM][1])
    out.put("is_response", i_am | (confirmed & (kind != sv.CONFIRMED)), True)
    out.put("result", confirmed & (kind != sv.CONFIRMED), 0)
    out.put("status", segments, ParseStatus.PARTIAL)
    trailing = (simple | fixed) & ~empty
    out.put("finding", trailing, BacnetFinding.TRAILING_BYTES)
    out.put("status", trailing, ParseStatus.MALFORMED)
    _fixed(data, out, fixed, kind, flags, at)
    _targets(data, out, read | ack, body, np.where(read, index, ack_index))
    out.put("value_tag", ack, data.byte(value_at) >> 4)
    return decoded


def _fixed(data: _Bytes, out: _Out, fixed: Mask, kind: Ints, flags: Ints, at: Ints) -> None:
    """Segment ACK, reject, abort."""
    out.put("function", fixed & (kind == sv.SEGMENT_ACK), "segment_ack")
    out.put("function", fixed & (kind == sv.REJECT), "reject")
    out.put("function", fixed & (kind == sv.ABORT), "abort")
    out.put("operation", fixed, Operation.OTHER)
    out.put("is_response", fixed, (kind == sv.REJECT) | ((flags & sv.SERVER) != 0))
    refusal = fixed & (kind != sv.SEGMENT_ACK)
    reason = data.byte(at + 2)
    out.put("reason", refusal, reason)
    out.put("result", refusal, np.where(kind == sv.REJECT, sv.RESULT_REJECT, sv.RESULT_ABORT) | reason)


def _read_property(
    data: _Bytes, lengths: Ints, rows: Mask, body: Ints, *, ack: bool
) -> tuple[Mask, Ints, Ints]:
    """The rows of `rows` whose readProperty request (or ACK of one primitive value) is encoded
    the usual way: object id (context 0, 4 bytes), property (context 1, 1 byte), an optional
    1-byte array index (context 2); for an ACK then the value between context tags 3. Also each
    row's array index (-1 if none) and the position of its value's tag."""
    rows = rows & (data.byte(body) == 0x0C) & (data.byte(body + 5) == 0x19)
    indexed = data.byte(body + 7) == 0x29
    index = np.where(indexed, data.byte(body + 8), -1)
    after = body + 7 + 2 * indexed
    if not ack:
        rows &= (after == lengths) & (after <= WINDOW)
        return rows, index, after
    tag = data.byte(after + 1)
    number, lvt = tag >> 4, tag & 0x07
    extended = lvt == tags.EXTENDED_LENGTH
    size = np.where(number == tags.BOOLEAN, 0, np.where(extended, data.byte(after + 2), lvt))
    rows &= (data.byte(after) == 0x3E) & ((tag & 0x08) == 0) & (lvt <= tags.EXTENDED_LENGTH)
    rows &= ~extended | ((number != tags.BOOLEAN) & (size < 254))  # 254, 255: longer lengths
    rows &= (number != tags.BOOLEAN) | (lvt <= 1)
    rows &= (size >= _MIN_SIZE[number]) & (size <= _MAX_SIZE[number])
    end = after + 3 + extended + size
    rows &= (end == lengths) & (end <= WINDOW) & (data.byte(end - 1) == 0x3F)
    return rows, index, after + 1


def _targets(data: _Bytes, out: _Out, rows: Mask, body: Ints, index: Ints) -> None:
    """The readProperty rows' target columns and texts."""
    identifier = data.uint(body + 1, 4)
    object_type, instance = identifier >> tags.INSTANCE_BITS, identifier & tags.INSTANCE_MASK
    prop = data.byte(body + 6)
    out.put("object_type", rows, object_type)
    out.put("instance", rows, instance)
    out.put("property_id", rows, prop)
    out.put("array_index", rows, index)
    out.put("address", rows, identifier)
    out.put("quantity", rows, 1)
    picked = np.flatnonzero(rows)
    out.summary.targets[picked] = _texts(
        object_type[picked].tolist(), instance[picked].tolist(), prop[picked].tolist(), index[picked].tolist()
    )


def _texts(
    object_types: list[int], instances: list[int], props: list[int], indexes: list[int]
) -> npt.NDArray[Any]:
    texts = np.empty(len(object_types), dtype=object)
    for row, (kind, instance, prop, index) in enumerate(
        zip(object_types, instances, props, indexes, strict=True)
    ):
        text = f"{object_type_name(kind)}:{instance}"
        if prop >= 0:
            text += f" {property_name(prop)}" + (f"[{index}]" if index >= 0 else "")
        texts[row] = (text,)
    return texts


def _i_am(data: _Bytes, lengths: Ints, out: _Out, rows: Mask, body: Ints) -> Mask:
    """I-Am encoded the usual way: object id, then max APDU, segmentation and vendor id, each
    application-tagged in 1-4 bytes (segmentation 1); fills and returns those rows."""
    rows = rows & (data.byte(body) == 0xC4)
    apdu_at = body + 5
    apdu_tag = data.byte(apdu_at)
    apdu_size = apdu_tag & 0x07
    rows &= (apdu_tag >= 0x21) & (apdu_tag <= 0x24)
    segmentation_at = apdu_at + 1 + apdu_size
    rows &= data.byte(segmentation_at) == 0x91
    vendor_at = segmentation_at + 2
    vendor_tag = data.byte(vendor_at)
    vendor_size = vendor_tag & 0x07
    rows &= (vendor_tag >= 0x21) & (vendor_tag <= 0x24)
    end = vendor_at + 1 + vendor_size
    rows &= (end == lengths) & (end <= WINDOW)
    identifier = data.uint(body + 1, 4)
    object_type, instance = identifier >> tags.INSTANCE_BITS, identifier & tags.INSTANCE_MASK
    out.put("object_type", rows, object_type)
    out.put("instance", rows, instance)
    out.put("device_instance", rows, instance)
    out.put("unit", rows, instance)
    out.put("address", rows, identifier)
    out.put("quantity", rows, 1)
    out.put("max_apdu", rows, data.uint(apdu_at + 1, apdu_size))
    out.put("segmentation", rows, data.byte(segmentation_at + 1))
    out.put("vendor_id", rows, data.uint(vendor_at + 1, vendor_size))
    picked = np.flatnonzero(rows)
    count = len(picked)
    out.summary.targets[picked] = _texts(
        object_type[picked].tolist(), instance[picked].tolist(), [-1] * count, [-1] * count
    )
    return rows
