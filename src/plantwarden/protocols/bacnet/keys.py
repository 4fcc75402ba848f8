"""How BACnet answers find their requests: the invoke id, within a conversation.

A confirmed request is answered by a simple or complex ack, an error, a reject or a server's
abort with its invoke id. Unconfirmed requests (Who-Is, I-Am, WriteGroup, ...) expect no answer;
segment acks, a client's abort and BVLC or network layer messages are not requests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.bacnet.services import (
    ABORT,
    COMPLEX_ACK,
    CONFIRMED,
    ERROR,
    REJECT,
    SEGMENT_ACK,
    SIMPLE_ACK,
    UNCONFIRMED,
)
from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests

ANSWERS = (SIMPLE_ACK, COMPLEX_ACK, ERROR, REJECT, ABORT)


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    kind, invoke = own["pdu_type"], own["invoke_id"].astype(np.int64)
    response = summary.is_response
    keys = one_way_requests(summary)
    apdu = kind >= 0
    keys[~apdu & ~response & (own["bvlc_type"] >= 0)] = NOT_RECORDED
    keys[(kind == SEGMENT_ACK) | ((kind == ABORT) & ~response)] = NOT_RECORDED
    paired = (invoke >= 0) & (((kind == CONFIRMED) & ~response) | (np.isin(kind, ANSWERS) & response))
    keys[paired] = invoke[paired]
    keys[(kind == UNCONFIRMED) & response] = NOT_RECORDED
    return keys


REQUEST_KEYS = RequestKeys(("bvlc_type", "pdu_type", "invoke_id"), _keys)
