"""The fast path: `extract` turns many payload segments into `S7Columns` at once.

Vectorised with numpy, over all segments together:

- the framing: the TPKT walk (version, reserved, length) and the COTP data TPDUs joined up to
  end of TSDU, one TPKT per segment per step, as `framing.split_pdus` does one segment;
- for every PDU that is one TPKT holding a COTP data TPDU with end of TSDU and an S7comm header
  (the common case): the COTP type, protocol id, ROSCTR, PDU reference, parameter and data
  lengths, error class and code;
- the whole row (summary and id columns) of the commonest PDUs, where their layout is proved
  well formed: read var jobs of S7ANY items, read var and write var ack_data (`fast_rows`),
  and userdata (`fast_userdata`: SZL reads, clock, cyclic data, diagnostics ...).

Per row in Python: the parameter and data of the other one-TPKT S7comm answers
(`exact.decode_s7_body`, fed the header read here: block functions, PI services, setup
communication, any malformed parameter); and every other PDU whole (`exact.decode_pdu`, which
keeps decoded requests: jobs such as write var and setup communication, COTP connection TPDUs,
reassembled fragments, S7comm-plus, malformed TPKT or S7 headers). The result is, row for row
and value for value, what `decode_segments` (the exact path) gives.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import SummaryColumns
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.columns import NAMES, SCHEMA, Extracted, S7Columns
from plantwarden.protocols.s7comm.exact import Fields, complete, decode_payload, decode_pdu, decode_s7_body
from plantwarden.protocols.s7comm.fast_rows import PADDING, Bytes, Lane, variable_lanes
from plantwarden.protocols.s7comm.fast_userdata import userdata_lane
from plantwarden.protocols.s7comm.messages import S7Message

Ints = npt.NDArray[np.int64]
HEADER_FIELDS = ("rosctr", "pdu_ref", "param_length", "data_length", "error_class", "error_code")
S7_AT = 7
"""Offset of the S7 header in a one-TPKT PDU: TPKT (4), COTP data TPDU (3)."""


class _Rows:
    """The PDUs found by the walk: absolute start, size, TPKT count and segment of each."""

    def __init__(self) -> None:
        self.parts: list[tuple[Ints, Ints, Ints, Ints]] = []

    def add(self, segment: Ints, start: Ints, size: Ints, count: Ints) -> None:
        if segment.size:
            self.parts.append((segment, start, size, count))

    def sorted(self) -> tuple[Ints, Ints, Ints, Ints]:
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, empty
        segment, start, size, count = (np.concatenate(part) for part in zip(*self.parts, strict=True))
        order = np.lexsort((start, segment))
        return segment[order], start[order], size[order], count[order]


def walk(buffer: npt.NDArray[np.uint8], starts: Ints, lengths: Ints) -> tuple[_Rows, npt.NDArray[np.int32]]:
    """Frame every segment `buffer[start:start + length]` at once (see `framing.split_pdus`)."""
    padded = np.concatenate([np.asarray(buffer, dtype=np.uint8), np.zeros(8, dtype=np.uint8)])

    def octets(at: Ints) -> Ints:
        value: Ints = padded[at].astype(np.int64)
        return value

    position = np.asarray(starts, dtype=np.int64).copy()
    end = position + np.asarray(lengths, dtype=np.int64)
    chain, count = position.copy(), np.zeros(len(position), dtype=np.int64)
    leftover = np.zeros(len(position), dtype=np.int32)
    active = np.flatnonzero(end > position)
    rows = _Rows()
    while active.size:
        at, stop = position[active], end[active]
        left = stop - at
        short = left < c.TPKT_HEADER
        length = octets(at + 2) << 8 | octets(at + 3)
        sound = (octets(at) == c.TPKT_VERSION) & (octets(at + 1) == 0) & (length >= c.MIN_TPKT_LENGTH)
        bad = ~short & ~sound
        partial = ~short & sound & (left < length)
        rows.add(active[bad], chain[active[bad]], stop[bad] - chain[active[bad]], count[active[bad]] + 1)
        waiting = short | partial
        leftover[active[waiting]] = stop[waiting] - chain[active[waiting]]
        good = ~short & ~bad & ~partial
        seg, at, length, stop = active[good], at[good], length[good], stop[good]
        count[seg] += 1
        li = octets(at + 4)
        more = (li >= 2) & (5 + li <= length) & (octets(at + 5) == c.COTP_DT) & ((octets(at + 6) & 0x80) == 0)
        more &= count[seg] < c.MAX_FRAGMENTS
        position[seg] = at + length
        ended = seg[~more]
        rows.add(ended, chain[ended], position[ended] - chain[ended], count[ended])
        chain[ended], count[ended] = position[ended], 0
        finished = position[seg] >= stop
        leftover[seg[finished]] = (stop - chain[seg])[finished]
        active = seg[~finished]
    return rows, leftover


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Extracted:
    """The PDU rows of the segments `buffer[start:start + length]`, each starting at a TPKT.

    `from_server[i]` tells whether segment i was sent by the server. Rows come in (segment,
    pdu_index) order; `leftover[i]` counts the bytes of a partial last PDU of segment i.
    """
    buffer = np.asarray(buffer, dtype=np.uint8)
    found, leftover = walk(buffer, np.asarray(starts), np.asarray(lengths))
    segment, start, size, count = found.sorted()
    first = np.ones(len(segment), dtype=np.bool_)
    first[1:] = segment[1:] != segment[:-1]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(segment)), 0))
    pdu_index = (np.arange(len(segment)) - run_start).astype(np.int32)
    offset = start - np.asarray(starts, dtype=np.int64)[segment]
    response = np.asarray(from_server, dtype=np.bool_)[segment]
    source = Bytes(buffer)
    header = _headers(source, start, size, count)
    simple = header.pop("simple").astype(np.bool_)
    lanes = variable_lanes(source, start, size, header, simple, response)
    lanes.append(userdata_lane(source, start, size, header, simple, response))
    rest = np.ones(len(segment), dtype=np.bool_)
    for fast in lanes:
        rest[fast.rows] = False
    rest_rows = np.flatnonzero(rest)
    messages = _decode_rest(buffer, rest_rows, start, size, offset, response, header, simple)
    ids = _ids(len(segment), header, simple, rest_rows, messages, lanes)
    ids["offset"] = offset.astype(np.int32)
    ids["size"] = size.astype(np.int32)  # every row's, as each message's size is its PDU's
    return Extracted(
        S7Columns(segment, pdu_index, ids, _summaries(len(segment), rest_rows, messages, lanes)),
        leftover,
    )


def _ids(
    rows: int,
    header: dict[str, Ints],
    simple: npt.NDArray[np.bool_],
    rest: npt.NDArray[np.intp],
    messages: list[S7Message],
    lanes: list[Lane],
) -> dict[str, npt.NDArray[Any]]:
    """The id columns: the header's on the simple rows (a one-TPKT COTP data TPDU of S7comm),
    each lane's own on its rows, the messages' on the rest, "none" elsewhere."""
    ids: dict[str, npt.NDArray[Any]] = {}
    known = {"cotp_type": c.COTP_DT, "protocol_id": c.S7COMM_ID}
    for column in SCHEMA:
        values = np.full(rows, column.none, dtype=column.dtype)
        if column.name in header:
            values[simple] = header[column.name][simple]
        elif column.name in known:
            values[simple] = known[column.name]
        for fast in lanes:
            if column.name in fast.ids:
                values[fast.rows] = fast.ids[column.name]
        values[rest] = np.fromiter((getattr(m, column.name) for m in messages), column.dtype, len(messages))
        ids[column.name] = values
    return ids


def _decode_rest(
    buffer: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.intp],
    start: Ints,
    size: Ints,
    offset: Ints,
    response: npt.NDArray[np.bool_],
    header: dict[str, Ints],
    simple: npt.NDArray[np.bool_],
) -> list[S7Message]:
    """The messages of the rows outside the lanes: the S7 parameter and data of a one-TPKT
    S7comm answer from its header read here, any other PDU whole (through `decode_pdu`, which
    keeps decoded requests: jobs, the commonest of these rows, are mostly seen before)."""
    data = buffer.tobytes()
    headers = {name: values[rows].tolist() for name, values in header.items()}
    messages: list[S7Message] = []
    for index, (at, length, server, where, one, rosctr) in enumerate(
        zip(
            start[rows].tolist(),
            size[rows].tolist(),
            response[rows].tolist(),
            offset[rows].tolist(),
            simple[rows].tolist(),
            headers["rosctr"],
            strict=True,
        )
    ):
        if one and rosctr != c.JOB:
            fields: Fields = {"offset": where, "size": length, "is_response": server}
            fields |= {"fragments": 1, "cotp_type": c.COTP_DT, "protocol_id": c.S7COMM_ID}
            fields |= {name: values[index] for name, values in headers.items() if values[index] >= 0}
            body = data[at + S7_AT : at + length]
            messages.append(complete(fields, partial(decode_s7_body, fields, body)))
        else:
            messages.append(decode_pdu(data[at : at + length], server, offset=where))
    return messages


def _summaries(
    rows: int, rest: npt.NDArray[np.intp], messages: list[S7Message], lanes: list[Lane]
) -> SummaryColumns:
    """The summary columns: each lane's rows from the lane, the rest from the messages."""
    exact = SummaryColumns.from_summaries([m.summary() for m in messages])
    merged: dict[str, npt.NDArray[Any]] = {}
    for name in (field.name for field in dataclass_fields(SummaryColumns)):
        column = getattr(exact, name)
        whole = np.empty(rows, dtype=column.dtype)
        whole[rest] = column
        for fast in lanes:
            whole[fast.rows] = fast.summary[name]  # object columns: one object per cell
        merged[name] = whole
    return SummaryColumns(**merged)


