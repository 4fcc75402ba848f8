"""The fast path: `extract` turns many payload segments into `EnipColumns` at once.

Vectorised with numpy: the framing (every segment's PDUs, found by walking the 16-bit
encapsulation length across all segments at once, one step per PDU position), the 24-byte
headers of all rows (command, length, session, status, sender context, options), the whole
record of the rows that carry no variable part (NOP, RegisterSession, UnRegisterSession, the
List* requests, error replies without data), and the whole record of the CIP rows in the usual
two-item SendRRData / SendUnitData layout (`cip_rows`: replies at fixed offsets, Multiple
Service Packet replies header by header, requests with an 8-bit class/instance[/attribute]
path at fixed offsets, every other request summarised once per distinct request). Decoded per
row in Python, by the exact decoder's own function: the rest (List* replies, Forward_Open
replies, other layouts), malformed encapsulations, and class 1 I/O datagrams.
`decode_segments` is the exact twin that the tests hold `extract` to, row for row and value for
value.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, Summary, SummaryColumns
from plantwarden.protocols.enip import messages as m
from plantwarden.protocols.enip.cip_rows import cip_rows
from plantwarden.protocols.enip.columns import IDS, EnipColumns
from plantwarden.protocols.enip.exact import (
    decode,
    decode_datagram,
    decode_io_datagram,
    decode_payload,
)
from plantwarden.protocols.enip.messages import EnipMessage, command_name

Array = npt.NDArray[Any]
SUMMARY_FIELDS = tuple(field.name for field in fields(Summary))
SUMMARY_NONE = {"function_code": -1, "unit": -1, "address": -1, "result": -1}
FIXED_REQUESTS = (m.LIST_SERVICES, m.LIST_IDENTITY, m.LIST_INTERFACES, m.UNREGISTER_SESSION)


def _flags(values: npt.NDArray[np.bool_] | None, count: int) -> npt.NDArray[np.bool_]:
    return np.zeros(count, dtype=np.bool_) if values is None else np.asarray(values, dtype=np.bool_)


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
    datagram: npt.NDArray[np.bool_] | None = None,
    io: npt.NDArray[np.bool_] | None = None,
) -> EnipColumns:
    """The PDU rows of the segments `buffer[start:start + length]`, each starting at a PDU.

    `from_server[i]`: segment i was sent by the server. `datagram[i]`: segment i is a UDP 44818
    datagram (an incomplete last PDU is a row with its finding, not left over); `io[i]`: a class 1
    I/O datagram (UDP 2222: one detect-only row). Rows come in (segment, pdu_index) order;
    `leftover[i]` counts the bytes of an incomplete last PDU of TCP segment i.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    server = np.asarray(from_server, dtype=np.bool_)
    count = len(starts)
    is_datagram, is_io = _flags(datagram, count), _flags(io, count)
    segment, offset, size, leftover = _frame(buffer, starts, lengths, is_datagram, is_io)
    order = np.lexsort((offset, segment))
    segment, offset, size = segment[order], offset[order], size[order]
    first = np.searchsorted(segment, segment, side="left")
    pdu_index = (np.arange(len(segment)) - first).astype(np.int32)
    position = starts[segment] + offset
    rows = len(segment)

    values: dict[str, Array] = {column.name: np.full(rows, column.none, dtype=column.dtype) for column in IDS}
    summary = _empty_summary(rows)
    sent = server[segment]
    whole = (size >= m.HEADER_SIZE) & ~is_io[segment]
    _headers(buffer, position[whole], values, whole)
    simple = _simple_rows(values, sent, size) & whole
    _simple_summaries(values, sent, simple, summary)
    done = simple | cip_rows(buffer, position, size, sent, whole & ~simple, values, summary)

    exact = np.flatnonzero(~done)
    if exact.size:
        messages = []
        for row in exact.tolist():
            at, length = int(position[row]), int(size[row])
            pdu, side = buffer[at : at + length].tobytes(), bool(sent[row])
            if is_io[segment[row]]:
                messages.append(decode_io_datagram(pdu, side)[0][0])
            else:
                messages.append(decode(pdu, side, offset=int(offset[row])))
        part = EnipColumns.from_messages(messages, segment[exact].tolist(), pdu_index[exact].tolist(), [])
        for column in IDS:
            values[column.name][exact] = getattr(part, column.name)
        for name in SUMMARY_FIELDS:
            getattr(summary, name)[exact] = getattr(part.summary, name)
    values["io"] = is_io[segment]
    return EnipColumns(
        segment=segment,
        pdu_index=pdu_index,
        offset=offset.astype(np.int32),
        **values,
        summary=summary,
        leftover=leftover,
    )


