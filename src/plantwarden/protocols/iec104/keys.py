"""How IEC 60870-5-104 answers find their requests: type and information object, within a
connection (the protocol has no transaction id).

The controlling station (the client) sends a command or parameter with cause 6 (activation) or
8 (deactivation); the controlled station confirms it with cause 7 or 9 (or 44-47: unknown type,
cause, common address or object), with the same type id and the same first information object
address: the key is the type in the top bits and the address below. A read (cause 5, request)
is answered by monitoring data of another type with cause 5 (requested), or rejected with its
own type (102) and cause 44-47, so its key holds only the address (type slot 0, which no type
uses). The key has no room for the common address: one connection addressing the same object
address in two ASDU addresses at once pairs by order; private types (128-255) share the slots
of the standard ones. STARTDT, STOPDT and TESTFR activations from the
client are answered by their confirmations (slot 22, unused too, with the function). S frames,
activation terminations, monitoring data (spontaneous, cyclic, interrogated) and the server's own
TESTFR are not requests; any other I frame from the client is recorded on its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.iec104.exact import FORMAT_I, FORMAT_S, FORMAT_U
from plantwarden.protocols.iec104.types import CAUSE_UNKNOWN_FROM, CAUSE_UNKNOWN_TO

REQUEST, ACTIVATION, ACTIVATION_CON, DEACTIVATION, DEACTIVATION_CON = 5, 6, 7, 8, 9
READ_COMMAND = 102
"""C_RD_NA_1: a rejection (cause 44-47) answers the read with the read's own type."""
READ_SLOT, U_SLOT = 0, 22
"""Type slots no ASDU type uses: reads (answered by another type), U frames."""
ACTS = (0x07, 0x13, 0x43)
"""STARTDT, STOPDT and TESTFR activations (their confirmations: the function bit one higher)."""
CONS = (0x0B, 0x23, 0x83)


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    frame, cause, control = own["frame_format"], own["cause"], own["control"]
    response = summary.is_response
    keys = one_way_requests(summary)
    ioa = np.maximum(summary.address, 0) & 0xFFFFFF
    slot = (own["type_id"].astype(np.int64) & 0x7F) << 24
    information = frame == FORMAT_I
    command = np.where(
        response,
        np.isin(cause, (ACTIVATION_CON, DEACTIVATION_CON)),
        np.isin(cause, (ACTIVATION, DEACTIVATION)),
    )
    command |= response & (cause >= CAUSE_UNKNOWN_FROM) & (cause <= CAUSE_UNKNOWN_TO)
    keys[information & command] = (slot | ioa)[information & command]
    unknown = (cause >= CAUSE_UNKNOWN_FROM) & (cause <= CAUSE_UNKNOWN_TO)
    read = information & ((cause == REQUEST) | (response & unknown & (own["type_id"] == READ_COMMAND)))
    keys[read] = (READ_SLOT << 24) | ioa[read]
    act = (frame == FORMAT_U) & ~response & np.isin(control, ACTS)
    con = (frame == FORMAT_U) & response & np.isin(control, CONS)
    keys[(frame == FORMAT_U) | (frame == FORMAT_S)] = NOT_RECORDED
    keys[act] = (U_SLOT << 24) | control[act].astype(np.int64)
    keys[con] = (U_SLOT << 24) | (((control[con].astype(np.int64) & 0xFC) >> 1) | 0x03)
    return keys


REQUEST_KEYS = RequestKeys(("frame_format", "cause", "control", "type_id"), _keys)
