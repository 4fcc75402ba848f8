"""The column extractor's vectorised lane: the summaries and id columns of the commonest PDUs,
all rows at once, where their layout is proved well formed.

- read var jobs whose items are all S7ANY (12 bytes each: the items are at fixed offsets);
- read var ack_data without a header error (the data items walked, item k of every row at once);
- write var ack_data without a header error (a return code per item).

Every other row, and any row of these kinds that breaks its layout, is left to the exact decoder.
Per row in Python only: the target texts of a read var job (one memoised text per distinct item).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import MAX_TARGETS, Operation
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.messages import S7Item

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
S7_AT = 7
JOB_PARAMETER, ACK_PARAMETER = S7_AT + 10, S7_AT + 12
"""Offsets of the parameter in a one-TPKT PDU: after TPKT, COTP and a 10 or 12 byte header."""
ITEM_SIZE = 12
BIT_SIZES = np.zeros(256, dtype=np.bool_)
BIT_SIZES[list(c.DATA_BIT_LENGTHS)] = True


class Lane(NamedTuple):
    """The rows decoded here (indexes), with their summary fields and item counts."""

    rows: Ints
    function_code: Ints
    operation: Ints
    address: Ints
    quantity: Ints
    result: Ints
    item_count: Ints
    targets: list[tuple[str, ...]]


class _Bytes:
    """Byte and word gathers at absolute positions (past the end: 0)."""

    def __init__(self, buffer: npt.NDArray[np.uint8]) -> None:
        self.octets = np.concatenate([buffer, np.zeros(16, dtype=np.uint8)]).astype(np.int64)
        self.limit = len(self.octets) - 4

    def byte(self, at: Ints) -> Ints:
        value: Ints = self.octets[np.clip(at, 0, self.limit)]
        return value

    def word(self, at: Ints) -> Ints:
        at = np.clip(at, 0, self.limit)
        value: Ints = self.octets[at] << 8 | self.octets[at + 1]
        return value


def lane(
    buffer: npt.NDArray[np.uint8], start: Ints, size: Ints, header: dict[str, Ints], simple: Mask
) -> Lane:
    """The rows of the lane among the `simple` ones (one-TPKT S7comm PDUs, header read)."""
    source = _Bytes(buffer)
    rosctr, parlg, datlg = header["rosctr"], header["param_length"], header["data_length"]
    no_error = (header["error_class"] == 0) & (header["error_code"] == 0)
    parts = [
        _read_jobs(
            source, start, simple & (rosctr == c.JOB) & (datlg == 0) & (size == JOB_PARAMETER + parlg)
        ),
        _acks(source, start, simple & (rosctr == c.ACK_DATA) & no_error & (parlg == 2), size, datlg),
    ]
    rows = np.concatenate([part.rows for part in parts])
    order = np.argsort(rows, kind="stable")
    targets = [target for part in parts for target in part.targets]

    def joined(name: str) -> Ints:
        value: Ints = np.concatenate([getattr(part, name) for part in parts])[order]
        return value

    return Lane(
        rows[order],
        joined("function_code"),
        joined("operation"),
        joined("address"),
        joined("quantity"),
        joined("result"),
        joined("item_count"),
        [targets[index] for index in order.tolist()],
    )


def _read_jobs(source: _Bytes, start: Ints, candidate: Mask) -> Lane:
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
    texts = _texts(source, at, count)
    none = np.full(len(rows), -1, dtype=np.int64)
    return Lane(
        rows,
        np.full(len(rows), c.READ_VAR, dtype=np.int64),
        np.full(len(rows), Operation.READ, dtype=np.int64),
        np.where(numbered, address, address >> 3),
        count,
        none,
        count,
        texts,
    )


def _texts(source: _Bytes, at: Ints, count: Ints) -> list[tuple[str, ...]]:
    """Each row's item texts (the items' 10 address bytes, memoised)."""
    memo: dict[bytes, str] = {}
    octets = source.octets
    targets = []
    for first, items in zip((at + 4).tolist(), count.tolist(), strict=True):
        texts = []
        for k in range(items):
            spec = octets[first + ITEM_SIZE * k : first + ITEM_SIZE * k + 10].astype(np.uint8).tobytes()
            text = memo.get(spec)
            if text is None:
                item = S7Item(
                    c.SYNTAX_S7ANY,
                    spec[1],
                    spec[2] << 8 | spec[3],
                    spec[4] << 8 | spec[5],
                    spec[6],
                    int.from_bytes(spec[7:10], "big"),
                )
                text = memo[spec] = item.text()
            texts.append(text)
        targets.append(tuple(texts[:MAX_TARGETS]))
    return targets


def _acks(source: _Bytes, start: Ints, candidate: Mask, size: Ints, datlg: Ints) -> Lane:
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
    none = np.full(len(rows), -1, dtype=np.int64)
    return Lane(
        rows,
        function,
        np.where(read, Operation.READ, Operation.WRITE).astype(np.int64),
        none,
        np.zeros(len(rows), dtype=np.int64),
        np.maximum(failed, 0),
        count,
        [()] * len(rows),
    )


def summary_values(lane: Lane, is_response: Mask) -> dict[str, Any]:
    """The lane's rows as `Summary` fields (names as in `SummaryColumns`)."""
    names = np.where(lane.function_code == c.READ_VAR, "read_var", "write_var")
    return {
        "function_code": lane.function_code,
        "function": names,
        "operation": lane.operation,
        "is_response": is_response[lane.rows],
        "unit": np.full(len(lane.rows), -1),
        "address": lane.address,
        "quantity": lane.quantity,
        "targets": lane.targets,
        "result": lane.result,
        "status": np.zeros(len(lane.rows)),
        "finding": np.zeros(len(lane.rows)),
    }
