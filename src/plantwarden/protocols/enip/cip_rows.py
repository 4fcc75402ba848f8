"""The fast path's CIP rows: SendRRData / SendUnitData PDUs in the usual two-item layout, decoded
across all rows of a batch at once (`cip_rows`), identical to the exact decoder.

Four kinds of row are taken, the rest go to the exact decoder row by row:

- a reply of a service other than Multiple Service Packet and Forward_Open: every field at a
  fixed offset; names from a table per service;
- a Multiple Service Packet reply: its count, offsets and every embedded reply's header
  (service, status words) read with one gather per field over all embedded replies of the batch
  (`_multiple_replies`); a row with an embedded Multiple Service Packet or Forward_Open reply
  goes exact;
- a request whose path is 8-bit class, instance and optional attribute segments: every field
  at a fixed offset; names per distinct (service, class), target texts per distinct target;
- any other request: its summary depends on its CIP bytes alone, and a plant polls with the same
  requests over and over, so the exact decoder's summary is kept per distinct request
  (`REQUESTS`, keyed on the CIP bytes after the item headers and the sequence count, which
  changes with every message; cleared when it holds `MAX_REQUESTS`; requests longer than
  `MAX_REQUEST_KEPT` are not kept). Replies are never cached: they carry the changing data.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, Summary, SummaryColumns
from plantwarden.protocols.enip import cip
from plantwarden.protocols.enip import messages as m
from plantwarden.protocols.enip.exact import CONNECTED_ADDRESS, CONNECTED_DATA, NULL_ADDRESS, UNCONNECTED_DATA
from plantwarden.protocols.enip.findings import EnipFinding

Array = npt.NDArray[Any]
SUMMARY_FIELDS = tuple(field.name for field in fields(Summary))
MIN_CIP_ROW = 41
"""The smallest common CIP row: a SendRRData's 40 bytes of headers and a CIP service byte."""
REPLY_SPECIAL = (cip.MULTIPLE_SERVICE_PACKET, cip.FORWARD_OPEN, cip.LARGE_FORWARD_OPEN)
"""Replies with a body the exact decoder reads: not in the fixed-offset layout."""
EMBEDDED_SPECIAL = REPLY_SPECIAL
"""Embedded replies that send their Multiple Service Packet row to the exact decoder."""
REQUEST_SPECIAL = (cip.MULTIPLE_SERVICE_PACKET, 0x03, cip.SET_ATTRIBUTE_LIST)
MANAGER_SPECIAL = (cip.FORWARD_CLOSE, cip.UNCONNECTED_SEND, cip.FORWARD_OPEN, cip.LARGE_FORWARD_OPEN)
MAX_REQUESTS = 4096
"""Distinct requests whose summaries `REQUESTS` keeps before it is cleared."""
MAX_REQUEST_KEPT = 512
"""Longer requests are decoded every time: they carry data (a write, a file transfer) that
seldom repeats, and `REQUESTS` stays within `MAX_REQUESTS` times this many bytes."""
REQUESTS: dict[bytes, Summary] = {}
"""Request CIP bytes to their summary (requests only: see the module docstring)."""

REPLY_FUNCTIONS = np.array([cip.service_name(code, None, True)[0] for code in range(128)], dtype=object)
REPLY_OPERATIONS = np.array([cip.service_name(code, None, True)[1] for code in range(128)], dtype=np.uint8)
"""A reply's name and category by service code (a reply carries no path)."""
UNRANKED = len(cip.SEVERITY)
RANKS = np.full(max(Operation) + 1, UNRANKED, dtype=np.int64)
RANKS[list(cip.SEVERITY)] = np.arange(len(cip.SEVERITY))
"""Each category's place in `cip.SEVERITY` (MALFORMED, not in it, after all of them)."""
BY_RANK = np.array([*cip.SEVERITY, Operation.OTHER], dtype=np.uint8)
"""`cip.strongest` as a lookup: the category of the lowest rank (OTHER when none ranks)."""