def _headers(source: Bytes, start: Ints, size: Ints, count: Ints) -> dict[str, Ints]:
    """The S7 header of every one-TPKT S7comm PDU with a data TPDU ending the TSDU ("simple"),
    -1 elsewhere."""
    window = S7_AT + 12
    assert window <= PADDING  # a PDU's window may run past the buffer's end into the padding
    octets = source.rows(start, window).astype(np.int64)
    tpkt_length = octets[:, 2] << 8 | octets[:, 3]
    simple = (count == 1) & (size >= window) & (octets[:, 0] == c.TPKT_VERSION) & (octets[:, 1] == 0)
    simple &= (tpkt_length == size) & (octets[:, 4] == 2) & (octets[:, 5] == c.COTP_DT)
    simple &= ((octets[:, 6] & 0x80) != 0) & (octets[:, S7_AT] == c.S7COMM_ID)
    simple &= np.isin(octets[:, S7_AT + 1], list(c.ROSCTR_NAMES))

    def word(at: int) -> Ints:
        value: Ints = octets[:, S7_AT + at] << 8 | octets[:, S7_AT + at + 1]
        return value

    rosctr = octets[:, S7_AT + 1]
    acked = np.isin(rosctr, (c.ACK, c.ACK_DATA))
    none = np.full(len(start), -1, dtype=np.int64)
    values = {
        "rosctr": rosctr,
        "pdu_ref": word(4),
        "param_length": word(6),
        "data_length": word(8),
        "error_class": np.where(acked, octets[:, S7_AT + 10], -1),
        "error_code": np.where(acked, octets[:, S7_AT + 11], -1),
    }
    header = {name: np.where(simple, value, none) for name, value in values.items()}
    header["simple"] = simple
    return header


def decode_segments(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Extracted:
    """`extract`'s exact twin: every segment through `decode_payload`, one at a time."""
    data = np.asarray(buffer, dtype=np.uint8).tobytes()
    segments: list[int] = []
    indexes: list[int] = []
    messages: list[S7Message] = []
    leftover = np.zeros(len(starts), dtype=np.int32)
    for segment, (start, length, server) in enumerate(
        zip(
            np.asarray(starts).tolist(),
            np.asarray(lengths).tolist(),
            np.asarray(from_server).tolist(),
            strict=True,
        )
    ):
        rows, rest = decode_payload(data[start : start + length], bool(server))
        leftover[segment] = len(rest)
        segments += [segment] * len(rows)
        indexes += range(len(rows))
        messages += rows
    return Extracted(S7Columns.from_messages(segments, indexes, messages), leftover)


__all__ = ["NAMES", "decode_segments", "extract", "walk"]