def _frame(
    buffer: npt.NDArray[np.uint8],
    starts: Array,
    lengths: Array,
    datagram: npt.NDArray[np.bool_],
    io: npt.NDArray[np.bool_],
) -> tuple[Array, Array, Array, Array]:
    """Every PDU's (segment, offset, size), walking all segments at once, and per segment the
    bytes left over (TCP). A reserved command takes the rest of its segment (framing lost)."""
    count = len(starts)
    cursor = np.zeros(count, dtype=np.int64)
    found_segment, found_offset, found_size = [np.flatnonzero(io & (lengths > 0))], [], []
    found_offset.append(np.zeros(len(found_segment[0]), dtype=np.int64))
    found_size.append(lengths[found_segment[0]])
    active = np.flatnonzero(~io & (lengths > 0))
    while active.size:
        remaining = lengths[active] - cursor[active]
        has_header = remaining >= m.HEADER_SIZE
        position = starts[active] + cursor[active]
        size = np.zeros(len(active), dtype=np.int64)
        at = position[has_header]
        command = buffer[at].astype(np.int64) | buffer[at + 1].astype(np.int64) << 8
        length = buffer[at + 2].astype(np.int64) | buffer[at + 3].astype(np.int64) << 8
        size[has_header] = np.where(
            command >= m.FIRST_RESERVED, remaining[has_header], m.HEADER_SIZE + length
        )
        complete = has_header & (size <= remaining)
        cut = ~complete & datagram[active]  # a datagram's incomplete last PDU: a row of its own
        size[cut] = remaining[cut]
        taken = complete | cut
        found_segment.append(active[taken])
        found_offset.append(cursor[active[taken]].copy())
        found_size.append(size[taken])
        cursor[active[taken]] += size[taken]
        active = active[taken]
        active = active[cursor[active] < lengths[active]]
    leftover = np.where(io | datagram, 0, lengths - cursor)
    return (
        np.concatenate(found_segment),
        np.concatenate(found_offset),
        np.concatenate(found_size),
        leftover.astype(np.int64),
    )


def _headers(buffer: npt.NDArray[np.uint8], position: Array, values: dict[str, Array], rows: Array) -> None:
    """The 24-byte headers at `position` into `values` at `rows`."""
    window = buffer[position[:, None] + np.arange(m.HEADER_SIZE)]
    header = np.ascontiguousarray(window).view(np.dtype("<u1")).reshape(-1, m.HEADER_SIZE)
    words = header[:, :8].copy().view("<u2")
    longs = header[:, 4:12].copy().view("<u4")
    values["command"][rows] = words[:, 0]
    values["length"][rows] = words[:, 1]
    values["session"][rows] = longs[:, 0]
    values["encapsulation_status"][rows] = longs[:, 1]
    values["sender_context"][rows] = header[:, 12:20].copy().view("<i8")[:, 0]
    values["options"][rows] = header[:, 20:24].copy().view("<u4")[:, 0]


def _simple_rows(
    values: dict[str, Array], server: npt.NDArray[np.bool_], size: Array
) -> npt.NDArray[np.bool_]:
    """Rows whose whole record the header tells (see the module docstring)."""
    command, length = values["command"], values["length"]
    fits: npt.NDArray[np.bool_] = size == m.HEADER_SIZE + length
    simple: npt.NDArray[np.bool_] = fits & (
        (command == m.NOP)
        | ((command == m.REGISTER_SESSION) & (length == 4))
        | ((command == m.UNREGISTER_SESSION) & (length == 0))
        | (np.isin(command, FIXED_REQUESTS) & ~server & (length == 0))
        | (
            np.isin(
                command,
                (m.LIST_SERVICES, m.LIST_IDENTITY, m.LIST_INTERFACES, m.SEND_RR_DATA, m.SEND_UNIT_DATA),
            )
            & server
            & (values["encapsulation_status"] != 0)
            & (length == 0)
        )
    )
    return simple


def _empty_summary(rows: int) -> SummaryColumns:
    """`rows` rows of "none" summaries, to be filled."""
    columns = SummaryColumns.from_summaries([])
    for name in SUMMARY_FIELDS:
        column = getattr(columns, name)
        setattr(columns, name, np.full(rows, SUMMARY_NONE.get(name, 0), dtype=column.dtype))
    columns.function[:] = ""
    for row in range(rows):
        columns.targets[row] = ()  # one by one: a tuple stays one object
    return columns


def _simple_summaries(
    values: dict[str, Array],
    server: npt.NDArray[np.bool_],
    simple: npt.NDArray[np.bool_],
    summary: SummaryColumns,
) -> None:
    """The summaries of the `simple` rows, into `summary`."""
    rows = np.flatnonzero(simple)
    commands = values["command"][rows]
    sent = server[rows]
    summary.function_code[rows] = commands
    summary.function[rows] = [command_name(command) for command in commands.tolist()]
    summary.operation[rows] = [
        m.COMMANDS[command][1] if command in m.COMMANDS else Operation.OTHER for command in commands.tolist()
    ]
    summary.is_response[rows] = sent
    status = np.minimum(values["encapsulation_status"][rows], m.MAX_RESULT)
    summary.result[rows] = np.where(sent, status, -1)
    summary.status[rows] = ParseStatus.OK


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
    datagram: npt.NDArray[np.bool_] | None = None,
    io: npt.NDArray[np.bool_] | None = None,
) -> EnipColumns:
    """`extract`'s exact twin: every segment through `decode_payload` (or the datagram decoders)."""
    data = buffer.tobytes()
    count = len(starts)
    is_datagram, is_io = _flags(datagram, count), _flags(io, count)
    found: list[EnipMessage] = []
    segments: list[int] = []
    indexes: list[int] = []
    leftover: list[int] = []
    for index, (start, length, server) in enumerate(
        zip(
            np.asarray(starts).tolist(),
            np.asarray(lengths).tolist(),
            np.asarray(from_server).tolist(),
            strict=True,
        )
    ):
        payload = data[start : start + length]
        rows: list[EnipMessage]
        if not payload:
            rows, rest = [], b""
        elif is_io[index]:
            rows, rest = decode_io_datagram(payload, server)
        elif is_datagram[index]:
            rows, rest = decode_datagram(payload, server)
        else:
            rows, rest = decode_payload(payload, server)
        found.extend(rows)
        segments.extend([index] * len(rows))
        indexes.extend(range(len(rows)))
        leftover.append(len(rest))
    return EnipColumns.from_messages(found, segments, indexes, leftover)
