"""The fast path: `extract` turns many payload segments into `Iec104Columns` at once.

Vectorised with numpy, across all segments at once:

- the framing: level by level (the first APDU of every segment, then the second of those that
  have one, ...), each level reads the start and length bytes of every open segment in one
  gather and decides for all of them (an APDU, a partial last APDU left over, a wrong start
  byte that ends the segment's framing);
- the fixed-offset fields of every APDU from a 15-byte window (APCI, control field, data unit
  identifier, first object address), the frame and U-function checks, and the length check of
  the ASDUs whose type has a fixed element size (6 + objects x (3 + size), or 9 + objects x size
  for a sequence);
- the other objects' addresses (SQ=0), in one gather over all rows.

Per row in Python: the target texts (one `str` per address kept) and the rows it does not prove
well formed (any finding, a reserved or private type, F_SG_NA_1's variable segments), which go to
the exact decoder one APDU each. The result is row for row what `decode_segments` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, SummaryColumns
from plantwarden.protocols.iec104 import types
from plantwarden.protocols.iec104.columns import NAMES, SCHEMA, Iec104Columns
from plantwarden.protocols.iec104.exact import (
    CAUSE_MASK,
    DUI_SIZE,
    FORMAT_I,
    FORMAT_S,
    FORMAT_U,
    IOA_SIZE,
    MAX_LENGTH,
    MIN_LENGTH,
    NUMBER_MASK,
    START,
    Iec104Message,
    decode_apdu,
    decode_payload,
)
from plantwarden.protocols.iec104.findings import Iec104Finding

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
WINDOW = 20
"""Bytes read at each APDU: start, length, control field (4), data unit identifier (6), IOA (3),
and the first element's first 5 bytes (a command's qualifier is among them)."""
FIRST_ELEMENT = 15
"""APDU offset of the first information element (after the first object address)."""
_SCHEMA = tuple((column.name, column) for column in SCHEMA)
SUMMARY_NAMES = tuple(SummaryColumns.__dataclass_fields__)
FIRST_OBJECT = 12
"""APDU offset of the first object address."""


def _u_table() -> tuple[npt.NDArray[np.object_], npt.NDArray[np.uint8], Mask]:
    names = np.full(256, types.U_UNKNOWN, dtype=object)
    operations = np.full(256, int(Operation.OTHER), dtype=np.uint8)
    known = np.zeros(256, dtype=np.bool_)
    for code, (name, operation) in types.U_FUNCTIONS.items():
        names[code], operations[code], known[code] = name, int(operation), True
    return names, operations, known


U_NAMES, U_OPERATIONS, U_KNOWN = _u_table()


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Iec104Columns:
    """`extract`'s exact twin: every segment `buffer[start:start + length]` through `decode_payload`."""
    data = buffer.tobytes()
    rows: list[tuple[int, Iec104Message]] = []
    leftover = np.zeros(len(starts), dtype=np.int64)
    for segment, (start, length, server) in enumerate(
        zip(starts.tolist(), lengths.tolist(), from_server.tolist(), strict=True)
    ):
        messages, rest = decode_payload(data[start : start + length], bool(server))
        rows.extend((segment, message) for message in messages)
        leftover[segment] = len(rest)
    return Iec104Columns.from_messages(rows, leftover)


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Iec104Columns:
    """The APDU rows of the segments `buffer[start:start + length]`, each starting at an APDU.

    `from_server[i]` tells whether segment i was sent by the server. Rows come in (segment,
    pdu_index) order; `leftover[i]` counts the bytes of a partial last APDU of segment i.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    servers = np.asarray(from_server, dtype=np.bool_)
    source = np.asarray(buffer, dtype=np.uint8)
    segment, pdu_index, position, bad_start, leftover = _walk(source, starts, lengths)
    rows = len(segment)
    # bytes past the buffer's end read as its last byte: only rows whose length the checks
    # below prove long enough use the window's later bytes (the others go to the exact decoder)
    window = source[np.minimum(position[:, None] + np.arange(WINDOW), len(source) - 1)].astype(np.int64)
    w = window.T
    length, o1, o2, o3, o4 = w[1], w[2], w[3], w[4], w[5]
    type_id, vsq, cot, originator = w[6], w[7], w[8], w[9]
    common, first = w[10] | w[11] << 8, w[12] | w[13] << 8 | w[14] << 16
    number, sequence = vsq & NUMBER_MASK, vsq >> 7
    element = types.ELEMENT_SIZES[type_id].astype(np.int64)
    sound = ~bad_start & (length >= MIN_LENGTH) & (length <= MAX_LENGTH)
    is_i = sound & (o1 & 1 == 0)
    is_s = sound & (o1 & 3 == 1) & (length == MIN_LENGTH) & (o1 & 0xFC == 0) & (o2 == 0) & (o3 & 1 == 0)
    is_u = sound & (o1 & 3 == 3) & (length == MIN_LENGTH) & U_KNOWN[o1] & (o2 | o3 | o4 == 0)
    expected = DUI_SIZE + np.where(sequence == 1, IOA_SIZE + number * element, number * (IOA_SIZE + element))
    is_i &= (o3 & 1 == 0) & (length - 4 >= DUI_SIZE + IOA_SIZE) & (number > 0) & (element >= 0)
    is_i &= ~types.UNASSIGNED_CAUSE_TABLE[cot & CAUSE_MASK] & (length - 4 == expected)
    done = is_i | is_s | is_u

    own: dict[str, npt.NDArray[Any]] = {name: np.full(rows, c.none, dtype=c.dtype) for name, c in _SCHEMA}
    own["segment"], own["pdu_index"] = segment, pdu_index
    own["offset"] = position - starts[segment]
    own["length"][done] = length[done]
    qualifier = types.SELECT_BYTE[type_id].astype(np.int64)
    commands = is_i & (qualifier >= 0)
    selects = window[np.flatnonzero(commands), FIRST_ELEMENT + qualifier[commands]] >> 7
    own["select"][commands] = selects
    own["frame_format"][is_i], own["frame_format"][is_s], own["frame_format"][is_u] = (
        FORMAT_I,
        FORMAT_S,
        FORMAT_U,
    )
    own["control"][done] = o1[done]
    own["send_seq"][is_i] = ((o1 | o2 << 8) >> 1)[is_i]
    received = is_i | is_s
    own["recv_seq"][received] = ((o3 | o4 << 8) >> 1)[received]
    for name, values in (
        ("type_id", type_id),
        ("sq", sequence),
        ("num_objects", number),
        ("cause", cot & CAUSE_MASK),
        ("negative", (cot >> 6) & 1),
        ("test", cot >> 7),
        ("originator", originator),
        ("common_address", common),
    ):
        own[name][is_i] = values[is_i]

    summary = _summaries(source, servers[segment], is_i, is_s, is_u, own, o1, first, element, position)
    typed = {name: own[name].astype(column.dtype, copy=False) for name, column in _SCHEMA}
    columns = Iec104Columns(**typed, summary=summary, leftover=leftover)
    _decode_exactly(columns, source, position, bad_start, np.flatnonzero(~done))
    return columns


def _walk(source: npt.NDArray[np.uint8], starts: Ints, lengths: Ints) -> tuple[Ints, Ints, Ints, Mask, Ints]:
    """Frame every segment: per APDU (in segment, pdu_index order) its segment, index, position
    in the buffer and whether it is a wrong start byte (the rest of its segment); per segment
    the leftover length."""
    position, end = starts.copy(), starts + lengths
    count = np.zeros(len(starts), dtype=np.int64)
    leftover = np.zeros(len(starts), dtype=np.int64)
    open_ = np.flatnonzero(lengths > 0)
    found: list[tuple[Ints, Ints, Ints, Mask]] = []
    while open_.size:
        at, remaining = position[open_], end[open_] - position[open_]
        bad = source[at] != START
        size = source[np.minimum(at + 1, len(source) - 1)].astype(np.int64) + 2  # used if 2 bytes remain
        whole = ~bad & (remaining >= 2) & (remaining >= size)
        emitted = bad | whole
        found.append((open_[emitted], count[open_[emitted]], at[emitted], bad[emitted]))
        partial = ~emitted
        leftover[open_[partial]] = remaining[partial]
        step = open_[whole]
        position[step] += size[whole]
        count[step] += 1
        open_ = step[position[step] < end[step]]
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.bool_), leftover
    segment, index, at, bad = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.lexsort((index, segment))
    return segment[order], index[order], at[order], bad[order].astype(np.bool_), leftover


def _summaries(
    source: npt.NDArray[np.uint8],
    is_response: Mask,
    is_i: Mask,
    is_s: Mask,
    is_u: Mask,
    own: dict[str, npt.NDArray[Any]],
    o1: Ints,
    first: Ints,
    element: Ints,
    position: Ints,
) -> SummaryColumns:
    """The summaries of the rows proved well formed (the others are the exact decoder's)."""
    rows = len(is_response)
    code = np.full(rows, -1, dtype=np.int32)
    function = np.full(rows, "", dtype=object)
    operation = np.full(rows, int(Operation.MALFORMED), dtype=np.uint8)
    type_id = own["type_id"].astype(np.int64)
    code[is_i], function[is_i] = type_id[is_i], types.NAMES[type_id[is_i]]
    operation[is_i] = types.OPERATIONS[type_id[is_i]]
    code[is_s], function[is_s], operation[is_s] = (
        types.FORMAT_CODE_BASE + 1,
        types.S_FUNCTION,
        Operation.OTHER,
    )
    code[is_u], function[is_u], operation[is_u] = (
        types.FORMAT_CODE_BASE + o1[is_u],
        U_NAMES[o1[is_u]],
        U_OPERATIONS[o1[is_u]],
    )
    unit = np.where(is_i, own["common_address"], -1).astype(np.int32)
    address = np.where(is_i, first, -1).astype(np.int64)
    quantity = np.where(is_i, own["num_objects"], 0).astype(np.int32)
    cause, negative = own["cause"].astype(np.int64), own["negative"].astype(np.int64)
    unknown = (cause >= types.CAUSE_UNKNOWN_FROM) & (cause <= types.CAUSE_UNKNOWN_TO)
    confirmation = np.isin(cause, list(types.CONFIRMATIONS))
    result = np.where(unknown, cause, np.where(confirmation, negative, -1))
    result = np.where(is_i, result, -1).astype(np.int32)
    targets = np.empty(rows, dtype=object)
    targets[:] = [()] * rows
    _targets(source, targets, np.flatnonzero(is_i), own, first, element, position)
    return SummaryColumns(
        function_code=code,
        function=function,
        operation=operation,
        is_response=is_response.copy(),
        unit=unit,
        address=address,
        quantity=quantity,
        targets=targets,
        result=result,
        status=np.full(rows, int(ParseStatus.OK), dtype=np.uint8),
        finding=np.zeros(rows, dtype=np.uint8),
    )


def _targets(
    source: npt.NDArray[np.uint8],
    targets: npt.NDArray[np.object_],
    rows: npt.NDArray[np.intp],
    own: dict[str, npt.NDArray[Any]],
    first: Ints,
    element: Ints,
    position: Ints,
) -> None:
    """The target texts of the I rows `rows`: a sequence's addresses counted from its first, the
    others' read in one gather (the `MAX_TARGETS` first of each)."""
    kept = np.minimum(own["num_objects"][rows].astype(np.int64), MAX_TARGETS)
    flat = np.repeat(rows, kept)
    ends = np.cumsum(kept)
    k = np.arange(len(flat), dtype=np.int64) - np.repeat(ends - kept, kept)
    sequence = own["sq"][flat] == 1
    # SQ=0: the k-th address is inside the APDU, whose length was checked against all objects
    at = position[flat] + FIRST_OBJECT + np.where(sequence, 0, k * (IOA_SIZE + element[flat]))
    values = np.where(sequence, first[flat] + k, _read_ioas(source, at))
    texts = [str(value) for value in values.tolist()]
    start = 0
    for row, end in zip(rows.tolist(), ends.tolist(), strict=True):
        targets[row] = tuple(texts[start:end])
        start = end


def _read_ioas(source: npt.NDArray[np.uint8], at: Ints) -> Ints:
    values: Ints = source[at].astype(np.int64) | source[at + 1].astype(np.int64) << 8
    values |= source[at + 2].astype(np.int64) << 16
    return values


def _decode_exactly(
    columns: Iec104Columns,
    source: npt.NDArray[np.uint8],
    position: Ints,
    bad_start: Mask,
    rows: npt.NDArray[np.intp],
) -> None:
    """Fill `rows` from the exact decoder, one APDU each (the rare rows)."""
    if not rows.size:
        return
    messages = []
    for row in rows.tolist():
        server, index = bool(columns.summary.is_response[row]), int(columns.pdu_index[row])
        offset = int(columns.offset[row])
        if bad_start[row]:
            message = Iec104Message(
                server, index, offset, status=ParseStatus.MALFORMED, finding=Iec104Finding.BAD_START
            )
        else:
            at = int(position[row])
            message = decode_apdu(source[at : at + int(source[at + 1]) + 2].tobytes(), server, index, offset)
        messages.append((int(columns.segment[row]), message))
    exact = Iec104Columns.from_messages(messages, columns.leftover)
    for name in NAMES:
        getattr(columns, name)[rows] = getattr(exact, name)
    for name in SUMMARY_NAMES:
        getattr(columns.summary, name)[rows] = getattr(exact.summary, name)
