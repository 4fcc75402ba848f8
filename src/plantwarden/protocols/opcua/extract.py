"""The fast path: `extract` frames and decodes many payload segments at once into `OpcuaColumns`.

Vectorised with numpy: the framing (all segments walked together, one message per step, by
the header's size field), the 8-byte header of every message, and whole MSG chunks whose type
id is in the four-byte form (secure channel id, token id, sequence number, request id, service
id and a response's service result, all at fixed offsets), or whose body cannot be read
(encrypted: `PARTIAL`). Decoded per row in Python, by the exact decoder: HEL, ACK, ERR, RHE,
OPN and CLO messages (their strings and the OpenSecureChannel request's variable-size request
header), abort chunks, type ids in the other forms, and malformed messages. The result is row
for row what `exact.decode_segments` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, SummaryColumns
from plantwarden.protocols.opcua.columns import SCHEMA, OpcuaColumns
from plantwarden.protocols.opcua.exact import HEADER_SIZE, TYPE_CODES_BYTES, decode
from plantwarden.protocols.opcua.messages import MSG, TYPE_NAMES
from plantwarden.protocols.opcua.services import ID_IS_CHANNEL, ID_IS_RESPONSE, ID_NAMES, ID_OPERATIONS, IDS

WINDOW = 44
"""Bytes of each message looked at by the vectorised decoder: the MSG header, security and
sequence headers (24), a four-byte type id (4) and a response header's first fields (16)."""
_KNOWN_TYPES = np.array(sorted(int.from_bytes(name, "little") for name in TYPE_CODES_BYTES), dtype=np.int64)
_TYPE_OF = {int.from_bytes(name, "little"): code for name, code in TYPE_CODES_BYTES.items()}


def _u32(octets: npt.NDArray[np.uint8], at: int) -> npt.NDArray[np.int64]:
    part = octets[:, at : at + 4].astype(np.int64)
    return part[:, 0] | (part[:, 1] << 8) | (part[:, 2] << 16) | (part[:, 3] << 24)


