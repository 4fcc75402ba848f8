"""The fast path: `extract` turns many payload segments into `ModbusColumns` at once.

The walk frames every segment level by level (`walk`), the vectorised decoder fills the rows of
the common functions (`fast_pdus`), and the exact decoder fills the few rows left: rare
functions and malformed PDUs. The result is, row for row and value for value, what
`exact.decode_segments` gives. `decode_adus` decodes ADUs framed elsewhere (the sensor frames
a batch's segments, picks the ADUs to keep and decodes only those).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.modbus import functions as fc
from plantwarden.protocols.modbus.columns import NAMES, ModbusColumns
from plantwarden.protocols.modbus.exact import Extracted, decode
from plantwarden.protocols.modbus.fast_pdus import Fields, decode_rows
from plantwarden.protocols.modbus.framing import LENGTH_BASE
from plantwarden.protocols.modbus.walk import Adus, Windows, walk

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
    source = Windows(buffer)
    found = walk(source, starts, lengths)
    adus = found.adus()
    is_response = np.asarray(from_server, dtype=np.bool_)[adus.segment]
    return Extracted(decode_adus(adus, is_response, source, adus.segment), found.leftover)


def decode_adus(
    adus: Adus, is_response: npt.NDArray[np.bool_], source: Windows, segment: npt.NDArray[np.int64]
) -> ModbusColumns:
    """The rows of `adus`, labelled as `adus` labels them but for `segment` (each row's label,
    the sensor's packets), sent by the server where `is_response`.

    `source` holds the ADUs' bytes, for the rare rows whose window does not tell all.
    """
    fields = Fields(adus.window, is_response)
    labels: dict[str, npt.NDArray[Any]] = {
        "segment": segment,
        "pdu_index": adus.pdu_index,
        "offset": adus.offset,
        "is_response": is_response,
    }
    columns, done = decode_rows(fields, labels, _objects_fit(source, adus, fields))
    _decode_exactly(columns, source, adus, fields, np.flatnonzero(~done))
    return columns


def _objects_fit(source: Windows, adus: Adus, f: Fields) -> npt.NDArray[np.bool_]:
    """Where a 43/14 response's objects fill its PDU exactly (the exact decoder's `_objects`)."""
    fits = np.zeros(len(f.code), dtype=np.bool_)
    rows = np.flatnonzero(f.code == fc.ENCAPSULATED_INTERFACE)  # few: the rest over these only
    rows = rows[f.response[rows] & (f.b8[rows] == DEVICE_ID_OBJECTS) & (f.length[rows] >= 8)]
    position = adus.positions(rows)
    at, end = position + DEVICE_ID_OBJECTS, position + LENGTH_BASE + f.length[rows]
    left, alive = f.octets[rows, 13].astype(np.int64), np.ones(len(rows), dtype=np.bool_)
    while (going := np.flatnonzero(alive & (left > 0))).size:
        length = source.octets(at[going] + 1).astype(np.int64)
        step = at[going] + 2 + length
        alive[going] &= (at[going] + 2 <= end[going]) & (step <= end[going])
        at[going], left[going] = step, left[going] - 1
    fits[rows] = alive & (at == end)
    return fits


def _decode_exactly(
    columns: ModbusColumns, source: Windows, adus: Adus, f: Fields, rows: npt.NDArray[np.intp]
) -> None:
    """Fill `rows` (all with sound headers) from `exact.decode`, one ADU at a time (the rare rows)."""
    if not rows.size:
        return
    messages = [
        decode(
            source.read(position, LENGTH_BASE + length),
            bool(columns.is_response[row]),
            segment=int(columns.segment[row]),
            pdu_index=int(columns.pdu_index[row]),
            offset=int(columns.offset[row]),
        )
        for row, position, length in zip(
            rows.tolist(), adus.positions(rows).tolist(), f.length[rows].tolist(), strict=True
        )
    ]
    exact = ModbusColumns.from_messages(messages)
    for name in NAMES:
        getattr(columns, name)[rows] = getattr(exact, name)
