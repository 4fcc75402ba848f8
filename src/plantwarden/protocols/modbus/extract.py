"""The fast path: `extract` turns many payload segments into `ModbusColumns` at once.

The walk frames every segment level by level (`walk`), the vectorised decoder fills the rows of
the common functions (`fast_pdus`), and the exact decoder fills the few rows left: rare
functions and malformed PDUs. The result is, row for row and value for value, what
`exact.decode_segments` gives.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.columns import NAMES, ModbusColumns
from plantwarden.protocols.modbus.exact import Extracted, decode
from plantwarden.protocols.modbus.fast_pdus import Fields, decode_rows
from plantwarden.protocols.modbus.walk import Walk, Windows, walk

DEVICE_ID_OBJECTS = 14
"""ADU offset of the first object of a 43/14 response (7 header, 7 PDU header bytes)."""


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int32],
    from_server: npt.NDArray[np.bool_],
) -> Extracted:
    """The PDU rows of the segments `buffer[start:start + length]`, each starting at an ADU.

    `from_server[i]` tells whether segment i was sent by the server. Rows come in (segment,
    pdu_index) order; `leftover[i]` counts the bytes of a partial last ADU of segment i.
    """
    data = np.ascontiguousarray(buffer, dtype=np.uint8)
    found = walk(Windows(data), np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int32))
    columns = _labelled(found, starts, from_server)
    fields = Fields(found.window, columns.is_response, found.sound)
    done = decode_rows(columns, fields, _objects_fit(data, found, fields))
    _decode_exactly(columns, data, found, np.flatnonzero(~done))
    return Extracted(columns, found.leftover)


def _labelled(
    found: Walk, starts: npt.NDArray[np.int64], from_server: npt.NDArray[np.bool_]
) -> ModbusColumns:
    columns = ModbusColumns.empty(len(found.segment))
    columns.segment[:] = found.segment
    columns.pdu_index[:] = found.pdu_index
    columns.offset[:] = found.position - starts[found.segment]
    columns.is_response[:] = from_server[found.segment]
    return columns


def _objects_fit(data: npt.NDArray[np.uint8], found: Walk, f: Fields) -> npt.NDArray[np.bool_]:
    """Where a 43/14 response's objects fill its PDU exactly (the exact decoder's `_objects`)."""
    candidate = f.response & (f.code == fc.ENCAPSULATED_INTERFACE) & (f.b8 == DEVICE_ID_OBJECTS)
    rows = np.flatnonzero(candidate & (f.data_length >= 6))
    fits = np.zeros(len(f.code), dtype=np.bool_)
    at = found.position[rows] + DEVICE_ID_OBJECTS
    end = found.position[rows] + 6 + f.length[rows]
    left, alive = f.byte_at(13)[rows], np.ones(len(rows), dtype=np.bool_)
    while (going := np.flatnonzero(alive & (left > 0))).size:
        length = data[np.minimum(at[going] + 1, len(data) - 1)].astype(np.int64)
        step = at[going] + 2 + length
        alive[going] &= (at[going] + 2 <= end[going]) & (step <= end[going])
        at[going], left[going] = step, left[going] - 1
    fits[rows] = alive & (at == end)
    return fits


def _decode_exactly(
    columns: ModbusColumns, data: npt.NDArray[np.uint8], found: Walk, rows: npt.NDArray[np.intp]
) -> None:
    """Fill `rows` from `exact.decode`, one ADU at a time (the rare rows)."""
    if not rows.size:
        return
    messages = [
        decode(
            data[found.position[row] : found.position[row] + found.size[row]].tobytes(),
            bool(columns.is_response[row]),
            segment=int(columns.segment[row]),
            pdu_index=int(columns.pdu_index[row]),
            offset=int(columns.offset[row]),
        )
        for row in rows.tolist()
    ]
    exact = ModbusColumns.from_messages(messages)
    for name in NAMES:
        getattr(columns, name)[rows] = getattr(exact, name)
