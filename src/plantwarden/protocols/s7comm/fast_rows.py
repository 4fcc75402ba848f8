"""The column extractor's vectorised lanes: whole rows (summary and id columns) of the commonest
PDUs, all rows at once, where their layout is proved well formed.

This module holds what every lane shares (`Lane`, `Bytes`, `lane_summary`, `object_column`) and
the variable services:

- read var jobs whose items are all S7ANY (12 bytes each: the items are at fixed offsets);
- read var ack_data without a header error (the data items walked, item k of every row at once);
- write var ack_data without a header error (a return code per item).

`fast_userdata` is the lane of userdata PDUs. Every other row, and any row of these kinds that
breaks its layout, is left to the exact decoder. Per distinct request only (not per row): the
target texts of a read var job, built once for each distinct run of item bytes in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.messages import S7Item

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]
S7_AT = 7
JOB_PARAMETER, ACK_PARAMETER = S7_AT + 10, S7_AT + 12
"""Offsets of the parameter in a one-TPKT PDU: after TPKT, COTP and a 10 or 12 byte header."""
ITEM_SIZE = 12
PADDING = 32
"""Zero bytes after the buffer, so that a gather a little past a PDU's end stays in bounds."""
BIT_SIZES = np.zeros(256, dtype=np.bool_)
BIT_SIZES[list(c.DATA_BIT_LENGTHS)] = True
FUNCTION_TEXTS = np.array(["read_var", "write_var"], dtype=object)


class Lane(NamedTuple):
    """The rows (indexes) a lane decoded, the id columns it sets on them beyond the header
    (`ids`, by `SCHEMA` name), and their summary fields (`summary`, by `SummaryColumns` name;
    `function` and `targets` as object arrays)."""

    rows: Ints
    ids: dict[str, Ints]
    summary: dict[str, npt.NDArray[Any]]


class Bytes:
    """Byte and word gathers at absolute positions of the batch's buffer (past the end: 0)."""

    def __init__(self, buffer: npt.NDArray[np.uint8]) -> None:
        self.octets = np.concatenate([buffer, np.zeros(PADDING, dtype=np.uint8)])
        self.limit = len(self.octets) - 4

    def byte(self, at: Ints) -> Ints:
        value: Ints = self.octets[np.clip(at, 0, self.limit)].astype(np.int64)
        return value

    def word(self, at: Ints) -> Ints:
        at = np.clip(at, 0, self.limit)
        value: Ints = self.octets[at].astype(np.int64) << 8 | self.octets[at + 1]
        return value

    def rows(self, at: Ints, width: int) -> npt.NDArray[np.uint8]:
        """`width` bytes from each position in `at`, one row each (positions within the buffer)."""
        block: npt.NDArray[np.uint8] = self.octets[at[:, None] + np.arange(width)]
        return block


def object_column(values: Sequence[Any]) -> Objects:
    """`values` as a one-dimensional object array, a tuple staying one cell."""
    column = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        column[index] = value
    return column


EMPTY_TARGETS = object_column([()])


