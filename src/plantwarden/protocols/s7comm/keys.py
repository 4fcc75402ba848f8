"""How S7comm answers find their requests: the S7 PDU reference, within a connection.

A job (ROSCTR 1) is answered by an ack or ack-data (2, 3) with its PDU reference; a userdata
request (type 4) by a userdata response (type 8) with its reference. A COTP connection request
(CR) is answered by its connection confirm (CC). Userdata pushes (type 0: cyclic data, alarms)
are not requests. S7comm-plus requests, and every other request, are recorded on their own:
S7comm-plus's sequence numbers sit in a part the module does not decode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.s7comm.constants import (
    ACK,
    ACK_DATA,
    COTP_CC,
    COTP_CR,
    JOB,
    S7COMM_ID,
    TYPE_PUSH,
    USERDATA,
)

CONNECTION_KEY = 0x10000
"""The key a CR and its CC share (above every 16-bit PDU reference)."""


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    protocol, rosctr = own["protocol_id"], own["rosctr"]
    keys = one_way_requests(summary)
    push = (rosctr == USERDATA) & (own["ud_type"] == TYPE_PUSH)
    s7 = (protocol == S7COMM_ID) & np.isin(rosctr, (JOB, ACK, ACK_DATA, USERDATA)) & (own["pdu_ref"] >= 0)
    keys[s7 & ~push] = own["pdu_ref"][s7 & ~push]
    keys[push] = NOT_RECORDED
    cotp = own["cotp_type"]
    keys[(cotp == COTP_CR) & ~summary.is_response] = CONNECTION_KEY
    keys[(cotp == COTP_CC) & summary.is_response] = CONNECTION_KEY
    return keys


REQUEST_KEYS = RequestKeys(("protocol_id", "rosctr", "pdu_ref", "cotp_type", "ud_type"), _keys)