class _Reader:
    """Bytes and little-endian words of `buffer` at arrays of absolute positions. A position past
    the buffer reads its last byte: callers mask such reads out (they stand for absent fields)."""

    def __init__(self, buffer: npt.NDArray[np.uint8]) -> None:
        self.buffer = buffer
        self.last = len(buffer) - 1

    def byte(self, at: Array) -> Array:
        value: Array = self.buffer[np.minimum(at, self.last)].astype(np.int64)
        return value

    def word(self, at: Array) -> Array:
        value: Array = self.byte(at) | self.byte(at + 1) << 8
        return value


def cip_rows(
    buffer: npt.NDArray[np.uint8],
    position: Array,
    size: Array,
    sent: npt.NDArray[np.bool_],
    candidates: npt.NDArray[np.bool_],
    values: dict[str, Array],
    summary: SummaryColumns,
) -> npt.NDArray[np.bool_]:
    """The common CIP rows among `candidates` into `values` and `summary`; returns where they
    are (the rest go exact). Common: see `_common`."""
    done = np.zeros(len(position), dtype=np.bool_)
    command = values["command"]
    rows = np.flatnonzero(
        candidates
        & ((command == m.SEND_UNIT_DATA) | (command == m.SEND_RR_DATA))
        & (size >= MIN_CIP_ROW)
        & (values["length"] + m.HEADER_SIZE == size)
    )
    if not rows.size:
        return done
    read = _Reader(buffer)
    base, end = position[rows], position[rows] + size[rows]
    unit = command[rows] == m.SEND_UNIT_DATA
    at = base + np.where(unit, 46, 40)  # the CIP message
    common = _common(read, base, at, end, unit)
    service, reply = read.byte(at) & cip.SERVICE_MASK, sent[rows]

    replies = common & reply & (4 + 2 * read.byte(at + 3) <= end - at)
    simple_replies = replies & ~np.isin(service, REPLY_SPECIAL)
    multiple = np.flatnonzero(replies & (service == cip.MULTIPLE_SERVICE_PACKET))
    multiple_taken = np.zeros(len(rows), dtype=np.bool_)
    multiple_taken[
        multiple[_multiple_replies(read, rows[multiple], at[multiple], end[multiple], summary)]
    ] = True
    words, class_id = read.byte(at + 1), read.byte(at + 3)
    logical = (read.byte(at + 2) == 0x20) & (read.byte(at + 4) == 0x24)
    simple_path = logical & ((words == 2) | ((words == 3) & (read.byte(at + 6) == 0x30)))
    requests = common & ~reply & simple_path & (2 + 2 * words <= end - at)
    requests &= ~np.isin(service, REQUEST_SPECIAL)
    requests &= ~((class_id == cip.CONNECTION_MANAGER) & np.isin(service, MANAGER_SPECIAL))
    other_requests = common & ~reply & ~requests
    taken = simple_replies | multiple_taken | requests | other_requests
    done[rows[taken]] = True

    _ids(read, rows[taken], base[taken], at[taken], unit[taken], reply[taken], values)
    _reply_summaries(rows, service, read.byte(at + 2), simple_replies, multiple_taken, summary)
    _simple_requests(
        rows[requests],
        service[requests],
        class_id[requests],
        read.byte(at + 5)[requests],
        np.where(words == 3, read.byte(at + 7), -1)[requests],
        summary,
    )
    _cached_requests(buffer, rows[other_requests], at[other_requests], end[other_requests], summary)
    return done


def _common(read: _Reader, base: Array, at: Array, end: Array, unit: Array) -> npt.NDArray[np.bool_]:
    """The rows in the usual layout: a SendRRData (null address item, unconnected data item) or
    SendUnitData (connected address item, connected data item) with interface handle 0 (CIP),
    exactly those two items filling the PDU, and a CIP message at `at` of at least a byte."""
    second_length = read.word(base + np.where(unit, 42, 38))
    common: npt.NDArray[np.bool_] = (read.word(base + 24) | read.word(base + 26) << 16) == 0
    common &= read.word(base + 30) == 2
    common &= np.where(unit, 44, 40) + second_length == end - base
    common &= np.where(
        unit,
        (read.word(base + 32) == CONNECTED_ADDRESS)
        & (read.word(base + 34) == 4)
        & (read.word(base + 40) == CONNECTED_DATA),
        (read.word(base + 32) == NULL_ADDRESS)
        & (read.word(base + 34) == 0)
        & (read.word(base + 36) == UNCONNECTED_DATA),
    )
    common &= at < end
    return common


