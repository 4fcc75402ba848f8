"""The column extractor's userdata lane (ROSCTR 7: SZL reads, clock, cyclic data, diagnostics,
block lists, alarms), all rows at once.

A row is taken when its layout is proved as `exact._userdata` reads it: the header, parameter
and data lengths add up to the PDU; the parameter is 8 or 12 bytes, head 00 01 12, its length
byte 4 or 8 to match; the method is request (0x11) or response (0x12) and the type push,
request or response; the data is empty or a data item whose value fits in it. Read from fixed
offsets: type, group, subfunction and sequence, the data unit reference and error code (12-byte
parameter), the data item's return code and value length, an SZL read's id and index. Function
names, operations and statuses come from tables indexed by group and subfunction.

Per row in Python only: the text of a clock (time functions whose value is 10 bytes), a rare
PDU. SZL targets are built once per distinct SZL id and index. Any other row is left to the
exact decoder, which raises the finding.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.s7comm import constants as c
from plantwarden.protocols.s7comm.exact import CLOCK_SIZE, PARTIAL_USERDATA, clock_text
from plantwarden.protocols.s7comm.fast_rows import (
    EMPTY_TARGETS,
    S7_AT,
    Bytes,
    Ints,
    Lane,
    Mask,
    Objects,
    lane_summary,
    object_column,
)

PARAMETER = S7_AT + 10
"""Offset of a userdata parameter in a one-TPKT PDU (the userdata header has no error fields)."""
GROUPS, SUBFUNCTIONS = 16, 256


def _tables() -> tuple[Objects, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per (group, subfunction): the function name and operation, as `S7Message.summary` gives
    them (read SZL's operation depends on the SZL id: DIAGNOSTIC here); per group whether its
    data leaves the row PARTIAL."""
    names = np.empty((GROUPS, SUBFUNCTIONS), dtype=object)
    operations = np.zeros((GROUPS, SUBFUNCTIONS), dtype=np.int64)
    for group in range(GROUPS):
        for sub in range(SUBFUNCTIONS):
            key = (group, sub)
            names[key] = c.SUBFUNCTION_NAMES.get(key, c.GROUP_NAMES.get(group, "userdata"))
            operation = c.SUBFUNCTION_OPERATIONS.get(key, c.GROUP_OPERATIONS.get(group, Operation.OTHER))
            operations[key] = operation
    operations[c.GROUP_CPU, c.READ_SZL] = Operation.DIAGNOSTIC
    partial = np.zeros(GROUPS, dtype=np.bool_)
    partial[[*PARTIAL_USERDATA, c.GROUP_CPU]] = True
    return names, operations, partial


NAMES, OPERATIONS, PARTIAL_GROUPS = _tables()
IDENTIFY_LISTS = np.zeros(256, dtype=np.bool_)
IDENTIFY_LISTS[list(c.IDENTIFY_SZL_LISTS)] = True


def userdata_lane(
    source: Bytes, start: Ints, size: Ints, header: dict[str, Ints], simple: Mask, is_response: Mask
) -> Lane:
    """The userdata rows among the `simple` ones (one-TPKT S7comm PDUs, header read) whose
    parameter and data are well formed."""
    parlg, datlg = header["param_length"], header["data_length"]
    candidate = simple & (header["rosctr"] == c.USERDATA) & ((parlg == 8) | (parlg == 12))
    rows = np.flatnonzero(candidate & (size == PARAMETER + parlg + datlg))
    at, parlg, datlg = start[rows] + PARAMETER, parlg[rows], datlg[rows]
    head = c.USERDATA_HEAD
    ok = (source.byte(at) == head[0]) & (source.byte(at + 1) == head[1]) & (source.byte(at + 2) == head[2])
    ok &= source.byte(at + 3) == parlg - 4
    ok &= np.isin(source.byte(at + 4), (c.METHOD_REQUEST, c.METHOD_RESPONSE))
    ok &= np.isin(source.byte(at + 5) >> 4, (c.TYPE_PUSH, c.TYPE_REQUEST, c.TYPE_RESPONSE))
    body = at + parlg
    value_length = source.word(body + 2)
    ok &= (datlg == 0) | ((datlg >= 4) & (4 + value_length <= datlg))
    rows, at, parlg, datlg, body, value_length = (
        part[ok] for part in (rows, at, parlg, datlg, body, value_length)
    )
    return _decoded(source, rows, at, parlg == 12, datlg > 0, body, value_length, is_response)