def _walk(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every message's (segment, offset, size), in (segment, offset) order, and the leftovers."""
    size_of_buffer = len(buffer)
    position = starts.astype(np.int64).copy()
    end = position + lengths.astype(np.int64)
    leftover = np.zeros(len(starts), dtype=np.int64)
    active = np.flatnonzero(end > position)
    found: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    while active.size:
        remaining = end[active] - position[active]
        short = remaining < HEADER_SIZE
        leftover[active[short]] = remaining[short]
        active, remaining = active[~short], remaining[~short]
        at = position[active]
        header = buffer[np.minimum(at[:, None] + np.arange(HEADER_SIZE), size_of_buffer - 1)]
        kind = header[:, 0].astype(np.int64) | (header[:, 1].astype(np.int64) << 8)
        kind |= header[:, 2].astype(np.int64) << 16
        size = _u32(header, 4)
        lost = ~np.isin(kind, _KNOWN_TYPES) | (size < HEADER_SIZE)
        incomplete = ~lost & (size > remaining)
        leftover[active[incomplete]] = remaining[incomplete]
        taken = ~incomplete
        size = np.where(lost, remaining, size)
        found.append((active[taken], at[taken], size[taken]))
        position[active[taken]] += size[taken]
        going = taken & ~lost
        active = active[going][position[active[going]] < end[active[going]]]
    segment = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    at = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    size = np.concatenate([f[2] for f in found]) if found else np.zeros(0, np.int64)
    order = np.lexsort((at, segment))
    return segment[order], at[order], size[order], leftover


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> OpcuaColumns:
    """The message rows of the segments `buffer[start:start + length]`, each starting at a message
    boundary; `from_server[i]` tells whether segment i was sent by the server."""
    segment, at, size, leftover = _walk(buffer, np.asarray(starts), np.asarray(lengths))
    rows = len(segment)
    first = np.searchsorted(segment, segment, side="left")
    pdu_index = (np.arange(rows) - first).astype(np.int32)
    offset = at - np.asarray(starts, dtype=np.int64)[segment]
    is_response = np.asarray(from_server, dtype=np.bool_)[segment]

    span = np.arange(WINDOW)
    inside = span[None, :] < size[:, None]
    window = np.where(inside, buffer[np.minimum(at[:, None] + span, max(len(buffer) - 1, 0))], 0)
    window = window.astype(np.uint8)
    kind = window[:, 0].astype(np.int64) | (window[:, 1].astype(np.int64) << 8)
    kind |= window[:, 2].astype(np.int64) << 16
    chunk = window[:, 3]
    candidates = (kind == _key(MSG)) & ((chunk == ord("F")) | (chunk == ord("C"))) & (size >= WINDOW)
    candidates &= _u32(window, 4) == size  # not where the framing is lost (the row is the rest)
    encoding = window[:, 24]
    node_kind = encoding & 0x3F
    unreadable = candidates & ((node_kind >= 3) | ((encoding == 1) & (window[:, 25] != 0)))
    service = window[:, 26].astype(np.int64) | (window[:, 27].astype(np.int64) << 8)
    where = np.minimum(np.searchsorted(IDS, service), len(IDS) - 1)
    known = IDS[where] == service
    four_byte = candidates & (encoding == 1) & (window[:, 25] == 0)
    unreadable |= four_byte & ~known
    readable = four_byte & known & ~ID_IS_CHANNEL[where]
    done = unreadable | readable

    own: dict[str, Any] = {
        column.name: np.full(rows, column.none, dtype=column.dtype)
        for column in SCHEMA
        if column.dtype is not object
    }
    for column in SCHEMA:
        if column.dtype is object:
            own[column.name] = np.empty(rows, dtype=object)
            own[column.name].fill(column.none)
    own["message_type"][done] = MSG
    own["chunk_type"][done] = chunk[done]
    own["message_size"][done] = size[done]
    own["secure_channel_id"][done] = _u32(window, 8)[done]
    own["token_id"][done] = _u32(window, 12)[done]
    own["sequence_number"][readable] = _u32(window, 16)[readable]
    own["request_id"][readable] = _u32(window, 20)[readable]
    own["body_readable"][readable] = True
    own["service_id"][readable] = service[readable]
    response = readable & ID_IS_RESPONSE[where]
    own["service_result"][response] = _u32(window, 40)[response]

    summary = _summaries(rows, is_response)
    summary.function_code[readable] = service[readable]
    summary.function[readable] = ID_NAMES[where[readable]]
    summary.function[unreadable] = TYPE_NAMES[MSG]
    summary.operation[readable] = ID_OPERATIONS[where[readable]]
    summary.result[response] = own["service_result"][response] >> 16
    summary.status[unreadable] = ParseStatus.PARTIAL

    rest = np.flatnonzero(~done)
    if rest.size:
        data = buffer.tobytes()
        messages = [
            decode(data[a : a + s], bool(r), int(o))
            for a, s, r, o in zip(
                at[rest].tolist(),
                size[rest].tolist(),
                is_response[rest].tolist(),
                offset[rest].tolist(),
                strict=True,
            )
        ]
        exact = OpcuaColumns.from_messages(SCHEMA, messages, segment[rest], pdu_index[rest], leftover)
        for column in SCHEMA:
            own[column.name][rest] = exact.own[column.name]
        for name in ("function_code", "function", "operation", "unit", "address", "quantity", "targets"):
            getattr(summary, name)[rest] = getattr(exact.summary, name)
        for name in ("result", "status", "finding"):
            getattr(summary, name)[rest] = getattr(exact.summary, name)
    return OpcuaColumns(segment, pdu_index, offset, summary, own, leftover)


def _key(code: int) -> int:
    return next(key for key, value in _TYPE_OF.items() if value == code)


def _summaries(rows: int, is_response: npt.NDArray[np.bool_]) -> SummaryColumns:
    """Rows of an unreadable MSG chunk's summary, to be overwritten where more is known."""
    function = np.empty(rows, dtype=object)
    function.fill("")
    targets = np.empty(rows, dtype=object)
    targets.fill(())
    return SummaryColumns(
        function_code=np.full(rows, -1, dtype=np.int32),
        function=function,
        operation=np.full(rows, Operation.OTHER, dtype=np.uint8),
        is_response=is_response.copy(),
        unit=np.full(rows, -1, dtype=np.int32),
        address=np.full(rows, -1, dtype=np.int64),
        quantity=np.zeros(rows, dtype=np.int32),
        targets=targets,
        result=np.full(rows, -1, dtype=np.int32),
        status=np.full(rows, ParseStatus.OK, dtype=np.uint8),
        finding=np.zeros(rows, dtype=np.uint8),
    )