def _ids(
    read: _Reader, rows: Array, base: Array, at: Array, unit: Array, reply: Array, values: dict[str, Array]
) -> None:
    """The connection id and sequence count (SendUnitData), the outer service as sent and a
    reply's general status of the taken `rows` into `values`."""
    values["connection_id"][rows] = np.where(unit, read.word(base + 36) | read.word(base + 38) << 16, -1)
    values["sequence"][rows] = np.where(unit, read.word(base + 44), -1)
    values["cip_service"][rows] = (read.byte(at) & cip.SERVICE_MASK) | np.where(reply, cip.RESPONSE_BIT, 0)
    values["general_status"][rows] = np.where(reply, read.byte(at + 2), -1)


def _reply_summaries(
    rows: Array,
    service: Array,
    status: Array,
    simple: npt.NDArray[np.bool_],
    multiple: npt.NDArray[np.bool_],
    summary: SummaryColumns,
) -> None:
    """What every taken reply shares (service, general status), and the whole summary of the
    `simple` ones (a Multiple Service Packet reply's other fields are `_multiple_replies`')."""
    answered = simple | multiple
    summary.function_code[rows[answered]] = service[answered]
    summary.is_response[rows[answered]] = True
    summary.result[rows[answered]] = status[answered]
    summary.function[rows[simple]] = REPLY_FUNCTIONS[service[simple]]
    summary.operation[rows[simple]] = REPLY_OPERATIONS[service[simple]]
    summary.status[rows[simple]] = ParseStatus.OK
    summary.finding[rows[simple]] = EnipFinding.OK


def _simple_requests(
    rows: Array, service: Array, class_id: Array, instance: Array, attribute: Array, summary: SummaryColumns
) -> None:
    """Requests with an 8-bit class, instance[, attribute] path: names per distinct (service,
    class), target texts per distinct (class, instance, attribute)."""
    if not rows.size:
        return
    summary.function_code[rows] = service
    summary.is_response[rows] = False
    summary.status[rows] = ParseStatus.OK
    summary.finding[rows] = EnipFinding.OK
    summary.address[rows] = class_id
    summary.quantity[rows] = 1
    kinds, kind_of = np.unique(service << 8 | class_id, return_inverse=True)
    names = [
        cip.service_name(kind >> 8, cip.CipPath((("class", kind & 0xFF),)), False) for kind in kinds.tolist()
    ]
    summary.function[rows] = np.array([name for name, _ in names], dtype=object)[kind_of]
    summary.operation[rows] = np.array([operation for _, operation in names], dtype=np.uint8)[kind_of]
    targets, target_of = np.unique((class_id << 8 | instance) << 9 | (attribute + 1), return_inverse=True)
    texts = np.empty(len(targets), dtype=object)
    for index, target in enumerate(targets.tolist()):
        text = f"class 0x{target >> 17:02x} instance {target >> 9 & 0xFF}"
        member = (target & 0x1FF) - 1
        texts[index] = (f"{text} attribute {member}",) if member >= 0 else (text,)
    summary.targets[rows] = texts[target_of]


def _cached_requests(
    buffer: npt.NDArray[np.uint8], rows: Array, at: Array, end: Array, summary: SummaryColumns
) -> None:
    """Any other request in the common layout: its summary from `REQUESTS` (the exact decoder's,
    decoded on a miss), filled in per distinct request of the batch."""
    if not rows.size:
        return
    view = buffer.data
    index: dict[bytes, int] = {}
    distinct: list[Summary] = []
    row_of: list[int] = []
    for start, stop in zip(at.tolist(), end.tolist(), strict=True):
        key = bytes(view[start:stop])
        found = index.get(key)
        if found is None:
            found = index[key] = len(distinct)
            distinct.append(request_summary(key))
        row_of.append(found)
    part = SummaryColumns.from_summaries(distinct)
    for name in SUMMARY_FIELDS:
        getattr(summary, name)[rows] = getattr(part, name)[row_of]