def _decoded(
    source: Bytes,
    rows: Ints,
    at: Ints,
    long: Mask,
    has_data: Mask,
    body: Ints,
    value_length: Ints,
    is_response: Mask,
) -> Lane:
    """The id columns and summary of well-formed userdata rows (parameter at `at`, data at
    `body`)."""
    kind, group, sub = source.byte(at + 5) >> 4, source.byte(at + 5) & 0x0F, source.byte(at + 6)
    unit_ref = np.where(long, source.byte(at + 8), -1)
    ud_error = np.where(long, source.word(at + 10), -1)
    return_code = np.where(has_data, source.byte(body), -1)
    request = kind == c.TYPE_REQUEST
    szl_key = (group == c.GROUP_CPU) & (sub == c.READ_SZL)
    szl = szl_key & has_data
    whole = unit_ref <= 0  # no data unit reference counts as the first (and only) unit
    szl_read = szl & (value_length >= 4) & (request | whole)
    szl_id = np.where(szl_read, source.word(body + 4), -1)
    szl_index = np.where(szl_read, source.word(body + 6), -1)
    clock = has_data & (group == c.GROUP_TIME) & (value_length == CLOCK_SIZE)
    partial = szl & ~request & ~whole
    partial |= has_data & ~szl & ~clock & PARTIAL_GROUPS[group]
    identify = szl_key & (szl_id >= 0) & IDENTIFY_LISTS[szl_id & 0xFF]
    operation = np.where(identify, Operation.IDENTIFY, OPERATIONS[group, sub])
    targets, quantity = _targets(source, szl_id, szl_index, np.flatnonzero(clock), body)
    result = np.where(
        ud_error > 0, ud_error, np.where(np.isin(return_code, (-1, 0, c.ITEM_OK)), 0, return_code)
    )
    ids = {"ud_type": kind, "ud_group": group, "ud_subfunction": sub, "ud_sequence": source.byte(at + 7)}
    summary = lane_summary(
        rows,
        is_response,
        c.USERDATA_BASE | group << 8 | sub,
        NAMES[group, sub],
        operation,
        szl_id,
        targets,
        quantity,
        np.where(kind == c.TYPE_RESPONSE, result, -1),
        np.where(partial, ParseStatus.PARTIAL, ParseStatus.OK),
    )
    return Lane(rows, ids | {"szl_id": szl_id, "szl_index": szl_index}, summary)


def _targets(source: Bytes, szl_id: Ints, szl_index: Ints, clocks: Ints, body: Ints) -> tuple[Objects, Ints]:
    """Each row's targets and their count: an SZL read's id and index (one text per distinct
    pair), a clock's time (per row, when its value is BCD), none elsewhere."""
    targets = EMPTY_TARGETS[np.zeros(len(szl_id), dtype=np.intp)]
    quantity = (szl_id >= 0).astype(np.int64)
    read = np.flatnonzero(szl_id >= 0)
    pairs, inverse = np.unique(szl_id[read] << 16 | szl_index[read], return_inverse=True)
    texts = [(f"SZL 0x{pair >> 16:04x} index 0x{pair & 0xFFFF:04x}",) for pair in pairs.tolist()]
    targets[read] = object_column(texts)[inverse.ravel()]
    values = source.rows(body[clocks] + 4, CLOCK_SIZE)
    for row, value in zip(clocks.tolist(), values, strict=True):
        text = clock_text(value.tobytes())
        if text:
            targets[row], quantity[row] = (text,), 1
    return targets, quantity