def lane_summary(
    rows: Ints,
    is_response: Mask,
    function_code: Ints,
    function: Objects,
    operation: Ints,
    address: Ints,
    targets: Objects,
    quantity: Ints,
    result: Ints,
    status: Ints | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """A lane's summary fields; unit -1, finding 0, status OK unless given."""
    count = len(rows)
    return {
        "function_code": function_code,
        "function": function,
        "operation": operation,
        "is_response": is_response[rows],
        "unit": np.full(count, -1, dtype=np.int64),
        "address": address,
        "quantity": quantity,
        "targets": targets,
        "result": result,
        "status": np.full(count, ParseStatus.OK, dtype=np.int64) if status is None else status,
        "finding": np.zeros(count, dtype=np.int64),
    }


def variable_lanes(
    source: Bytes, start: Ints, size: Ints, header: dict[str, Ints], simple: Mask, is_response: Mask
) -> list[Lane]:
    """The read var jobs and the read var and write var ack_data among the `simple` rows
    (one-TPKT S7comm PDUs, header read)."""
    rosctr, parlg, datlg = header["rosctr"], header["param_length"], header["data_length"]
    no_error = (header["error_class"] == 0) & (header["error_code"] == 0)
    jobs = simple & (rosctr == c.JOB) & (datlg == 0) & (size == JOB_PARAMETER + parlg)
    acks = simple & (rosctr == c.ACK_DATA) & no_error & (parlg == 2)
    return [
        _read_jobs(source, start, jobs, is_response),
        _acks(source, start, acks, size, datlg, is_response),
    ]


def _read_jobs(source: Bytes, start: Ints, candidate: Mask, is_response: Mask) -> Lane:
    rows = np.flatnonzero(candidate)
    at = start[rows] + JOB_PARAMETER
    count = source.byte(at + 1)
    parlg = source.word(start[rows] + S7_AT + 6)
    ok = (source.byte(at) == c.READ_VAR) & (count >= 1) & (parlg == 2 + ITEM_SIZE * count)
    for k in range(int(count[ok].max(initial=0))):
        item = at + 2 + ITEM_SIZE * k
        sound = (source.byte(item) == c.VARIABLE_SPECIFICATION) & (source.byte(item + 1) == c.S7ANY_LENGTH)
        sound &= source.byte(item + 2) == c.SYNTAX_S7ANY
        ok &= (count <= k) | sound
    rows, at, count = rows[ok], at[ok], count[ok]
    area = source.byte(at + 2 + 8)
    address = source.byte(at + 2 + 9) << 16 | source.word(at + 2 + 10)
    numbered = np.isin(area, list(c.NUMBERED_AREAS))
    none = np.full(len(rows), -1, dtype=np.int64)
    summary = lane_summary(
        rows,
        is_response,
        np.full(len(rows), c.READ_VAR, dtype=np.int64),
        FUNCTION_TEXTS[np.zeros(len(rows), dtype=np.intp)],
        np.full(len(rows), Operation.READ, dtype=np.int64),
        np.where(numbered, address, address >> 3),
        _targets(source, at, count),
        count,
        none,
    )
    return Lane(rows, {"parameter_function": np.full(len(rows), c.READ_VAR), "item_count": count}, summary)


def _targets(source: Bytes, at: Ints, count: Ints) -> Objects:
    """Each row's item texts: the rows of each item count grouped by their items' bytes, the
    texts built once per distinct group (a plant polls with the same requests)."""
    targets = EMPTY_TARGETS[np.zeros(len(at), dtype=np.intp)]
    memo: dict[bytes, str] = {}
    for items in np.unique(count).tolist():
        rows = np.flatnonzero(count == items)
        block = np.ascontiguousarray(source.rows(at[rows] + 2, ITEM_SIZE * items))
        keys = block.view(np.dtype((np.void, ITEM_SIZE * items))).ravel()
        distinct, inverse = np.unique(keys, return_inverse=True)
        texts = [_item_texts(key.tobytes(), items, memo) for key in distinct]
        targets[rows] = object_column(texts)[inverse.ravel()]
    return targets


def _item_texts(items: bytes, count: int, memo: dict[bytes, str]) -> tuple[str, ...]:
    """The texts of `count` S7ANY items (12 bytes each, proved well formed), memoised per item."""
    texts = []
    for k in range(min(count, MAX_TARGETS)):
        spec = items[ITEM_SIZE * k + 2 : ITEM_SIZE * k + 12]
        text = memo.get(spec)
        if text is None:
            address = int.from_bytes(spec[7:10], "big")
            item = S7Item(
                c.SYNTAX_S7ANY, spec[1], spec[2] << 8 | spec[3], spec[4] << 8 | spec[5], spec[6], address
            )
            text = memo[spec] = item.text()
        texts.append(text)
    return tuple(texts)


def _acks(source: Bytes, start: Ints, candidate: Mask, size: Ints, datlg: Ints, is_response: Mask) -> Lane:
    """Read var and write var ack_data: the data items walked, item k of every row at once."""
    rows = np.flatnonzero(candidate)
    at = start[rows] + ACK_PARAMETER
    function, count, length = source.byte(at), source.byte(at + 1), datlg[rows]
    reads = function == c.READ_VAR
    writes = (function == c.WRITE_VAR) & (length == count)
    ok = (reads | writes) & (count >= 1) & (size[rows] == ACK_PARAMETER + 2 + length)
    body = at + 2
    position = np.zeros(len(rows), dtype=np.int64)
    failed = np.full(len(rows), -1, dtype=np.int64)
    for k in range(int(count[ok].max(initial=0))):
        going = ok & (count > k)
        code = np.where(reads, source.byte(body + position), source.byte(body + k))
        failed = np.where(going & (failed < 0) & (code != c.ITEM_OK), code, failed)
        if not reads[going].any():
            continue
        kind, value = source.byte(body + position + 1), source.word(body + position + 2)
        octets = np.where(BIT_SIZES[kind], (value + 7) >> 3, value)
        octets = np.where((code == 0) | (code == c.ITEM_OK), octets, 0)
        fits = (position + 4 <= length) & (position + 4 + octets <= length)
        step = position + 4 + octets
        step += (octets % 2 == 1) & (step < length)
        walking = going & reads
        ok &= ~walking | fits
        position = np.where(walking, step, position)
    ok &= ~reads | (position == length)
    rows, function, count, failed = rows[ok], function[ok], count[ok], failed[ok]
    read = function == c.READ_VAR
    summary = lane_summary(
        rows,
        is_response,
        function,
        FUNCTION_TEXTS[(~read).astype(np.intp)],
        np.where(read, Operation.READ, Operation.WRITE).astype(np.int64),
        np.full(len(rows), -1, dtype=np.int64),
        EMPTY_TARGETS[np.zeros(len(rows), dtype=np.intp)],
        np.zeros(len(rows), dtype=np.int64),
        np.maximum(failed, 0),
    )
    return Lane(rows, {"parameter_function": function, "item_count": count}, summary)