def request_summary(data: bytes) -> Summary:
    """The summary of a common-layout PDU carrying the CIP request `data` (not empty): the exact
    decoder's, kept in `REQUESTS` unless `data` is longer than `MAX_REQUEST_KEPT`."""
    found = REQUESTS.get(data)
    if found is None:
        message = m.EnipMessage(0, False, command=m.SEND_RR_DATA, cip=cip.decode_cip(data, False))
        found = message.summary()
        if len(data) <= MAX_REQUEST_KEPT:
            if len(REQUESTS) >= MAX_REQUESTS:
                REQUESTS.clear()
            REQUESTS[data] = found
    return found


def _multiple_replies(read: _Reader, rows: Array, at: Array, end: Array, summary: SummaryColumns) -> Array:
    """Multiple Service Packet replies (CIP message at `at`, its status words known to fit, PDU
    ending at `end`) into `summary`; returns which of them were taken.

    As the exact decoder (Vol. 1 A-4.10): an empty body is a reply without services; a body
    shorter than its count and offsets, or offsets not rising within it, is `BAD_EMBEDDED`;
    else each embedded reply counts (its category, by the strongest), and the first one shorter
    than its header and status words is the row's `CIP_TOO_SHORT` (MALFORMED, or OK when empty:
    the exact decoder's empty message carries the finding alone). One that is itself a Multiple
    Service Packet or Forward_Open reply leaves its row to the exact decoder.
    """
    body = at + 4 + 2 * read.byte(at + 3)
    length = end - body
    count = np.where(length >= 2, read.word(body), 0)
    bad = (length == 1) | ((length >= 2) & (length < 2 + 2 * count))
    count[bad] = 0
    owner = np.repeat(np.arange(len(rows)), count)
    first = np.cumsum(count) - count
    index = np.arange(len(owner)) - first[owner]
    offset = read.word(body[owner] + 2 + 2 * index)
    bound = np.append(offset[1:], 0)
    last = index == count[owner] - 1
    bound[last] = length[owner][last]
    fits = (2 + 2 * count[owner] <= offset) & (offset <= bound) & (bound <= length[owner])
    bad |= np.bincount(owner[~fits], minlength=len(rows)) > 0
    inner = body[owner] + offset
    inner_length = bound - offset
    inner_service = read.byte(inner) & cip.SERVICE_MASK
    short = (inner_length < 4) | (inner_length < 4 + 2 * read.byte(inner + 3))
    special = ~short & np.isin(inner_service, EMBEDDED_SPECIAL)
    rank = np.where(inner_length == 0, UNRANKED, RANKS[REPLY_OPERATIONS[inner_service]])
    strongest = np.full(len(rows), UNRANKED, dtype=np.int64)
    np.minimum.at(strongest, owner, rank)
    shorts = np.flatnonzero(short)
    broken_rows, first_short = np.unique(owner[shorts], return_index=True)
    broken = np.zeros(len(rows), dtype=np.bool_)
    broken[broken_rows] = True
    malformed = np.zeros(len(rows), dtype=np.bool_)  # an empty message's finding comes with status OK
    malformed[broken_rows] = inner_length[shorts[first_short]] > 0
    taken = bad | (np.bincount(owner[special], minlength=len(rows)) == 0)
    row = rows[taken]
    bad, broken, malformed = bad[taken], broken[taken] & ~bad[taken], malformed[taken]
    summary.function[row] = REPLY_FUNCTIONS[cip.MULTIPLE_SERVICE_PACKET]
    summary.operation[row] = np.where(bad, Operation.OTHER, BY_RANK[strongest[taken]])
    summary.quantity[row] = np.where(bad, 0, count[taken])
    summary.status[row] = np.where(bad | (broken & malformed), ParseStatus.MALFORMED, ParseStatus.OK)
    summary.finding[row] = np.select(
        [bad, broken], [EnipFinding.BAD_EMBEDDED, EnipFinding.CIP_TOO_SHORT], EnipFinding.OK
    )
    return np.flatnonzero(taken)
