"""How OPC UA answers find their requests: the request id, within a connection.

A Hello is answered by an Acknowledge (a fixed key, one per connection). An OpenSecureChannel
or a service request (MSG) is answered by the message with its request id, read from the
sequence header (where that is encrypted, the request is recorded on its own); a request's last
chunk ("F") carries it, intermediate chunks are not requests. CloseSecureChannel expects no
answer; Error and ReverseHello answer nothing the client asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.opcua.messages import ACK, HEL, MSG, OPN

HELLO_KEY = 1 << 30
"""Above every request id (folded to 30 bits)."""
FINAL, INTERMEDIATE = ord("F"), ord("C")


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    kind, chunk, request_id = own["message_type"], own["chunk_type"], own["request_id"].astype(np.int64)
    response = summary.is_response
    keys = one_way_requests(summary)
    paired = np.isin(kind, (OPN, MSG)) & (chunk == FINAL) & (request_id >= 0)
    keys[paired] = request_id[paired] & (HELLO_KEY - 1)
    keys[np.isin(kind, (OPN, MSG)) & (chunk == INTERMEDIATE)] = NOT_RECORDED
    keys[~response & (kind == HEL)] = HELLO_KEY
    keys[response & (kind == ACK)] = HELLO_KEY
    return keys


REQUEST_KEYS = RequestKeys(("message_type", "chunk_type", "request_id"), _keys)
